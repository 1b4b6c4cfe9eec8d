"""Latency: settings, statistics on a fake clock, the cache, the predictor on a fake device, onnxruntime."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import shutil
import statistics
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_model

import supernet as sn
from supernet import latency
from supernet.latency import (
    LOAD_BOUND_CORES,
    SPREAD_BOUND,
    LatencyCache,
    LatencyPredictor,
    LatencyResult,
    LatencySetting,
    LatencyWarning,
    MachineLoad,
    dummy_batch,
    is_stale,
    load_report,
    load_warning,
    measure_interleaved,
    measure_latency,
    measure_model,
    measure_models,
    measure_onnx,
    measure_onnx_files,
    measure_subnet,
    measure_subnets,
    measuring_machine,
    monitor_load,
    stale_reason,
)
from supernet.subnet import resolve_subnet

FAST = dict(num_threads=1, warmup=1, repeats=3)


# ---------------------------------------------------------------- setting


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(device="gpu"), "device must be 'cpu', 'cuda' or 'cuda:<index>', got 'gpu'"),
        (dict(device="cuda:x"), "device must be 'cpu', 'cuda' or 'cuda:<index>', got 'cuda:x'"),
        (dict(backend="tensorrt"), "backend must be one of ['torch', 'onnxruntime'], got 'tensorrt'"),
        (dict(batch_size=0), "batch_size must be an integer >= 1, got 0"),
        (dict(batch_size=True), "batch_size must be an integer >= 1, got True"),
        (dict(seq_len=12.0), "seq_len must be an integer >= 1, got 12.0"),
        (dict(num_threads=0), "num_threads must be an integer >= 1, got 0"),
        (dict(warmup=-1), "warmup must be an integer >= 0, got -1"),
        (dict(repeats=0), "repeats must be an integer >= 1, got 0"),
        (dict(dtype="float64"), "dtype must be one of ['float32', 'bfloat16', 'float16'], got 'float64'"),
        (
            dict(backend="onnxruntime", dtype="bfloat16"),
            "dtype 'bfloat16' needs backend='torch' (the ONNX graphs are float32, or int8 with int8=True), "
            "got backend='onnxruntime'",
        ),
    ],
)
def test_setting_validation_messages(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        LatencySetting(**kwargs)
    assert str(err.value) == message


def test_setting_key_and_cache_stem() -> None:
    assert LatencySetting(num_threads=1).key == "cpu-torch-b1-s128-t1"
    assert LatencySetting().key == "cpu-torch-b1-s128-tdefault"
    setting = LatencySetting(device="cuda:1", backend="onnxruntime", batch_size=8, seq_len=64, num_threads=4)
    assert setting.key == "cuda1-onnxruntime-b8-s64-t4"
    assert setting.cache_stem == "cuda1-onnxruntime-b8-s64"
    # In words, without backend or type (export.py's line over torch, onnxruntime and int8 figures).
    assert setting.conditions == "cuda:1, batch 8, 64 tokens, 4 threads"
    assert LatencySetting(num_threads=1, backend="onnxruntime", int8=True).conditions == (
        "cpu, batch 1, 128 tokens, 1 thread"
    )
    assert LatencySetting().conditions == "cpu, batch 1, 128 tokens, default threads"
    # The whole setting in words (the plot's title), the backend and type first.
    assert setting.words == "onnxruntime, cuda:1, batch 8, 64 tokens, 4 threads"
    assert LatencySetting(num_threads=1, backend="onnxruntime", int8=True).words == (
        "onnxruntime int8, cpu, batch 1, 128 tokens, 1 thread"
    )
    assert (
        LatencySetting(dtype="bfloat16").words == "torch bfloat16, cpu, batch 1, 128 tokens, default threads"
    )
    # numpy's integers are integers (a seq_len read from an array); the setting holds ints.
    import numpy as np

    numpy_made = LatencySetting(seq_len=np.int64(64), batch_size=np.int32(2), num_threads=np.int64(1))
    assert numpy_made == LatencySetting(seq_len=64, batch_size=2, num_threads=1)
    assert type(numpy_made.seq_len) is int and numpy_made.key == "cpu-torch-b2-s64-t1"
    assert LatencySetting(warmup=0).warmup == 0
    assert LatencySetting.from_dict(setting.to_dict()) == setting
    with pytest.raises(ValueError) as info:
        LatencySetting.from_dict({"threads": 1})
    assert str(info.value) == (
        "unknown latency setting field(s) ['threads']; allowed: ['backend', 'batch_size', 'device', "
        "'dtype', 'int8', 'num_threads', 'repeats', 'seq_len', 'warmup']"
    )


def test_dtype_has_its_own_key_and_float32_files_keep_theirs() -> None:
    """Figures in bfloat16 or float16 are filed apart; a float32 setting writes what it wrote before
    dtype existed, so caches, chosen.json files and latency tables of earlier runs still match."""
    bf16 = LatencySetting(device="cuda", dtype="bfloat16", batch_size=32)
    assert bf16.key == "cuda-torch-bf16-b32-s128-tdefault"
    assert LatencySetting(dtype="float16").cache_stem == "cpu-torch-fp16-b1-s128"
    assert bf16.to_dict()["dtype"] == "bfloat16" and bf16.torch_dtype == torch.bfloat16
    assert LatencySetting.from_dict(bf16.to_dict()) == bf16
    assert "dtype" not in LatencySetting().to_dict()
    assert LatencySetting.from_dict(LatencySetting().to_dict()).dtype == "float32"


def test_a_model_of_another_dtype_is_refused() -> None:
    """A float32 model timed under a bfloat16 setting would file float32 figures as bfloat16's."""
    model = sn.to_supernet(tiny_model("bert"))
    with pytest.raises(ValueError) as err:
        measure_subnets(model, [sn.MAX_NET], LatencySetting(seq_len=16, dtype="bfloat16", **FAST))
    assert str(err.value) == (
        "model is in float32 but setting.dtype is 'bfloat16': cast the model first (model.to(torch.bfloat16))"
    )


def test_bfloat16_subnets_are_timed_in_bfloat16() -> None:
    model = sn.to_supernet(tiny_model("bert")).to(torch.bfloat16)
    seen: list[torch.dtype] = []
    handle = model.register_forward_hook(lambda m, i, out: seen.append(out.logits.dtype))
    grid = [sn.MAX_NET, sn.SubnetConfig(width_mult=0.5, depth_mult=0.5)]
    results = measure_subnets(model, grid, LatencySetting(seq_len=16, dtype="bfloat16", **FAST))
    handle.remove()
    assert [r.repeats for r in results] == [3, 3]
    assert set(seen) == {torch.bfloat16}


def test_setting_is_frozen_and_keyword_only() -> None:
    with pytest.raises(TypeError) as info:
        LatencySetting("cpu")  # type: ignore[misc]
    assert str(info.value) == "LatencySetting.__init__() takes 1 positional argument but 2 were given"
    with pytest.raises(AttributeError) as info:
        LatencySetting().batch_size = 2  # type: ignore[misc]
    assert str(info.value) == "cannot assign to field 'batch_size'"


# ---------------------------------------------------------------- timing


def test_result_from_samples_and_round_trip() -> None:
    result = LatencyResult.from_samples([3.0, 1.0, 4.0, 1.0, 5.0])
    assert result.median_ms == 3.0
    assert result.p10_ms == pytest.approx(1.0)  # position 0.4 between 1 and 1
    assert result.p90_ms == pytest.approx(4.6)  # position 3.6 between 4 and 5
    assert result.mean_ms == pytest.approx(2.8)
    assert result.std_ms == pytest.approx(statistics.pstdev([3, 1, 4, 1, 5]))
    assert result.repeats == 5
    assert LatencyResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    with pytest.raises(ValueError) as info:
        LatencyResult.from_dict({"median_ms": 1.0})
    assert str(info.value) == (
        "latency result needs exactly the keys ['median_ms', 'p10_ms', 'p90_ms', 'mean_ms', 'std_ms', "
        "'repeats'] (optional: ['flags', 'load_avg', 'other_cpu']), got ['median_ms']"
    )
    with pytest.raises(ValueError) as info:
        LatencyResult.from_samples([])
    assert str(info.value) == "samples_ms must hold at least one timing"


def test_measure_latency_counts_calls_and_uses_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    durations_ms = [3, 1, 4, 1, 5, 9, 2]
    ticks: list[int] = []
    now = 1_000_000_000
    for d in durations_ms:
        ticks += [now, now + d * 1_000_000]
        now += 50_000_000  # time between calls is not counted
    clock = iter(ticks)
    monkeypatch.setattr(time, "perf_counter_ns", lambda: next(clock))

    calls = []
    threads_inside = []

    def fn() -> None:
        calls.append(1)
        threads_inside.append(torch.get_num_threads())

    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    setting = LatencySetting(num_threads=target, warmup=4, repeats=len(durations_ms))
    result = measure_latency(fn, setting)
    assert len(calls) == 4 + len(durations_ms)
    assert set(threads_inside) == {target}
    assert torch.get_num_threads() == before
    assert next(clock, None) is None  # exactly two clock reads per timed call, none in warm-up
    # Timings as measured; the load fields hold whatever this machine did meanwhile.
    assert dataclasses.replace(result, load_avg=None, other_cpu=None) == LatencyResult.from_samples(
        [float(d) for d in durations_ms]
    )
    assert result.median_ms == 3.0
    assert result.repeats == 7


def test_measure_latency_restores_threads_on_error() -> None:
    before = torch.get_num_threads()

    def boom() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="^boom$"):
        measure_latency(boom, LatencySetting(num_threads=1 if before != 1 else 2, warmup=0, repeats=1))
    assert torch.get_num_threads() == before


def test_measure_subnet_torch_restores_state() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    model.train()
    sn.set_active_subnet(model, sn.SubnetConfig(width_mult=0.75))
    setting = LatencySetting(seq_len=16, **FAST)
    seen: list[tuple[int, int, int]] = []  # (layer, active width, tokens) of each layer's call
    hooks = [
        layer.attention.self.query.register_forward_hook(
            lambda m, args, out, i=i: seen.append((i, out.shape[-1], out.shape[1]))
        )
        for i, layer in enumerate(model.bert.encoder.layer)
    ]
    result = measure_subnet(model, sn.SubnetConfig(width_mult=0.5, depth_mult=0.5), setting)
    for hook in hooks:
        hook.remove()
    assert result.repeats == 3 and result.median_ms > 0
    # The subnet asked for is the one timed: half of the 4 heads of 8 in 2 of the 4 layers (DynaBERT's
    # depth rule keeps layers 0 and 2), on the setting's 16 tokens.
    assert {(i, width, tokens) for i, width, tokens in seen if tokens == 16} == {(0, 16, 16), (2, 16, 16)}
    assert sn.active_subnet(model) == sn.SubnetConfig(width_mult=0.75)
    assert model.training
    assert measure_model(model, setting).repeats == 3


def test_measure_subnets_interleaves_and_restores() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    seen: list[tuple[int, int]] = []  # (active width, tokens) of each call
    hook = model.bert.encoder.layer[0].attention.self.query.register_forward_hook(
        lambda m, args, out: seen.append((out.shape[-1], out.shape[1]))
    )
    cfgs = [
        sn.SubnetConfig(width_mult=1.0),
        sn.SubnetConfig(width_mult=0.5),
        sn.SubnetConfig(width_mult=0.25),
    ]
    setting = LatencySetting(seq_len=8, num_threads=1, warmup=1, repeats=4)
    results = measure_subnets(model, cfgs, setting, rounds=2)
    assert [r.repeats for r in results] == [4, 4, 4]
    # Pass 1, in order: warm-up + 2 timed calls per subnet.
    assert seen[:9] == [(32, 8)] * 3 + [(16, 8)] * 3 + [(8, 8)] * 3
    # Pass 2, in a shuffled order: a one-token call, then 2 timed calls, per subnet.
    blocks = [seen[9 + 3 * i : 12 + 3 * i] for i in range(3)]
    assert sorted(b[0][0] for b in blocks) == [8, 16, 32]
    assert all(b[0][1] == 1 and b[1:] == [(b[0][0], 8)] * 2 for b in blocks)
    assert len(seen) == 18
    assert sn.active_subnet(model) == sn.MAX_NET

    seen.clear()
    results = measure_subnets(model, cfgs, dataclasses.replace(setting, warmup=0, repeats=3))
    hook.remove()
    assert [r.repeats for r in results] == [3, 3, 3]
    # Default: one timed call per subnet per pass.
    timed = [w for w, s in seen if s == 8]
    assert len(timed) == 9 and all(sorted(timed[3 * i : 3 * i + 3]) == [8, 16, 32] for i in range(3))


def test_interleaved_measurements_show_one_bar_step_per_block(capsys, tmp_path) -> None:
    """A long measurement is not silent: a "latency" bar counts rounds x items, the item as postfix."""
    model = sn.to_supernet(tiny_model("bert"))
    cfgs = [
        sn.SubnetConfig(width_mult=1.0),
        sn.SubnetConfig(width_mult=0.5),
        sn.SubnetConfig(width_mult=0.25),
    ]
    setting = LatencySetting(seq_len=8, num_threads=1, warmup=1, repeats=4)
    measure_subnets(model, cfgs, setting, rounds=2)
    assert capsys.readouterr().err == ""  # off unless asked
    measure_subnets(model, cfgs, setting, rounds=2, progress=True)
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.match(r"latency: 100%\|.*\| 6/6 \[.*block/s, w(1\.00|0\.50|0\.25)-d1\.00\]$", final), final

    measure_interleaved({"a": tiny_model("bert"), "b": tiny_model("bert")}, setting, rounds=3, progress=True)
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.match(r"latency: 100%\|.*\| 6/6 \[.*block/s, [ab]\]$", final), final


def test_dummy_batch_shape_and_limit() -> None:
    model = tiny_model("bert")
    batch = dummy_batch(model.config, LatencySetting(batch_size=2, seq_len=10))
    assert batch["input_ids"].shape == (2, 10)
    assert batch["attention_mask"].eq(1).all()
    assert int(batch["input_ids"].max()) < model.config.vocab_size
    with pytest.raises(ValueError) as info:
        dummy_batch(model.config, LatencySetting(seq_len=65))
    assert str(info.value) == "seq_len 65 exceeds the 64 positions the model has (max_position_embeddings 64)"


def test_what_the_dummy_batch_cannot_drive_is_refused_in_one_line(tmp_path, monkeypatch) -> None:
    """A path, a bare module, a multiple-choice model, and more threads than cores: each one line,
    before anything is timed (they failed deep inside: no .parameters, no .config, a 3-D input)."""
    from transformers import BertForMultipleChoice

    setting = LatencySetting(**FAST)
    with pytest.raises(TypeError) as info:
        measure_model("models/bert", setting)  # type: ignore[arg-type]
    assert str(info.value) == (
        "expected a loaded model (a torch.nn.Module), got str: load a folder with transformers' "
        "from_pretrained first, or time an exported .onnx file with backend='onnxruntime'"
    )
    with pytest.raises(ValueError) as info:
        measure_model(torch.nn.Linear(4, 4), setting)
    assert str(info.value) == (
        "Linear has no transformers config to shape a dummy batch from: "
        "time it with measure_latency(lambda: model(inputs), setting)"
    )
    choice = BertForMultipleChoice(tiny_model("bert").config)
    for measure in (lambda: measure_model(choice, setting), lambda: measure_models({"mc": choice}, setting)):
        with pytest.raises(ValueError) as info:
            measure()
        assert str(info.value) == (
            "BertForMultipleChoice takes inputs of [batch, choices, sequence], the dummy batch is "
            "[batch, sequence]: time it with measure_latency(lambda: model(**inputs), setting) and "
            "inputs of your own"
        )
    with pytest.raises(FileNotFoundError) as missing:
        measure_interleaved({"m": tiny_model("bert"), "g": tmp_path / "g.onnx"}, setting)
    assert str(missing.value) == f"no ONNX graph at '{tmp_path / 'g.onnx'}' (item 'g')"
    # The CLIs' --threads refuses more threads than cores; the API said nothing and timed the wait.
    monkeypatch.setattr("supernet.profile_kit_script.usable_cores", lambda: 2)
    calls: list[int] = []
    with pytest.raises(ValueError) as info:
        measure_latency(lambda: calls.append(1), LatencySetting(**{**FAST, "num_threads": 3}))
    assert str(info.value) == (
        "num_threads=3 is more than the 2 cores this process may run on: the extra threads would wait "
        "for each other, not time the model; pass num_threads=2 or fewer"
    )
    assert calls == []
    model = sn.to_supernet(tiny_model("bert"))
    with pytest.raises(ValueError, match=r"^num_threads=3 is more than the 2 cores"):
        measure_subnets(model, [sn.MAX_NET], LatencySetting(seq_len=8, **{**FAST, "num_threads": 3}))
    assert measure_latency(lambda: calls.append(1), LatencySetting(**{**FAST, "num_threads": 2})).repeats == 3


def test_onnx_backend_needs_a_path() -> None:
    with pytest.raises(ValueError) as info:
        measure_subnet(None, sn.MAX_NET, LatencySetting(backend="onnxruntime"))
    assert str(info.value) == "onnx_path is required when backend='onnxruntime'"


def _export_onnx(model, path: Path, *, seq_len: int, dynamic: bool = True) -> Path:
    """`model` as an ONNX graph of input_ids and attention_mask (the TorchScript exporter), traced on a
    [1, seq_len] dummy batch; its batch and sequence axes dynamic unless `dynamic` is False."""
    batch = dummy_batch(model.config, LatencySetting(seq_len=seq_len))
    axes = {"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}} if dynamic else None
    with torch.no_grad():
        torch.onnx.export(
            model,
            (batch["input_ids"], batch["attention_mask"]),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes=axes,
            dynamo=False,
        )
    return path


def test_onnxruntime_path_on_a_tiny_export(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    path = _export_onnx(tiny_model("bert"), tmp_path / "tiny.onnx", seq_len=16)
    setting = LatencySetting(backend="onnxruntime", batch_size=2, seq_len=12, **FAST)
    opened: list[tuple[int, dict]] = []  # (intra-op threads, feed shapes) of each session timed
    real = latency._onnx_session

    def spy(onnx_path, setting):
        session, feeds = real(onnx_path, setting)
        opened.append(
            (session.get_session_options().intra_op_num_threads, {k: v.shape for k, v in feeds.items()})
        )
        return session, feeds

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(latency, "_onnx_session", spy)
        result = measure_model(None, setting, onnx_path=path)
    assert result.repeats == 3 and result.median_ms > 0
    # The setting's shape and threads are what is timed (the graph's dynamic axes would take any).
    assert opened == [(FAST["num_threads"], {"input_ids": (2, 12), "attention_mask": (2, 12)})]
    assert measure_subnet(None, sn.MAX_NET, setting, onnx_path=path).repeats == 3


def test_onnx_graph_that_cannot_take_the_setting_is_refused_in_one_line(tmp_path) -> None:
    """Too many tokens for the model beside the graph, or a fixed axis of another size: one line naming
    both figures, before anything is timed (onnxruntime would fail inside a Sum node)."""
    pytest.importorskip("onnxruntime")
    model = tiny_model("bert")  # 64 positions
    dynamic, fixed = tmp_path / "dynamic" / "model.onnx", tmp_path / "fixed" / "model.onnx"
    for path, is_dynamic in ((dynamic, True), (fixed, False)):
        path.parent.mkdir()
        model.config.to_json_file(str(path.parent / "config.json"))
        _export_onnx(model, path, seq_len=16, dynamic=is_dynamic)
    long = LatencySetting(backend="onnxruntime", seq_len=65, **FAST)
    for measure in (lambda: measure_onnx(dynamic, long), lambda: measure_onnx_files({"d": dynamic}, long)):
        with pytest.raises(ValueError) as info:
            measure()
        assert str(info.value) == (
            f"'{dynamic}': seq_len 65 exceeds the 64 positions the model has (max_position_embeddings 64)"
        )
    with pytest.raises(ValueError) as info:
        measure_onnx(fixed, LatencySetting(backend="onnxruntime", seq_len=12, **FAST))
    assert str(info.value) == (
        f"'{fixed}' has a fixed sequence axis of 16 on input 'input_ids', the setting asks for 12: "
        "export it with dynamic axes or measure at 16"
    )
    assert measure_onnx(fixed, LatencySetting(backend="onnxruntime", seq_len=16, **FAST)).repeats == 3
    with pytest.raises(FileNotFoundError) as missing:
        measure_onnx(tmp_path / "none.onnx", long)
    assert str(missing.value) == f"no ONNX graph at '{tmp_path / 'none.onnx'}'"
    # A torch setting (its dtype, its cache file) is not the graph's.
    with pytest.raises(ValueError) as info:
        measure_onnx(dynamic, LatencySetting(seq_len=12, **FAST))
    assert str(info.value) == "measure_onnx times an ONNX graph: use backend='onnxruntime'"
    # A config.json this cannot read as a model's is no reason to refuse the graph.
    (dynamic.parent / "config.json").write_text('{"max_position_embeddings": "n/a"}')
    assert measure_onnx(dynamic, LatencySetting(backend="onnxruntime", seq_len=12, **FAST)).repeats == 3


# ---------------------------------------------------------------- cache


def _result(ms: float) -> LatencyResult:
    return LatencyResult.from_samples([ms, ms + 1.0, ms + 2.0])


def test_cache_round_trip_and_layout(tmp_path) -> None:
    setting = LatencySetting(num_threads=1)
    cache = LatencyCache(tmp_path, setting)
    assert cache.path == tmp_path / "latency" / "cpu-torch-b1-s128-t1.json"
    a = sn.SubnetConfig(width_mult=0.5, depth_mult=0.75)
    b = sn.SubnetConfig(heads=(1, 2, 3, 4), ffn=(4, 3, 2, 1), layers=(0, 2))
    assert cache.get(a) is None and len(cache) == 0
    cache.put(a, _result(5.0))
    cache.put(b, _result(7.0))
    again = LatencyCache(tmp_path, setting)  # a fresh reader sees the file
    assert again.get(a) == _result(5.0)
    assert again.get(b) == _result(7.0)
    assert b in again and sn.MAX_NET not in again and len(again) == 2
    data = json.loads(cache.path.read_text())
    assert data["num_threads"] == 1
    assert data["setting"] == setting.to_dict()
    assert data["entries"][b.name]["spec"] == b.to_dict()
    assert os.listdir(cache.path.parent) == [cache.path.name]  # no temporary files left


def test_cache_per_thread_count_and_timing(tmp_path) -> None:
    """Each thread count has its own file (searches with --threads 1 and the default threads kept
    replacing each other's); a file timed with other warm-up or repeat counts is a miss."""
    cfg = sn.SubnetConfig(width_mult=0.25)
    LatencyCache(tmp_path, LatencySetting(num_threads=1)).put(cfg, _result(3.0))
    two = LatencyCache(tmp_path, LatencySetting(num_threads=2))
    assert two.path.name == "cpu-torch-b1-s128-t2.json"
    assert two.get(cfg) is None
    default = LatencyCache(tmp_path, LatencySetting())
    assert default.path.name == "cpu-torch-b1-s128-tdefault.json" and default.get(cfg) is None
    two.put(cfg, _result(4.0))
    assert two.get(cfg) == _result(4.0)
    assert LatencyCache(tmp_path, LatencySetting(num_threads=1)).get(cfg) == _result(3.0)  # kept
    assert LatencyCache(tmp_path, LatencySetting(num_threads=1, repeats=60)).get(cfg) is None
    assert LatencyCache(tmp_path, LatencySetting(num_threads=1, warmup=3)).get(cfg) is None
    # A file's thread count is checked too (one renamed by hand is not taken for another setting).
    shutil.copy(two.path, tmp_path / "latency" / "cpu-torch-b1-s128-t3.json")
    assert LatencyCache(tmp_path, LatencySetting(num_threads=3)).get(cfg) is None


def test_figures_of_another_timing_are_kept_beside(tmp_path) -> None:
    """One search with --repeats 31 replaced the file of a run's 30-repeat figures with its own
    entry: back at 30 repeats, every subnet was timed again."""
    a, b = sn.SubnetConfig(width_mult=0.25), sn.SubnetConfig(width_mult=0.5)
    usual = LatencyCache(tmp_path, LatencySetting(num_threads=1, warmup=5, repeats=30))
    usual.put(a, _result(3.0))
    usual.put(b, _result(4.0))
    more = LatencyCache(tmp_path, LatencySetting(num_threads=1, warmup=5, repeats=31))
    assert more.get(a) is None and more.path.name == "cpu-torch-b1-s128-t1.w5-r31.json"  # a miss
    assert (more.other_timing(), usual.other_timing()) == ((5, 30), None)  # what a search names
    more.put(b, _result(5.0))
    assert more.get(b) == _result(5.0)
    again = LatencyCache(tmp_path, LatencySetting(num_threads=1, warmup=5, repeats=30))
    assert (again.get(a), again.get(b), len(again)) == (_result(3.0), _result(4.0), 2)
    assert again.path.name == "cpu-torch-b1-s128-t1.json"
    assert sorted(os.listdir(usual.main.parent)) == [
        "cpu-torch-b1-s128-t1.json",
        "cpu-torch-b1-s128-t1.w5-r31.json",
    ]
    # The main file gone (or stale) since: the figures beside are still this timing's.
    usual.main.unlink()
    assert more.get(b) == _result(5.0) and more.path == more.beside
    more.put(a, _result(6.0))
    assert (more.get(a), more.get(b)) == (_result(6.0), _result(5.0)) and not usual.main.exists()


def test_a_folder_that_cannot_be_locked_is_written_unlocked(tmp_path, monkeypatch) -> None:
    """On NFS without lockd or Lustre mounted noflock, flock fails (ENOLCK, ENOSYS): the cache's
    lock made every put, and so search.py, fail after timing a batch."""
    import errno
    import fcntl

    def unsupported(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", unsupported)
    cache = LatencyCache(tmp_path, LatencySetting(num_threads=1))
    cache.put(sn.SubnetConfig(width_mult=0.5), _result(2.0))
    assert cache.get(sn.SubnetConfig(width_mult=0.5)) == _result(2.0)


def test_concurrent_puts_keep_every_entry(tmp_path, monkeypatch) -> None:
    """Two processes' puts each read the file, added an entry, wrote: the slower one's write dropped
    the other's entry."""
    import threading

    real_write = latency._atomic_write_json

    def slow_write(path, data):
        time.sleep(0.2)  # both puts would read the file before either writes
        real_write(path, data)

    monkeypatch.setattr(latency, "_atomic_write_json", slow_write)
    setting = LatencySetting(num_threads=1)
    cfgs = [sn.SubnetConfig(width_mult=w) for w in (0.25, 0.5, 0.75)]
    threads = [
        threading.Thread(target=LatencyCache(tmp_path, setting).put, args=(cfg, _result(float(i))))
        for i, cfg in enumerate(cfgs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache = LatencyCache(tmp_path, setting)
    assert [cache.get(cfg) for cfg in cfgs] == [_result(0.0), _result(1.0), _result(2.0)]


def test_onnxruntime_cache_from_another_graph_revision_is_a_miss(tmp_path) -> None:
    from supernet.export import ONNX_GRAPH_REVISION

    cfg = sn.SubnetConfig(width_mult=0.25)
    setting = LatencySetting(backend="onnxruntime", num_threads=1)
    cache = LatencyCache(tmp_path, setting)
    cache.put(cfg, _result(3.0))
    data = json.loads(cache.path.read_text())
    assert data["onnx_graph"] == ONNX_GRAPH_REVISION == 3 and cache.get(cfg) == _result(3.0)
    # A file written before revisions were recorded timed the revision-1 graph (LayerNorm kernels).
    del data["onnx_graph"]
    cache.path.write_text(json.dumps(data))
    assert cache.get(cfg) is None and len(cache) == 0
    cache.put(cfg, _result(2.0))  # measured again: the file now holds the current revision only
    assert cache.get(cfg) == _result(2.0) and json.loads(cache.path.read_text())["onnx_graph"] == 3
    # torch figures time the model itself: no revision is recorded or checked.
    torch_cache = LatencyCache(tmp_path, LatencySetting(num_threads=1))
    torch_cache.put(cfg, _result(5.0))
    assert "onnx_graph" not in json.loads(torch_cache.path.read_text()) and torch_cache.get(cfg) == _result(
        5.0
    )
    here, torch_setting = {"machine": measuring_machine(setting)}, LatencySetting(num_threads=1)
    assert is_stale({"format": 1} | here, setting)
    assert not is_stale({"format": 1, "machine": measuring_machine(torch_setting)}, torch_setting)
    assert not is_stale({"format": 1, "onnx_graph": 3} | here, setting)
    assert is_stale({"format": 1, "onnx_graph": 2} | here, setting)  # LayerNorms as primitives
    # int8 figures also stamp the int8 graph's revision (2: GELU biases added by the int8 MatMuls).
    int8 = LatencySetting(backend="onnxruntime", num_threads=1, int8=True)
    here8 = {"machine": measuring_machine(int8)}
    assert stale_reason({"format": 1, "onnx_graph": 3} | here8, int8) == "int8 graph revision 1, now 2"
    assert stale_reason({"format": 1, "onnx_graph": 2, "int8_graph": 2} | here8, int8) == (
        "ONNX graph revision 2, now 3"
    )
    assert stale_reason({"format": 1, "onnx_graph": 3, "int8_graph": 2} | here8, int8) is None
    int8_cache = LatencyCache(tmp_path, int8)
    int8_cache.put(cfg, _result(1.0))
    stamped = json.loads(int8_cache.path.read_text())
    assert (stamped["onnx_graph"], stamped["int8_graph"]) == (3, 2) and int8_cache.get(cfg) == _result(1.0)
    del stamped["int8_graph"]
    int8_cache.path.write_text(json.dumps(stamped))
    assert int8_cache.get(cfg) is None


def test_cache_of_another_machine_or_thread_count_is_a_miss(tmp_path) -> None:
    """A run folder moved to another device reused the first machine's figures under the same key,
    and the 'default threads' key held figures of whatever OMP_NUM_THREADS was."""
    cfg = sn.SubnetConfig(width_mult=0.25)
    setting = LatencySetting()  # torch's default thread count
    cache = LatencyCache(tmp_path, setting)
    cache.put(cfg, _result(3.0))
    data = json.loads(cache.path.read_text())
    assert (
        data["machine"] == measuring_machine(setting)
        and data["machine"]["threads"] == torch.get_num_threads()
    )
    assert cache.get(cfg) == _result(3.0)
    elsewhere = data | {"machine": data["machine"] | {"processor": "Other CPU"}}
    cache.path.write_text(json.dumps(elsewhere))
    with pytest.warns(LatencyWarning) as caught:
        assert cache.get(cfg) is None
    how = f"{os.cpu_count()} cores, {data['machine']['threads']} threads, torch {torch.__version__}"
    assert str(caught[0].message) == (
        f"latency cache {cache.path} does not hold here (measured on Other CPU ({how}), this is "
        f"{data['machine']['processor']} ({how})): its subnets are measured again"
    )
    cache.path.write_text(json.dumps(data))
    previous = torch.get_num_threads()
    torch.set_num_threads(previous + 1)  # as another OMP_NUM_THREADS would
    try:
        assert LatencyCache(tmp_path, setting).get(cfg) is None
    finally:
        torch.set_num_threads(previous)
    assert LatencyCache(tmp_path, setting).get(cfg) == _result(3.0)
    old = {k: v for k, v in data.items() if k != "machine"}  # written before machines were recorded
    cache.path.write_text(json.dumps(old))
    assert LatencyCache(tmp_path, setting).get(cfg) is None


def test_cache_failed_write_keeps_old_file_and_no_tmp(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = LatencyCache(tmp_path, LatencySetting(num_threads=1))
    cfg = sn.SubnetConfig(width_mult=0.5)
    cache.put(cfg, _result(2.0))
    before = cache.path.read_text()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="^disk full$"):
        cache.put(sn.SubnetConfig(width_mult=0.25), _result(1.0))
    monkeypatch.undo()
    assert cache.path.read_text() == before
    assert os.listdir(cache.path.parent) == [cache.path.name]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ('{"format": 99}', "unknown format"),
        # The next three were a KeyError, an AttributeError and a UnicodeDecodeError traceback in search.py.
        ('{"format": 1, "setting": {}, "num_threads": 1}', "unknown format"),
        ('{"format": 1, "num_threads": 1, "entries": {}}', "unknown format"),
        (b"\xff\xfe{}", "not valid JSON: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    ],
)  # fmt: skip
def test_corrupt_cache_is_a_miss_with_one_warning(tmp_path, text: str | bytes, problem: str) -> None:
    """A damaged cache only costs measuring again (it was a ValueError traceback in search.py)."""
    cache = LatencyCache(tmp_path, LatencySetting(num_threads=1))
    cache.path.parent.mkdir(parents=True)
    if isinstance(text, bytes):
        cache.path.write_bytes(text)
    else:
        cache.path.write_text(text)
    with pytest.warns(LatencyWarning) as raised:
        assert cache.get(sn.MAX_NET) is None and len(cache) == 0 and cache.other_timing() is None
    assert [str(w.message) for w in raised] == [
        f"latency cache {cache.path} cannot be read ({problem}): "
        "its subnets are measured again and the file replaced"
    ]
    result = LatencyResult.from_samples([1.0, 2.0, 3.0])
    cache.put(sn.MAX_NET, result)
    assert cache.get(sn.MAX_NET) == result


@pytest.mark.parametrize("entry", [[1, 2], {"spec": "SPEC", "result": {"median_ms": 1.0}}, {"spec": "SPEC"}])
def test_a_damaged_entry_is_a_miss_with_one_warning(tmp_path, entry) -> None:
    """An entry that is not an object, or whose result lacks keys: a traceback in search.py until then."""
    cache = LatencyCache(tmp_path, LatencySetting(num_threads=1))
    cache.put(sn.MAX_NET, _result(1.0))
    data = json.loads(cache.path.read_text())
    data["entries"][sn.MAX_NET.name] = (
        {k: sn.MAX_NET.to_dict() if v == "SPEC" else v for k, v in entry.items()}
        if isinstance(entry, dict)
        else entry
    )
    cache.path.write_text(json.dumps(data))
    with pytest.warns(LatencyWarning) as raised:
        assert cache.get(sn.MAX_NET) is None
    assert [str(w.message) for w in raised] == [
        f"latency cache {cache.path} holds a damaged entry for {sn.MAX_NET.name}: it is measured again"
    ]
    cache.put(sn.MAX_NET, _result(2.0))
    assert cache.get(sn.MAX_NET) == _result(2.0)


# ---------------------------------------------------------------- predictor

FIXED, A, B, C = 0.7, 0.05, 0.3, 0.02


def _true_layer(h: int, f: int, cross: float = 0.0) -> float:
    # Linear in heads and FFN neurons; `cross` adds a bilinear term, which the
    # "table" model captures exactly (any function of (h, f) at table points,
    # a bilinear one between them too) and the "additive" model cannot.
    return A + B * h + C * f + cross * h * f


def _true_ms(model: torch.nn.Module, cfg: sn.SubnetConfig, cross: float = 0.0) -> float:
    r = resolve_subnet(sn.supernet_state(model).arch, cfg)
    return FIXED + sum(_true_layer(r.heads[i], r.ffn[i], cross) for i in r.layers)


def _fake_measure(calls: list[sn.SubnetConfig], cross: float = 0.0):
    def measure(model, cfgs, setting):
        calls.extend(cfgs)
        return [LatencyResult.from_samples([_true_ms(model, c, cross)]) for c in cfgs]

    return measure


def _random_subnets(model: torch.nn.Module, n: int, seed: int) -> list[sn.SubnetConfig]:
    rng = random.Random(seed)
    out = [sn.sample_active_subnet(model, sn.SearchSpace(), rng, per_layer=True) for _ in range(n)]
    sn.set_max_net(model)
    return out


@pytest.mark.parametrize(("layer_model", "cross"), [("additive", 0.0), ("table", 0.0), ("table", 0.004)])
@pytest.mark.parametrize("table_depth", [None, 1, 2])
def test_predictor_recovers_a_linear_device(layer_model: str, cross: float, table_depth: int | None) -> None:
    model = sn.to_supernet(tiny_model("bert"))  # 4 layers, 4 heads, FFN 48
    sn.set_active_subnet(model, sn.SubnetConfig(width_mult=0.5))
    calls: list[sn.SubnetConfig] = []
    predictor = LatencyPredictor.build(
        model,
        LatencySetting(num_threads=1),
        table_depth=table_depth,
        layer_model=layer_model,
        measure=_fake_measure(calls, cross),
    )
    assert predictor.head_choices == (1, 2, 3, 4)
    assert predictor.ffn_choices == (12, 24, 36, 48)
    # 16 pairs at the table depth, 2 pairs at 2 other depths, 6 calibration subnets, in one call.
    assert len(calls) == 16 + 4 + 6
    assert predictor.fixed_ms == pytest.approx(FIXED, rel=1e-6)
    for (h, f), ms in predictor.table.items():
        assert ms == pytest.approx(_true_layer(h, f, cross), rel=1e-6)
    assert predictor.alpha == pytest.approx(1.0, rel=1e-6)
    assert predictor.beta == pytest.approx(0.0, abs=1e-6)
    assert len(predictor.calibration) == 6
    assert sn.active_subnet(model) == sn.SubnetConfig(width_mult=0.5)  # restored
    subnets = _random_subnets(model, 40, seed=7) + sn.SearchSpace().grid()
    for cfg in subnets:
        assert predictor.predict(cfg) == pytest.approx(_true_ms(model, cfg, cross), rel=1e-6)
    assert predictor.mape(subnets, [_true_ms(model, c, cross) for c in subnets]) < 1e-4


def test_additive_model_averages_noise() -> None:
    # The same noisy probes (+-10%, fixed seeds) solved both ways: over many
    # draws the additive fit predicts held-out subnets better on average.
    model = sn.to_supernet(tiny_model("bert"))
    subnets = _random_subnets(model, 30, seed=3)
    truth = [_true_ms(model, c) for c in subnets]
    errors: dict[str, list[float]] = {"additive": [], "table": []}
    for seed in range(20):
        rng = random.Random(seed)
        noisy: dict[sn.SubnetConfig, float] = {}

        def measure(m, cfgs, setting, noisy=noisy, rng=rng):
            for c in cfgs:
                noisy.setdefault(c, _true_ms(m, c) * (1 + rng.uniform(-0.1, 0.1)))
            return [LatencyResult.from_samples([noisy[c]]) for c in cfgs]

        for layer_model, errs in errors.items():
            predictor = LatencyPredictor.build(
                model, LatencySetting(), layer_model=layer_model, calibration_subnets=(), measure=measure
            )
            errs.append(predictor.mape(subnets, truth))
    assert statistics.fmean(errors["additive"]) < statistics.fmean(errors["table"])


def test_predictor_interpolates_counts_outside_the_table() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    predictor = LatencyPredictor.build(
        model,
        LatencySetting(num_threads=1),
        head_choices=(1, 4),
        ffn_choices=(12, 48),
        layer_model="table",
        calibration_subnets=(),
        measure=_fake_measure([], cross=0.004),
    )
    # Bilinear interpolation (and linear extrapolation) is exact for a bilinear cost.
    for h, f in [(2, 30), (3, 12), (4, 20)]:
        assert predictor.layer_ms(h, f) == pytest.approx(_true_layer(h, f, 0.004), rel=1e-6)
    with pytest.warns(LatencyWarning) as said:
        for h, f in [(2, 1), (1, 1)]:
            assert predictor.layer_ms(h, f) == pytest.approx(_true_layer(h, f, 0.004), rel=1e-6)
        cfg = sn.SubnetConfig(heads=(2, 3, 1, 4), ffn=(30, 12, 5, 48), layers=(0, 1, 3))
        assert predictor.predict(cfg) == pytest.approx(_true_ms(model, cfg, 0.004), rel=1e-6)
    assert [str(w.message) for w in said] == [  # once per predictor
        "latency predictor: 2 heads / 1 FFN neurons lie outside its table (heads [1, 4], FFN [12, 48]): "
        "that layer's cost is extrapolated"
    ]
    # A line through two measured counts can cross zero below the smallest: no layer costs < 0 ms
    # (heads 1 and 4 at 1 neuron read -0.15 ms for the layer on a table of 2-4 heads, 24-48 neurons).
    steep = LatencyPredictor(
        arch=predictor.arch,
        setting=predictor.setting,
        head_choices=(2, 4),
        ffn_choices=(24, 48),
        table={(2, 24): 1.0, (2, 48): 3.0, (4, 24): 2.0, (4, 48): 4.0},
        fixed_ms=0.5,
    )
    with pytest.warns(LatencyWarning):
        assert steep.layer_ms(2, 1) == 0.0 and steep.layer_ms(2, 12) == 0.0
    assert steep.layer_ms(3, 36) == pytest.approx(2.5)


def test_predictor_calibration_fits_scale_and_offset() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    predictor = LatencyPredictor.build(
        model, LatencySetting(num_threads=1), calibration_subnets=(), measure=_fake_measure([])
    )
    subnets = _random_subnets(model, 5, seed=3)
    predictor.calibrate([(c, 1.25 * _true_ms(model, c) + 0.4) for c in subnets])
    assert predictor.calibration_model == "affine"
    assert predictor.alpha == pytest.approx(1.25, rel=1e-6)
    assert predictor.beta == pytest.approx(0.4, rel=1e-6)
    cfg = sn.SubnetConfig(width_mult=0.75, depth_mult=0.5)
    assert predictor.predict(cfg) == pytest.approx(1.25 * _true_ms(model, cfg) + 0.4, rel=1e-6)
    predictor.calibrate([(subnets[0], 2 * _true_ms(model, subnets[0]))])  # one point: scale only
    assert (predictor.alpha, predictor.beta) == (pytest.approx(2.0), 0.0)
    predictor.calibrate([(c, 0.9 * _true_ms(model, c)) for c in subnets])  # a pure scale: the simpler fit
    assert predictor.calibration_model == "scale"
    assert (predictor.alpha, predictor.beta) == (pytest.approx(0.9), 0.0)
    # Unbiased noise: fitting it would only bend the table, so no calibration wins.
    noise = [1.06, 0.95, 1.04, 0.93, 1.05]
    predictor.calibrate([(c, e * _true_ms(model, c)) for c, e in zip(subnets, noise, strict=True)])
    assert predictor.calibration_model == "identity"
    assert (predictor.alpha, predictor.beta) == (1.0, 0.0)
    assert LatencyPredictor.from_dict(predictor.to_dict()).calibration_model == "identity"


def test_predictor_models_the_chosen_statistic() -> None:
    model = sn.to_supernet(tiny_model("bert"))

    def measure(m, cfgs, setting):
        # p10 is exactly the linear device; the median is 3 ms slower.
        return [LatencyResult.from_samples([_true_ms(m, c)] * 2 + [_true_ms(m, c) + 3.0] * 8) for c in cfgs]

    predictor = LatencyPredictor.build(model, LatencySetting(), statistic="p10_ms", measure=measure)
    assert predictor.statistic == "p10_ms"
    cfg = sn.SubnetConfig(width_mult=0.5, depth_mult=0.75)
    assert predictor.predict(cfg) == pytest.approx(_true_ms(model, cfg), rel=1e-6)
    assert predictor.mape([cfg], measure(model, [cfg], None)) == pytest.approx(0.0, abs=1e-6)
    assert LatencyPredictor.from_dict(predictor.to_dict()).statistic == "p10_ms"
    with pytest.raises(ValueError) as info:
        LatencyPredictor.build(model, LatencySetting(), statistic="max_ms", measure=measure)
    assert str(info.value) == "statistic must be one of ['median_ms', 'p10_ms', 'mean_ms'], got 'max_ms'"


def test_predictor_save_load_round_trip(tmp_path) -> None:
    model = sn.to_supernet(tiny_model("bert"))
    setting = LatencySetting(num_threads=1, seq_len=32)
    predictor = LatencyPredictor.build(model, setting, measure=_fake_measure([]))
    path = tmp_path / "sub" / "predictor.json"
    predictor.save(path)
    loaded = LatencyPredictor.load(path)
    assert loaded.setting == setting
    assert loaded.arch == predictor.arch
    assert loaded.table == predictor.table
    assert (loaded.fixed_ms, loaded.alpha, loaded.beta) == (
        predictor.fixed_ms,
        predictor.alpha,
        predictor.beta,
    )
    assert loaded.calibration == predictor.calibration
    for cfg in _random_subnets(model, 10, seed=1):
        assert loaded.predict(cfg) == predictor.predict(cfg)
    assert os.listdir(path.parent) == ["predictor.json"]


def test_predictor_mape_and_validation() -> None:
    model = sn.to_supernet(tiny_model("bert"))
    predictor = LatencyPredictor.build(
        model, LatencySetting(num_threads=1), calibration_subnets=(), measure=_fake_measure([])
    )
    a, b = sn.SubnetConfig(width_mult=0.5), sn.SubnetConfig(width_mult=0.25)
    pa, pb = predictor.predict(a), predictor.predict(b)
    # Errors of 10% and 30% -> 20%; a LatencyResult counts by its median.
    assert predictor.mape([a, b], [pa / 1.1, LatencyResult.from_samples([pb / 1.3])]) == pytest.approx(20.0)
    with pytest.raises(ValueError) as info:
        predictor.mape([a, b], [1.0])
    assert str(info.value) == "got 2 subnets but 1 measurements"
    with pytest.raises(ValueError) as info:
        LatencyPredictor.build(model, LatencySetting(), head_choices=(5,), measure=_fake_measure([]))
    assert str(info.value) == "head_choices values must be in [1, 4], got 5"
    with pytest.raises(ValueError) as info:
        LatencyPredictor.build(model, LatencySetting(), table_depth=5, measure=_fake_measure([]))
    assert str(info.value) == "table_depth must be in [1, 4], got 5"
    with pytest.raises(ValueError) as info:
        LatencyPredictor.build(model, LatencySetting(), layer_model="mlp", measure=_fake_measure([]))
    assert str(info.value) == "layer_model must be one of ['additive', 'table'], got 'mlp'"


def test_predictor_build_on_real_timings_is_sane() -> None:
    # Real measurements on a tiny model: no accuracy threshold (timings are
    # noisy), only that the pipeline runs and gives positive, ordered figures.
    model = sn.to_supernet(tiny_model("bert"))
    setting = LatencySetting(seq_len=16, num_threads=1, warmup=1, repeats=3)
    predictor = LatencyPredictor.build(model, setting, calibration_subnets=[sn.MAX_NET])
    assert predictor.predict(sn.MAX_NET) > 0
    assert len(predictor.table) == 16
    assert [cfg for cfg, _ in predictor.calibration] == [sn.MAX_NET]
    # Half the layers at a quarter of the width: predicted faster, whatever the noise (about 2x apart).
    assert predictor.predict(sn.SubnetConfig(width_mult=0.25, depth_mult=0.5)) < predictor.predict(sn.MAX_NET)


# ---------------------------------------------------------------- load and spread


def _with(median: float, p10: float, p90: float, other_cpu: float | None) -> LatencyResult:
    return LatencyResult(
        median_ms=median, p10_ms=p10, p90_ms=p90, mean_ms=median, std_ms=0.0, repeats=10, other_cpu=other_cpu
    )


def test_flags_follow_the_stated_bounds() -> None:
    assert LOAD_BOUND_CORES == 0.10 and SPREAD_BOUND == 0.10
    assert _with(10.0, 9.6, 10.5, 0.05).flags == ()  # 9% spread, 0.05 cores
    assert _with(10.0, 9.6, 10.5, None).flags == ()  # load unknown (no /proc/stat): not flagged
    assert _with(10.0, 9.6, 10.5, 0.2).flags == ("load",)
    assert _with(10.0, 9.0, 11.5, 0.0).flags == ("spread",)
    assert _with(10.0, 9.0, 11.5, 1.0).flags == ("load", "spread")
    assert _with(10.0, 9.0, 11.5, 0.0).spread == pytest.approx(0.25)
    assert load_warning({"a": _with(10.0, 9.6, 10.5, 0.0)}) is None
    line = load_warning({"a": _with(10.0, 9.6, 10.5, 0.0), "b": _with(10.0, 9.0, 11.5, 0.5)})
    assert line == (
        "latency of b may not be the model's alone: other processes took up to 0.50 cores (bound 0.10); "
        "p10-p90 spread up to 25% of the median (bound 10%); remeasure on an idle machine"
    )
    # A spread on a machine measured quiet is not blamed on other processes; unknown load still is.
    assert load_warning({"a": _with(10.0, 9.0, 11.5, 0.05), "b": _with(10.0, 9.0, 12.0, 0.0)}) == (
        "latency of a, b varied while no other process took the cores: p10-p90 spread up to 30% of the "
        "median (bound 10%); remeasure, with more warm-up calls if it persists"
    )
    # A spread just over the bound is not printed as the bound itself ("10% (bound 10%)").
    assert "spread up to 10.4% of the median (bound 10%)" in load_warning({"a": _with(10.0, 9.5, 10.54, 0.0)})
    assert load_warning({"a": _with(10.0, 9.0, 11.5, None)}) == (
        "latency of a may not be the model's alone: p10-p90 spread up to 25% of the median (bound 10%); "
        "remeasure on an idle machine"
    )
    # The JSON form carries the flags for readers and reads back without them; old files lack the load.
    r = _with(10.0, 9.0, 11.5, 0.5)
    assert r.to_dict()["flags"] == ["load", "spread"] and LatencyResult.from_dict(r.to_dict()) == r
    old = {k: v for k, v in r.to_dict().items() if k not in ("flags", "load_avg", "other_cpu")}
    assert LatencyResult.from_dict(old).other_cpu is None


def test_load_report_of_a_bench_script_names_the_loaded_parts() -> None:
    def load(other: float | None, avg: float | None = 1.0) -> MachineLoad:
        return MachineLoad(load_avg=avg, other_cpu=other, wall_s=2.0)

    assert load_report({"a": load(0.02, 0.4), "b": load(0.10, 1.2)}) == (
        "load while timing: other processes took at most 0.10 cores (bound 0.10), 1-min load average 0.40-1.20",
        None,
    )
    parts = {f"p{i}": load(0.05 * i) for i in range(8)}
    assert load_report(parts)[1] == (
        "p3, p4, p5, p6 and 1 more ran while other processes took up to 0.35 cores (bound 0.10): "
        "remeasure on an idle machine"
    )
    assert load_report({"a": load(None, None)}) == (
        "load while timing: other processes' CPU time unknown (no /proc/stat)",
        None,
    )
    assert load(0.11).to_dict() == {"load_avg": 1.0, "other_cpu": 0.11, "wall_s": 2.0, "loaded": True}


def test_monitor_load_subtracts_own_cpu_and_one_tick_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    import supernet.latency as lat
    from supernet import profile_kit_script

    readings = iter([(100.0, 1.0, None), (101.5, 1.4, None)])  # machine busy +1.5 s, this process +0.4 s
    clock = iter([50.0, 52.0])  # over 2 s of wall time
    monkeypatch.setattr(lat, "cpu_seconds", lambda: next(readings))
    monkeypatch.setattr(lat.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(lat.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(profile_kit_script, "_CLOCK_TICKS", 100.0)
    with monitor_load() as probe:
        pass
    assert probe.load is not None and probe.load.wall_s == 2.0
    assert probe.load.other_cpu == pytest.approx((1.5 - 0.4 - 0.02) / 2.0)

    readings = iter([(None, 1.0, None), (None, 1.4, None)])  # no /proc/stat
    clock = iter([50.0, 52.0])
    with monitor_load() as probe:
        pass
    assert probe.load == MachineLoad(load_avg=probe.load.load_avg, other_cpu=None, wall_s=2.0)


def test_a_busy_process_is_detected_and_flagged() -> None:
    import subprocess
    import sys

    if not os.path.exists("/proc/stat"):
        pytest.skip("needs /proc/stat")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # let it start spinning
        setting = LatencySetting(num_threads=1, warmup=0, repeats=20)
        with pytest.warns(LatencyWarning, match="other processes took up to"):
            # Sleeping calls: this process takes almost no CPU, the spinning child about a core.
            result = measure_latency(lambda: time.sleep(0.02), setting)
    finally:
        busy.kill()
        busy.wait()
    assert result.other_cpu is not None and result.other_cpu >= 0.5
    assert "load" in result.flags and result.load_avg is not None


def test_int8_setting_needs_onnxruntime() -> None:
    assert LatencySetting(backend="onnxruntime", int8=True).cache_stem == "cpu-onnxruntime-int8-b1-s128"
    assert LatencySetting(backend="onnxruntime").cache_stem == "cpu-onnxruntime-b1-s128"
    with pytest.raises(ValueError) as info:
        LatencySetting(int8=True)
    assert str(info.value) == "int8 needs backend='onnxruntime' (an int8 ONNX graph), got backend='torch'"
    assert LatencySetting.from_dict({"backend": "onnxruntime"}).int8 is False  # settings saved before int8


def _onnx_graphs(tmp_path, layer_counts: dict[str, int]) -> dict[str, Path]:
    """Tiny BERT graphs with the given numbers of layers, exported with dynamic axes."""
    model = tiny_model("bert")
    paths = {}
    for name, layers in layer_counts.items():
        model.config.num_hidden_layers = layers
        small = type(model)(model.config).eval()
        paths[name] = _export_onnx(small, tmp_path / f"{name}.onnx", seq_len=8)
    return paths


def test_onnx_files_are_timed_interleaved_with_their_load(tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    paths = _onnx_graphs(tmp_path, {"four": 4, "two": 2})
    sessions: list[str] = []
    real_session = latency._onnx_session

    def session(path, setting):
        sessions.append(Path(path).stem)
        return real_session(path, setting)

    monkeypatch.setattr(latency, "_onnx_session", session)
    setting = LatencySetting(backend="onnxruntime", seq_len=8, num_threads=1, warmup=1, repeats=5)
    results = measure_onnx_files(paths, setting, rounds=2)
    assert list(results) == ["four", "two"]
    assert all(r.repeats == 5 and r.median_ms > 0 for r in results.values())
    # In rounds: each graph once per round (a fresh session per block), the first round in order.
    assert sessions[:2] == ["four", "two"] and sorted(sessions[2:]) == ["four", "two"]
    # One load record for the interleaved run, shared by every graph.
    assert results["four"].other_cpu == results["two"].other_cpu
    with pytest.raises(ValueError) as info:
        measure_onnx_files(paths, LatencySetting(), rounds=2)
    assert str(info.value) == "measure_onnx_files times ONNX graphs: use backend='onnxruntime'"


def test_torch_and_onnx_interleaved_in_rounds(tmp_path, monkeypatch) -> None:
    """export.py's torch and onnxruntime figures: blocks alternate, a fresh session per ONNX block."""
    pytest.importorskip("onnxruntime")
    paths = _onnx_graphs(tmp_path, {"graph": 2})
    model = tiny_model("bert").train()
    visits: list[tuple[int, int, bool]] = []
    sessions: list[str] = []
    real_calls, real_session = latency._timed_calls, latency._onnx_session

    def calls(fn, setting, *, warmup, repeats, torch_call):
        visits.append((warmup, repeats, torch_call))
        return real_calls(fn, setting, warmup=warmup, repeats=repeats, torch_call=torch_call)

    def session(path, setting):
        sessions.append(str(path))
        return real_session(path, setting)

    monkeypatch.setattr(latency, "_timed_calls", calls)
    monkeypatch.setattr(latency, "_onnx_session", session)
    setting = LatencySetting(seq_len=8, num_threads=1, warmup=3, repeats=7)
    results = measure_interleaved({"torch": model, "onnx": paths["graph"]}, setting, rounds=3)
    assert list(results) == ["torch", "onnx"]
    assert all(r.repeats == 7 and r.median_ms > 0 for r in results.values())
    # 7 calls over 3 rounds: 3 + 2 + 2; full warm-up before an item's first block, 2 after. Each
    # item's own kind picks the clock (the setting's backend is torch's default here): a torch model
    # on a CUDA device was timed by the host clock, without synchronising, under backend onnxruntime.
    torch_block, onnx_block = (True, False)
    assert visits == [
        (3, 3, torch_block),
        (3, 3, onnx_block),
        (2, 2, onnx_block),
        (2, 2, torch_block),
        (2, 2, onnx_block),
        (2, 2, torch_block),
    ]
    assert sessions == [str(paths["graph"])] * 3  # one fresh session per block of the graph
    assert model.training  # its mode is restored
    assert results["torch"].other_cpu == results["onnx"].other_cpu  # one load record for the run
    # --warmup 0: a session opened for a block still gets its one set-up call untimed (its first call
    # took 2.5 times a warm one, the median of 6 rounds x 1 call 0.214 ms against 0.082 ms).
    visits.clear()
    setting = LatencySetting(backend="onnxruntime", seq_len=8, num_threads=1, warmup=0, repeats=3)
    measure_interleaved({"torch": model, "onnx": paths["graph"]}, setting, rounds=3)
    assert sorted(visits) == [(0, 1, True)] * 3 + [(1, 1, False)] * 3


def test_unavailable_names_what_the_machine_lacks(monkeypatch) -> None:
    import onnxruntime as ort

    assert latency.unavailable(LatencySetting()) is None  # the CPU is always there
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert latency.unavailable(LatencySetting(device="cuda")) == (
        f"this torch ({torch.__version__}) sees no CUDA device"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert latency.unavailable(LatencySetting(device="cuda:1")) is None
    assert (
        latency.unavailable(LatencySetting(device="cuda:2"))
        == "this machine has 2 CUDA device(s), cuda:0..cuda:1"
    )
    # onnxruntime without its CUDA provider would run the graph on the CPU under the GPU's name.
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    on_gpu = LatencySetting(device="cuda", backend="onnxruntime")
    missing = f"onnxruntime {ort.__version__} here has no CUDA provider (install onnxruntime-gpu)"
    assert latency.unavailable(on_gpu) == missing
    assert latency.unavailable(LatencySetting(device="cuda"), onnx=True) == missing
    assert latency.unavailable(on_gpu, onnx=False) is None
    monkeypatch.setattr(
        ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert latency.unavailable(on_gpu) is None
