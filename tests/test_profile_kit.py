"""Device profile kit: kit files, profile.py without torch, the table's predictor, search --latency-table."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest
from conftest import copy_run, tiny_model

from supernet import SearchSpace, SubnetConfig, to_supernet
from supernet.cli import export_main, search_main
from supernet.convert import Arch, supernet_state
from supernet.latency import LatencySetting
from supernet.profile_kit import (
    ProfileKitError,
    add_to_kit,
    kit_entries,
    kit_manifest,
    load_latency_table,
    run_identity,
    write_profile_kit,
)
from supernet.profile_kit_script import flag_warning, result_flags
from supernet.search import read_results

PRESET = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
SPACE = SearchSpace(width_mults=(1.0, 0.5), depth_mults=(1.0, 0.5))
# One grid point and one per-layer subnet calibrate: enough to fit a scale, few ONNX exports.
CALIBRATION = [
    SubnetConfig(width_mult=1.0, depth_mult=1.0),
    SubnetConfig(heads=(2, 4), ffn=(48, 24), layers=(0, 1)),
]
HELD_OUT = [
    SubnetConfig(heads=(4, 2), ffn=(24, 48), layers=(0, 1)),
    SubnetConfig(heads=(2, 2), ffn=(48, 48), layers=(0, 1)),
    SubnetConfig(heads=(4, 2), ffn=(24, 24), layers=(1,)),
]
RUN = {"name": "tiny", "config_sha256": "0" * 64}
SEQ = 64  # the tiny model's longest; longer calls time more reliably
FAKE_SEQ = 32


def poisoned_env(tmp: Path) -> dict[str, str]:
    """An environment where `import torch`, `transformers` or `supernet` raises ImportError."""
    poison = tmp / "poison"
    poison.mkdir(exist_ok=True)
    for name in ("torch", "transformers", "supernet"):
        (poison / f"{name}.py").write_text(f"raise ImportError('{name} is not installed on the device')\n")
    return {**os.environ, "PYTHONPATH": str(poison), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def model():
    return to_supernet(tiny_model("bert", num_layers=2, num_labels=2))


@pytest.fixture(scope="module")
def kit(tmp_path_factory, model) -> Path:
    out = tmp_path_factory.mktemp("kit") / "kit"
    write_profile_kit(model, out, run=RUN, space=SPACE, calibration_subnets=CALIBRATION)
    # Timed by profile.py in the same rounds as the kit's files; the predictor ignores them.
    add_to_kit(out, model, HELD_OUT, role="held-out")
    return out


@pytest.fixture(scope="module")
def table(kit: Path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    return _profiled(kit, tmp_path_factory.mktemp("env"))


def _profiled(kit: Path, env_dir: Path, out: Path | None = None) -> tuple[Path, subprocess.CompletedProcess]:
    """The kit's table (at `out`, default beside the kit), timed by its profile.py in a process
    that cannot import torch."""
    out = kit.parent / "latency-table.json" if out is None else out
    # 120 calls over 6 rounds: with 40 over 4 the held-out MAPE of these sub-millisecond graphs
    # ranged 0.2-7.6% on an idle VM and once passed the 15% bound below; with 120/6, 0.15-0.33%.
    proc = subprocess.run(
        [sys.executable, str(kit / "profile.py"), "--threads", "1", "--seq-len", str(SEQ)]
        + ["--warmup", "3", "--repeats", "120", "--rounds", "6", "--out", str(out)],
        env=poisoned_env(env_dir),
        capture_output=True,
        text=True,
        cwd=kit.parent,
        timeout=300,
    )
    return out, proc


def test_kit_lists_the_predictors_subnets(model) -> None:
    entries = kit_entries(model, space=SPACE, calibration_subnets=CALIBRATION)
    # 2 head counts x 2 FFN counts at full depth, the largest and smallest pair at depth 1, then calibration.
    assert [e.file for e in entries] == [
        "probe-h2-f24-l2.onnx",
        "probe-h2-f48-l2.onnx",
        "probe-h4-f24-l2.onnx",
        "probe-h4-f48-l2.onnx",
        "probe-h4-f48-l1.onnx",
        "probe-h2-f24-l1.onnx",
        "calib-w1.00-d1.00.onnx",
        f"calib-{CALIBRATION[1].name}.onnx",
    ]
    assert entries[4].subnet == SubnetConfig(heads=(4, 4), ffn=(48, 48), layers=(0,))
    assert entries[4].what == "first 1 of 2 layers, each with 4 heads and 48 FFN neurons"
    assert [e.role for e in entries] == ["probe"] * 6 + ["calibration"] * 2


@pytest.mark.slow
def test_kit_folder(kit: Path, model, tmp_path: Path) -> None:
    import onnx

    from supernet.export import export_subnet, onnx_fingerprint

    manifest = json.loads((kit / "kit.json").read_text())
    # Readable by others, as an export folder (it was built under tempfile.mkdtemp's 0700).
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(kit.stat().st_mode) == 0o777 & ~umask
    assert sorted(p.name for p in kit.iterdir()) == sorted(
        ["kit.json", "profile.py", "weights.bin"] + [e["file"] for e in manifest["entries"]]
    )
    # The kit's own graphs keep every weight of 1 KiB or more in the one shared file; the held-out
    # ones (added later, as a shipped export) keep theirs inline.
    weights = manifest["weights"]
    assert (weights["file"], weights["bytes"]) == ("weights.bin", (kit / "weights.bin").stat().st_size)
    assert weights["inline_bytes"] > 4 * weights["bytes"] and weights["tensors"] > 0
    for entry in manifest["entries"]:
        graph = onnx.load(str(kit / entry["file"]), load_external_data=False).graph
        big = [
            t
            for t in graph.initializer
            if t.data_location == onnx.TensorProto.EXTERNAL or len(t.raw_data) >= 1024
        ]
        external = {t.data_location == onnx.TensorProto.EXTERNAL for t in big}
        assert big and external == {entry["role"] != "held-out"}, entry["file"]
    # Each distinct tensor is stored once, and the graphs compute what a shipped export computes.
    shipped = export_subnet(model, CALIBRATION[0], tmp_path / "exp", onnx=True)
    assert onnx_fingerprint(shipped.onnx_path) == onnx_fingerprint(kit / "calib-w1.00-d1.00.onnx")

    # A narrower probe's output projection (2 heads x 8 = 16 rows) and second FFN linear (24 rows) are
    # the first rows of the widest probe's (32 and 48 rows of 32 floats): they point at those bytes.
    def external(file: str) -> dict[tuple[int, ...], set[tuple[int, int]]]:
        found: dict[tuple[int, ...], set[tuple[int, int]]] = {}
        for t in onnx.load(str(kit / file), load_external_data=False).graph.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                info = {e.key: e.value for e in t.external_data}
                found.setdefault(tuple(t.dims), set()).add((int(info["offset"]), int(info["length"])))
        return found

    wide, narrow = external("probe-h4-f48-l2.onnx"), external("probe-h2-f24-l2.onnx")
    assert {o for o, _ in narrow[(24, 32)]} == {o for o, _ in wide[(48, 32)]}  # 2 layers' FFN output
    assert {n for _, n in narrow[(24, 32)]} == {24 * 32 * 4} and {n for _, n in wide[(48, 32)]} == {
        48 * 32 * 4
    }
    assert len(narrow[(16, 32)]) == 2 and {o for o, _ in narrow[(16, 32)]} < {o for o, _ in wide[(32, 32)]}
    assert weights["prefixes"] == 4, weights  # those four tensors, the only ones a narrower graph has
    narrow_cfg = SubnetConfig(heads=(2, 2), ffn=(24, 24), layers=(0, 1))
    probe = export_subnet(model, narrow_cfg, tmp_path / "narrow", onnx=True)
    assert onnx_fingerprint(probe.onnx_path) == onnx_fingerprint(kit / "probe-h2-f24-l2.onnx")
    assert manifest["weights"]["bytes"] < 2 * shipped.onnx_path.stat().st_size  # 8 graphs, ~1.4 models
    assert [e["role"] for e in manifest["entries"]] == ["probe"] * 6 + ["calibration"] * 2 + ["held-out"] * 3
    assert manifest["entries"][-1] == {
        "file": f"held-out-{HELD_OUT[2].name}.onnx",
        "role": "held-out",
        "spec": {"heads": [4, 2], "ffn": [24, 24], "layers": [1]},
        "what": f"held-out subnet {HELD_OUT[2].name}",
        "bytes": (kit / f"held-out-{HELD_OUT[2].name}.onnx").stat().st_size,
        "sha256": hashlib.sha256((kit / f"held-out-{HELD_OUT[2].name}.onnx").read_bytes()).hexdigest(),
    }
    # Each file's size and digest, which profile.py checks before it times anything.
    assert all(e["bytes"] == (kit / e["file"]).stat().st_size for e in manifest["entries"])
    digests = {e["file"]: e["sha256"] for e in [*manifest["entries"], manifest["weights"]]}
    assert digests == {f: hashlib.sha256((kit / f).read_bytes()).hexdigest() for f in digests}
    assert manifest["arch"] == {
        "family": "bert",
        "num_layers": 2,
        "num_heads": 4,
        "head_dim": 8,
        "hidden_size": 32,
        "ffn_dim": 48,
    }
    assert manifest["run"] == RUN and manifest["space"] == {
        "width_mults": [1.0, 0.5],
        "depth_mults": [1.0, 0.5],
    }
    # The script is shipped verbatim, and each file is a graph with the probe's depth.
    assert (kit / "profile.py").read_bytes() == (
        Path(__file__).resolve().parents[1] / "supernet" / "profile_kit_script.py"
    ).read_bytes()
    session = onnxruntime.InferenceSession(str(kit / "probe-h4-f48-l1.onnx"))
    assert [i.name for i in session.get_inputs()][:2] == ["input_ids", "attention_mask"]


@pytest.mark.slow
def test_profile_script_runs_without_torch(table, kit: Path, tmp_path) -> None:
    # The poison works: torch cannot be imported in that environment.
    check = subprocess.run(
        [sys.executable, "-c", "import torch"], env=poisoned_env(tmp_path), capture_output=True, text=True
    )
    assert check.returncode == 1 and "torch is not installed on the device" in check.stderr
    path, proc = table
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(
        "profiling 11 ONNX files of tiny (threads 1, batch 1, seq len 64, 120 calls each over 6 rounds) ..."
    )
    progress = [line for line in lines if line.startswith("[")]
    assert len(progress) == 11 * 6  # one progress line per file and round
    # Each says how long the rest will take, the last one only how long it took.
    assert all(re.search(r"\(\d+ s elapsed, about \d+ s left\)$", line) for line in progress[:-1])
    assert re.search(r"\(\d+ s elapsed\)$", progress[-1])
    assert lines[-1] == f"wrote {path}"
    data = json.loads(path.read_text())
    assert data["setting"] == {
        "backend": "onnxruntime",
        "provider": "CPUExecutionProvider",
        "num_threads": 1,
        "batch_size": 1,
        "seq_len": SEQ,
        "warmup": 3,
        "repeats": 120,
        "rounds": 6,
    }
    assert data["onnxruntime_version"] == onnxruntime.__version__
    assert set(data["device"]) == {
        "cpu",
        "int8_dot_product",
        "machine",
        "platform",
        "cpu_count",
        "hostname",
        "python",
    }
    assert data["device"]["cpu_count"] == os.cpu_count()
    assert data["timestamp"].endswith("+00:00")
    assert data["kit"] == json.loads((kit / "kit.json").read_text())
    assert set(data["results"]) == {e["file"] for e in data["kit"]["entries"]}
    for r in data["results"].values():
        assert r["repeats"] == 120 and 0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
    # The device's load over the whole run, the same for every file (their calls are interleaved),
    # and each file's flags by the bounds search.py uses.
    loads = {(r["other_cpu"], r["load_avg"]) for r in data["results"].values()}
    assert len(loads) == 1 and all(isinstance(x, float) and x >= 0 for x in loads.pop())
    for file, r in data["results"].items():
        spread = (r["p90_ms"] - r["p10_ms"]) / r["median_ms"]
        assert r["flags"] == list(result_flags(r["other_cpu"], spread)), file
    warning = flag_warning(
        {
            f: (tuple(r["flags"]), r["other_cpu"], (r["p90_ms"] - r["p10_ms"]) / r["median_ms"])
            for f, r in data["results"].items()
        }
    )
    said = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert said == ([] if warning is None else [f"warning: {warning}"])
    loaded = load_latency_table(path)
    assert loaded.setting == LatencySetting(
        backend="onnxruntime", batch_size=1, seq_len=SEQ, num_threads=1, warmup=3, repeats=120
    )
    assert {f: list(r.flags) for f, r in loaded.results.items()} == {
        f: r["flags"] for f, r in data["results"].items()
    }


@pytest.mark.slow
def test_table_predicts_measured_onnx_latency(table, model, kit, tmp_path) -> None:
    """The table's predictor against onnxruntime latency of held-out subnets timed on this machine.

    The held-out files are timed by profile.py in the same interleaved rounds
    as the kit's own (the measuring options are `measure_onnx`'s), so load
    changes on this shared machine hit both alike.
    """
    path, proc = table
    assert proc.returncode == 0, proc.stderr

    def held_out_mape(path: Path) -> tuple[float, bool]:
        loaded = load_latency_table(path)
        predictor = loaded.predictor(model)
        # The predictor is solved from probes and calibration only.
        assert [cfg for cfg, _ in predictor.calibration] == CALIBRATION
        held = {e.subnet: loaded.results[e.file] for e in loaded.entries if e.role == "held-out"}
        assert list(held) == HELD_OUT
        flagged = any(r.flags for r in loaded.results.values())
        return predictor.mape(HELD_OUT, [held[c] for c in HELD_OUT]), flagged

    # Sub-millisecond models on a shared 2-core machine: a loose bound here; the <= 5% goal on
    # 30 subnets of a real model is bench/profile_kit.py's.
    mape, flagged = held_out_mape(path)
    if mape > 15.0 and flagged:
        # A table the device's load or noise flagged (15.7% in a CI run, other processes taking
        # 0.15 cores): timed once more, which has to hold the bound.
        again, proc = _profiled(kit, tmp_path, tmp_path / "again.json")
        assert proc.returncode == 0, proc.stderr
        mape, flagged = held_out_mape(again)
    assert mape <= 15.0


def fake_table(
    path: Path,
    model,
    *,
    run=RUN,
    space=SPACE,
    threads=1,
    batch=1,
    seq=FAKE_SEQ,
    provider="CPUExecutionProvider",
    int8=False,
    other_cpu=0.0,
) -> Path:
    """A latency table as profile.py writes it, with latencies from an exactly additive formula,
    timed while other processes took `other_cpu` cores."""
    entries = kit_entries(model, space=space)
    results = {}
    for e in entries:
        ms = additive_ms(model, e.subnet)
        results[e.file] = {
            "median_ms": ms,
            "p10_ms": ms,
            "p90_ms": ms,
            "mean_ms": ms,
            "std_ms": 0.0,
            "repeats": 5,
            "other_cpu": other_cpu,
            "load_avg": 0.5,
            "flags": ["load"] if other_cpu > 0.1 else [],
        }
    data = {
        "format": 1,
        "setting": {
            "backend": "onnxruntime",
            "provider": provider,
            "num_threads": threads,
            "batch_size": batch,
            "seq_len": seq,
            "warmup": 1,
            "repeats": 5,
            "rounds": 1,
        },
        "device": {
            "cpu": "Test CPU",
            "machine": "x",
            "platform": "x",
            "cpu_count": 4,
            "hostname": "h",
            "python": "3",
        },
        "onnxruntime_version": "1.0",
        "numpy_version": "2.0",
        "timestamp": "2026-01-01T00:00:00+00:00",
        "kit": kit_manifest(model, entries, run=run, space=space, opset=18, int8=int8),
        "results": results,
    }
    path.write_text(json.dumps(data))
    return path


def additive_ms(model, cfg: SubnetConfig) -> float:
    """0.5 ms fixed + per kept layer 0.1 ms per head + 0.002 ms per FFN neuron."""
    from supernet.subnet import resolve_subnet

    r = resolve_subnet(supernet_state(model).arch, cfg)
    return 0.5 + sum(0.1 * r.heads[i] + 0.002 * r.ffn[i] for i in r.layers)


@pytest.mark.parametrize(
    ("flags", "asked"),
    [
        (["--threads", "2"], "2 threads, batch 1, seq len 32"),
        (["--batch-size", "8"], "1 thread, batch 8, seq len 32"),
        (["--seq-len", "128", "--threads", "1"], "1 thread, batch 1, seq len 128"),
    ],
)
def test_table_of_another_setting_is_refused(tmp_path, model, capsys, flags, asked) -> None:
    table = fake_table(tmp_path / "latency-table.json", model)
    code = search_main(["--run", str(tmp_path / "run"), "--latency-table", str(table), *flags])
    assert code == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: latency table {table} was measured at 1 thread, batch 1, seq len 32, but this search "
        f"asks for {asked}: drop --threads/--batch-size/--seq-len or profile the device again with the "
        "setting you want\n"
    )
    assert not (tmp_path / "run").exists()


def test_table_of_another_run_or_arch_is_refused(tmp_path, model) -> None:
    table = load_latency_table(fake_table(tmp_path / "t.json", model))
    table.check_run(RUN, supernet_state(model).arch)  # its own run: accepted
    # Renamed or moved: the same digest under another folder name is the same run.
    table.check_run({"name": "moved", "config_sha256": "0" * 64}, supernet_state(model).arch)
    # Kits written before 2026-11-30 recorded config.yaml's own digest: still this run's.
    legacy = {"name": "tiny", "config_sha256": "e" * 64}
    table.check_run(legacy, supernet_state(model).arch, digests={"0" * 64})
    other = {"name": "other", "config_sha256": "f" * 64}
    with pytest.raises(ProfileKitError) as err:
        table.check_run(other, supernet_state(model).arch)
    assert str(err.value) == (
        f"latency table {table.path} comes from a kit of run 'tiny' (config 000000000000), not this run "
        "'other' (config ffffffffffff): cut a kit from this run with export.py --profile-kit"
    )
    bigger = Arch(family="bert", num_layers=4, num_heads=4, head_dim=8, hidden_size=32, ffn_dim=48)
    with pytest.raises(ProfileKitError) as err:
        table.check_run(RUN, bigger)
    assert str(err.value) == (
        f"latency table {table.path} is for a bert 2-layer 4-head FFN-48 hidden-32 model, but this run's "
        "supernet is bert 4-layer 4-head FFN-48 hidden-32: cut a kit from this run with export.py --profile-kit"
    )


def test_incomplete_table_is_refused(tmp_path, model) -> None:
    path = fake_table(tmp_path / "t.json", model)
    data = json.loads(path.read_text())
    del data["results"]["probe-h2-f24-l1.onnx"]
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileKitError) as err:
        load_latency_table(path)
    assert (
        str(err.value)
        == f"latency table {path} has no result for probe-h2-f24-l1.onnx: run profile.py to the end"
    )


@pytest.mark.parametrize("median", [-3.0, 0.0, float("nan"), 1e308])
def test_table_with_an_impossible_median_is_refused(tmp_path, model, median: float) -> None:
    # An edited or damaged figure was a ValueError traceback from the predictor's fit.
    path = fake_table(tmp_path / "t.json", model)
    data = json.loads(path.read_text())
    data["results"]["probe-h2-f24-l1.onnx"]["median_ms"] = median
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileKitError) as err:
        load_latency_table(path)
    assert str(err.value) == (
        f"latency table {path} has a median of {median} ms for probe-h2-f24-l1.onnx: run profile.py again"
    )


def test_table_with_edited_figures_or_fields_is_refused(tmp_path, model) -> None:
    """A median raised 10x by hand (outside its own p10-p90) changed the search's choice without a
    word; a setting field of null or "2" was Python's words or accepted; a result for a file the kit
    does not hold was counted in the warnings."""
    path = fake_table(tmp_path / "t.json", model)
    original = json.loads(path.read_text())
    entry = original["results"]["probe-h2-f24-l1.onnx"]

    def refused(edit) -> str:
        data = json.loads(json.dumps(original))
        edit(data)
        path.write_text(json.dumps(data))
        with pytest.raises(ProfileKitError) as err:
            load_latency_table(path)
        return str(err.value)

    assert refused(lambda d: d["results"]["probe-h2-f24-l1.onnx"].update(median_ms=entry["p90_ms"] * 10)) == (
        f"latency table {path} has a median of {entry['p90_ms'] * 10:.4g} ms for probe-h2-f24-l1.onnx, outside "
        f"its own p10-p90 ({entry['p10_ms']:.4g}-{entry['p90_ms']:.4g} ms), which the same calls gave: edited or "
        "damaged; run profile.py again"
    )
    for value in (None, "2", 2.5, True):
        assert refused(lambda d, v=value: d["setting"].update(num_threads=v)) == (
            f"latency table {path} has setting num_threads {value!r}, where profile.py writes a whole number: "
            "run profile.py again"
        )
    assert refused(lambda d: d["results"].update({"extra.onnx": entry})) == (
        f"latency table {path} has a result for extra.onnx, which is not a file of its kit: run profile.py again"
    )
    path.write_text(json.dumps(original))
    assert load_latency_table(path).results["probe-h2-f24-l1.onnx"].median_ms == entry["median_ms"]


@pytest.mark.parametrize("results", [[], None])
def test_table_whose_results_are_not_a_mapping_is_one_line(tmp_path, model, results) -> None:
    """An AttributeError traceback from search.py --latency-table."""
    path = fake_table(tmp_path / "t.json", model)
    data = json.loads(path.read_text())
    data["results"] = results
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileKitError) as err:
        load_latency_table(path)
    assert str(err.value).startswith(f"latency table {path} is malformed (AttributeError: ")


def _scaled(path: Path, file: str, factor: float) -> Path:
    """The table at `path` with one file's figures times `factor`, median inside its p10-p90 still: as
    if the device was busy while profile.py timed that file alone."""
    data = json.loads(path.read_text())
    for key in ("median_ms", "p10_ms", "p90_ms", "mean_ms"):
        data["results"][file][key] *= factor
    edited = path.with_name(f"x{factor:g}-{file}.json")
    edited.write_text(json.dumps(data))
    return edited


def test_a_table_whose_figures_do_not_fit_together_is_said_or_refused(tmp_path, model) -> None:
    """One probe timed 3x or 100x slower than the rest passed every check of the table: the search
    predicted the smallest subnets slower than the largest and chose by it, or died in a traceback on a
    negative prediction."""
    path = fake_table(tmp_path / "t.json", model)
    table = load_latency_table(path)
    assert table.fit_warning(table.predictor(model)) is None  # profile.py's figures fit
    why = "as one file timed while the device was disturbed does: run profile.py again"
    off = load_latency_table(_scaled(path, "probe-h2-f24-l2.onnx", 3))
    assert off.fit_warning(off.predictor(model)) == (
        "its figures do not fit together: the predictor built from them puts calibration subnet w1.00-d1.00 "
        f"at 0.85 ms, 43% off the 1.49 ms the table timed it at (bound 25%), {why}"
    )
    # A probe no calibration subnet runs through: its layer costs more than a larger one.
    off = load_latency_table(_scaled(path, "probe-h4-f24-l2.onnx", 3))
    assert off.fit_warning(off.predictor(model)) == (
        "its figures do not fit together: the predictor built from them costs a layer of 2 heads and 24 FFN "
        f"neurons 0.946 ms, 220% more than one of 2 heads and 48 (0.296 ms; bound 25%), {why}"
    )
    far = load_latency_table(_scaled(path, "probe-h2-f24-l1.onnx", 100))
    with pytest.raises(ProfileKitError) as err:
        far.predictor(model)
    assert re.fullmatch(
        rf"latency table {re.escape(str(far.path))} does not fit together: the predictor built from it puts "
        r"some subnets at -\d+\.\d\d ms \(one file timed far from the rest, or edited\): run profile.py again",
        str(err.value),
    ), str(err.value)


def test_a_table_missing_a_key_names_it(tmp_path, model) -> None:
    path = fake_table(tmp_path / "t.json", model)
    data = json.loads(path.read_text())
    del data["device"]
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileKitError) as err:
        load_latency_table(path)
    assert str(err.value) == f"latency table {path} lacks 'device': run profile.py again to write it whole"


def _profile(kit_dir: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(kit_dir / "profile.py"), "--threads", "1", "--seq-len", "16", *args],
        env=poisoned_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_profile_script_refuses_a_damaged_onnx_file_before_timing(kit: Path, tmp_path) -> None:
    """A cut ONNX file was an onnxruntime traceback after 18 of 26 files had been timed."""
    copy = tmp_path / "kit"
    shutil.copytree(kit, copy)
    files = [e["file"] for e in json.loads((copy / "kit.json").read_text())["entries"]]
    assert all(e.get("bytes") for e in json.loads((copy / "kit.json").read_text())["entries"])
    last = copy / files[-1]
    last.write_bytes(last.read_bytes()[:1000])
    proc = _profile(copy, tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"error: kit '{copy}': 1 ONNX file(s) are not the size kit.json records, e.g. {files[-1]}: "
        "copy the kit again\n"
    )
    # Bytes damaged with the size kept (a probe zeroed 2,000 of them): found by the file's digest.
    shutil.copyfile(kit / files[-1], last)
    damaged = bytearray(last.read_bytes())
    damaged[100:2100] = bytes(2000)
    last.write_bytes(bytes(damaged))
    proc = _profile(copy, tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"error: kit '{copy}': 1 file(s) differ from what kit.json records (sha256), e.g. {files[-1]}: "
        "copy the kit again\n"
    )
    # A kit without recorded sizes and digests (written before them) still gets one line, when the
    # file's turn comes.
    last.write_bytes(last.read_bytes()[:1000])
    manifest = json.loads((copy / "kit.json").read_text())
    for entry in manifest["entries"]:
        del entry["bytes"], entry["sha256"]
    (copy / "kit.json").write_text(json.dumps(manifest))
    proc = _profile(copy, tmp_path, "--repeats", "1", "--rounds", "1", "--warmup", "0", "--quiet")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: onnxruntime cannot load {files[-1]} (")
    assert proc.stderr.endswith("): copy the kit again\n") and proc.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m["entries"].append({"role": "probe"}),
            "has an entry without a file name ({'role': 'probe'})",
        ),
        (lambda m: m["entries"].append(5), "has an entry without a file name (5)"),
        (lambda m: m.update(vocab_size="abc"), "has vocab_size 'abc', not a count"),
        (
            lambda m: m["weights"].update(bytes=str(m["weights"]["bytes"])),
            "gives the shared weights a size of '",
        ),
    ],
)
def test_profile_script_refuses_a_hand_edited_manifest(kit: Path, tmp_path, edit, message: str) -> None:
    """Tracebacks (KeyError, TypeError, ValueError), or 'has 128225280 bytes, not 128225280'."""
    copy = tmp_path / "kit"
    shutil.copytree(kit, copy)
    manifest = json.loads((copy / "kit.json").read_text())
    edit(manifest)
    (copy / "kit.json").write_text(json.dumps(manifest))
    proc = _profile(copy, tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {copy / 'kit.json'} {message}")
    assert proc.stderr.endswith(": copy the kit again\n")


def test_profile_script_refuses_a_provider_that_runs_nothing_here(kit: Path, tmp_path) -> None:
    """AzureExecutionProvider, in every PyPI build, wrote CPU timings under its name (and skipped the
    thread check)."""
    proc = _profile(kit, tmp_path, "--provider", "AzureExecutionProvider")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "error: --provider AzureExecutionProvider calls a remote endpoint and runs no operator on this device: "
        "time with CPUExecutionProvider or the provider of the device's accelerator\n"
    )


def test_profile_script_says_a_failed_run_in_one_line(kit: Path, tmp_path, monkeypatch) -> None:
    """An allocation failure at a large batch was an onnxruntime traceback."""
    from supernet import profile_kit_script

    class FailsToRun:
        def __init__(self, path, sess_options=None, providers=()):
            pass

        def get_providers(self):
            return ["CPUExecutionProvider"]

        def get_inputs(self):
            return []

        def run(self, outputs, feeds):
            raise RuntimeError(
                "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory\nfor buffer"
            )

    monkeypatch.setattr(onnxruntime, "InferenceSession", FailsToRun)
    args = profile_kit_script.build_parser().parse_args(["--threads", "1", "--batch-size", "4096"])
    with pytest.raises(profile_kit_script.KitError) as err:
        profile_kit_script._time_block(kit / "probe-h4-f48-l1.onnx", args, 1, 100)
    assert str(err.value) == (
        "onnxruntime failed to run probe-h4-f48-l1.onnx at batch 4096, seq len 128 "
        "(RUNTIME_EXCEPTION : Failed to allocate memory for buffer): lower --batch-size or --seq-len"
    )


def test_missing_or_binary_table_is_one_line(tmp_path) -> None:
    missing = tmp_path / "none.json"
    with pytest.raises(FileNotFoundError) as err:
        load_latency_table(missing)
    assert (
        str(err.value) == f"latency table {missing} not found: pass the latency-table.json profile.py wrote"
    )
    with pytest.raises(ProfileKitError) as err:
        load_latency_table(tmp_path)
    assert str(err.value) == (
        f"latency table {tmp_path} is a folder: pass the latency-table.json profile.py wrote in it "
        f"({tmp_path / 'latency-table.json'})"
    )
    binary = tmp_path / "table.json"
    binary.write_bytes(b"PAR1\xa0\xff")
    with pytest.raises(ProfileKitError) as err:
        load_latency_table(binary)
    assert str(err.value).startswith(f"latency table {binary} is not valid JSON (")
    assert str(err.value).endswith("): copy it again")


def test_table_predictor_is_exact_on_additive_latencies(tmp_path, model) -> None:
    table = load_latency_table(fake_table(tmp_path / "t.json", model))
    predictor = table.predictor(model)
    assert predictor.setting == table.setting and predictor.calibration_model == "identity"
    for cfg in (
        SubnetConfig(width_mult=0.5, depth_mult=0.5),
        SubnetConfig(heads=(3, 2), ffn=(30, 48), layers=(0, 1)),  # interpolated between table entries
    ):
        assert predictor.predict(cfg) == pytest.approx(additive_ms(model, cfg), rel=1e-9)


def test_table_without_a_probe_the_predictor_needs_is_one_line(tmp_path, model) -> None:
    """A table whose probes are not this run's (hand-edited, or a kit of another version) was a
    ValueError traceback from the predictor's solver."""
    path = fake_table(tmp_path / "t.json", model)
    data = json.loads(path.read_text())
    probe = next(e for e in data["kit"]["entries"] if e["role"] == "probe" and e["spec"].get("ffn"))
    probe["spec"]["ffn"] = [max(1, n - 1) if n else n for n in probe["spec"]["ffn"]]
    path.write_text(json.dumps(data))
    table = load_latency_table(path)
    with pytest.raises(ProfileKitError) as err:
        table.predictor(model)
    assert re.fullmatch(
        rf"latency table {re.escape(str(path))} lacks 1 of the \d+ probes this run's predictor needs "
        r"\(e\.g\. \S+\): cut a kit from this run with export\.py --profile-kit and profile it",
        str(err.value),
    ), str(err.value)


def test_profile_script_refuses_bad_arguments(tmp_path) -> None:
    script = Path(__file__).resolve().parents[1] / "supernet" / "profile_kit_script.py"
    env = poisoned_env(tmp_path)
    no_kit = subprocess.run(
        [sys.executable, str(script), "--threads", "1", "--kit", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert no_kit.returncode == 2
    assert no_kit.stderr == f"error: '{tmp_path}' is not a profile kit (no kit.json): pass --kit KIT_DIR\n"
    bad = subprocess.run(
        [sys.executable, str(script), "--threads", "0", "--kit", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr == "error: --threads must be >= 1, got 0\n"
    cores = len(os.sched_getaffinity(0))
    many = subprocess.run(
        [sys.executable, str(script), "--threads", str(cores + 1), "--kit", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert many.returncode == 2 and many.stderr == (
        f"error: --threads {cores + 1} is more than the {cores} core{'s' if cores > 1 else ''} this process may "
        f"run on: the extra threads would wait for each other, not time the model; pass --threads {cores} or "
        "fewer\n"
    )
    helped = subprocess.run([sys.executable, str(script), "--help"], env=env, capture_output=True, text=True)
    assert helped.returncode == 0 and "--threads" in helped.stdout and "latency-table.json" in helped.stdout
    abbreviated = subprocess.run(
        [sys.executable, str(script), "--threads", "1", "--batch", "2", "--kit", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert abbreviated.returncode == 2
    assert abbreviated.stderr.splitlines()[-1] == (
        "profile.py: error: unrecognized arguments: --batch 2 (usage: profile.py --help)"
    )


@pytest.mark.slow
def test_profile_script_refuses_a_sequence_longer_than_the_model(kit: Path, tmp_path) -> None:
    assert json.loads((kit / "kit.json").read_text())["max_seq_len"] == 64
    script = kit / "profile.py"
    long = subprocess.run(
        [sys.executable, str(script), "--threads", "1", "--seq-len", "65"],
        env=poisoned_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert (
        long.returncode == 2 and long.stderr == "error: --seq-len 65 exceeds the 64 positions the model has\n"
    )


def test_profile_script_times_with_the_provider_asked_for(kit: Path, tmp_path, monkeypatch, model) -> None:
    """--provider: one not in this onnxruntime build is one line before anything is timed, one that
    does not start is not timed on the CPU under its name, and the table names it back home."""
    from supernet import profile_kit_script

    available = onnxruntime.get_available_providers()
    proc = subprocess.run(
        [
            sys.executable,
            str(kit / "profile.py"),
            "--threads",
            "1",
            "--seq-len",
            "16",
            "--provider",
            "NoSuch",
        ],
        env=poisoned_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "error: --provider NoSuch is not in this onnxruntime build (it has "
        f"{', '.join(available)}): install the onnxruntime package that has it\n"
    )

    class FellBack:  # a session whose provider failed to start and left the CPU one
        def __init__(self, path, sess_options=None, providers=()):
            self.asked = list(providers)

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(onnxruntime, "InferenceSession", FellBack)
    with pytest.raises(profile_kit_script.KitError) as err:
        profile_kit_script._session(kit / "probe-h4-f48-l1.onnx", 1, "CUDAExecutionProvider")
    assert str(err.value) == (
        "onnxruntime could not start CUDAExecutionProvider on this device (it ran CPUExecutionProvider): "
        "check its drivers, or time with --provider CPUExecutionProvider"
    )
    table = load_latency_table(fake_table(tmp_path / "t.json", model, provider="CUDAExecutionProvider"))
    assert table.provider == "CUDAExecutionProvider"
    assert table.description == "Test CPU, onnxruntime 1.0 CUDAExecutionProvider"
    assert (
        load_latency_table(fake_table(tmp_path / "c.json", model)).description == "Test CPU, onnxruntime 1.0"
    )


def test_int8_kit_holds_the_graphs_export_int8_ships(model, tmp_path) -> None:
    import onnx

    from supernet.export import export_subnet, onnx_fingerprint

    kit = write_profile_kit(
        model, tmp_path / "kit8", run=RUN, space=SPACE, calibration_subnets=CALIBRATION, int8=True
    )
    manifest = json.loads((kit / "kit.json").read_text())
    assert manifest["int8"] is True
    graph = onnx.load(str(kit / "calib-w1.00-d1.00.onnx"))
    assert {"MatMulInteger", "QAttention"} <= {n.op_type for n in graph.graph.node}
    shipped = export_subnet(model, CALIBRATION[0], tmp_path / "exp", onnx=True, int8=True)
    assert onnx_fingerprint(shipped.int8_path) == onnx_fingerprint(kit / "calib-w1.00-d1.00.onnx")
    # Held-out files added later are int8 too.
    (entry,) = add_to_kit(kit, model, HELD_OUT[:1], role="held-out")
    held = onnx.load(str(kit / entry.file))
    assert "MatMulInteger" in {n.op_type for n in held.graph.node}


def test_kit_graphs_take_the_inputs_the_runs_tokenizer_gives(model, tmp_path) -> None:
    """A BERT whose tokenizer gives no token_type_ids: export.py's and search's graphs take two
    inputs, the kit's took three (written without the tokenizer)."""
    import onnx

    from supernet.export import export_subnet, onnx_fingerprint

    class Tokenizer:
        model_input_names = ["input_ids", "attention_mask"]

        def save_pretrained(self, folder: Path) -> None:
            pass

    tok = Tokenizer()
    kit = write_profile_kit(
        model, tmp_path / "kit", run=RUN, space=SPACE, calibration_subnets=CALIBRATION[:1], tokenizer=tok
    )
    (held,) = add_to_kit(kit, model, HELD_OUT[:1], tokenizer=tok)
    for name in ("calib-w1.00-d1.00.onnx", held.file):
        assert [i.name for i in onnx.load(str(kit / name)).graph.input] == ["input_ids", "attention_mask"]
    shipped = export_subnet(model, CALIBRATION[0], tmp_path / "exp", tokenizer=tok, onnx=True)
    assert onnx_fingerprint(shipped.onnx_path) == onnx_fingerprint(kit / "calib-w1.00-d1.00.onnx")


def test_int8_table_sets_the_search_setting(model, tmp_path) -> None:
    """An int8 kit's table predicts int8 latency: the setting says so, --int8 may be given or not,
    and --int8 against an FP32 table is one line."""
    int8 = load_latency_table(fake_table(tmp_path / "t8.json", model, int8=True))
    assert int8.setting.int8 and int8.setting.key == "cpu-onnxruntime-int8-b1-s32-t1"
    int8.check_setting(num_threads=None, batch_size=None, seq_len=None, int8=True)
    int8.check_setting(num_threads=None, batch_size=None, seq_len=None, int8=False)
    fp32 = load_latency_table(fake_table(tmp_path / "t.json", model))
    assert not fp32.setting.int8
    with pytest.raises(ProfileKitError) as err:
        fp32.check_setting(num_threads=None, batch_size=None, seq_len=None, int8=True)
    assert str(err.value) == (
        f"--int8: latency table {tmp_path / 't.json'} times FP32 graphs; profile a kit written with "
        "export.py --profile-kit OUT --int8, or drop --int8"
    )


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_profile_script_refuses_a_kit_without_its_shared_weights(kit: Path, tmp_path, damage: str) -> None:
    """A kit copied without weights.bin, or cut short, is one line before anything is timed, not an
    onnxruntime error about external data in the middle of the run."""
    copy = tmp_path / "kit"
    shutil.copytree(kit, copy)
    size = (copy / "weights.bin").stat().st_size
    if damage == "missing":
        (copy / "weights.bin").unlink()
        found = "is missing"
    else:
        with open(copy / "weights.bin", "r+b") as f:
            f.truncate(size - 1)
        found = f"has {size - 1} bytes, not {size}"
    proc = subprocess.run(
        [sys.executable, str(copy / "profile.py"), "--threads", "1"],
        env=poisoned_env(tmp_path),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"error: kit '{copy}': weights.bin (the weights its ONNX files share) {found}: copy the kit again\n"
    )


@pytest.mark.slow
def test_profile_script_never_overwrites_what_the_user_has(kit: Path, table, tmp_path, capsys) -> None:
    """--out onto a file that is not a latency table is refused; an earlier table needs --overwrite."""
    from supernet import profile_kit_script

    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    args = ["--kit", str(kit), "--threads", "1", "--seq-len", str(SEQ)]
    assert profile_kit_script.main([*args, "--out", str(notes), "--overwrite"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {notes} exists and is not a latency table: refusing to overwrite it; pass another --out"
    )
    assert notes.read_text() == "keep"
    earlier = tmp_path / "latency-table.json"
    shutil.copyfile(table[0], earlier)
    before = earlier.read_bytes()
    assert profile_kit_script.main([*args, "--out", str(earlier)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {earlier} already holds a latency table (threads 1, batch 1, seq len {SEQ}): "
        "pass --overwrite to replace it, or another --out"
    )
    assert earlier.read_bytes() == before
    fast = ["--warmup", "0", "--repeats", "1", "--rounds", "1", "--quiet"]
    assert profile_kit_script.main([*args, *fast, "--out", str(earlier), "--overwrite"]) == 0
    assert json.loads(earlier.read_text())["setting"]["repeats"] == 1


@pytest.mark.slow
def test_profile_script_interrupted_is_one_line(kit: Path, tmp_path, capsys, monkeypatch) -> None:
    """Ctrl-C while timing ended in a KeyboardInterrupt traceback; the table is not written."""
    from supernet import profile_kit_script

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(profile_kit_script, "measure_kit", stop)
    out = tmp_path / "t.json"
    assert (
        profile_kit_script.main(
            ["--kit", str(kit), "--threads", "1", "--seq-len", str(SEQ), "--quiet", "--out", str(out)]
        )
        == 130
    )
    assert capsys.readouterr().err == "interrupted: no table written; run profile.py again to time the kit\n"
    assert list(tmp_path.iterdir()) == []


def test_profile_script_checks_it_can_write_the_table_before_timing(
    kit: Path, tmp_path, capsys, monkeypatch
) -> None:
    """A folder it cannot write in (a read-only mount) lost every timing to a PermissionError at the end."""
    import errno

    from supernet import profile_kit_script

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(profile_kit_script.tempfile, "TemporaryFile", refused)
    out = tmp_path / "latency-table.json"
    args = ["--kit", str(kit), "--threads", "1", "--seq-len", str(SEQ), "--out", str(out)]
    assert profile_kit_script.main(args) == 2
    shown = capsys.readouterr()
    assert shown.err.splitlines()[-1] == (
        f"error: --out {out}: cannot write in {tmp_path} (Permission denied): pass another --out"
    )
    assert "profiling" not in shown.out and not out.exists()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_trained_run) -> Path:
    return copy_run(tiny_trained_run, tmp_path_factory.mktemp("kit-run") / "run")


@pytest.mark.slow
def test_search_with_latency_table(trained_run: Path, tmp_path, capsys) -> None:
    from supernet.trainer import load_supernet

    model = load_supernet(trained_run / "supernet")
    space = SearchSpace(width_mults=(1.0, 0.75, 0.5, 0.25), depth_mults=(1.0, 0.75, 0.5))
    table = fake_table(
        tmp_path / "latency-table.json", model, run=run_identity(trained_run), space=space, other_cpu=0.4
    )
    budget = additive_ms(model, SubnetConfig(width_mult=0.5, depth_mult=0.75)) + 1e-6
    argv = ["--run", str(trained_run), "--latency-table", str(table), "--latency-budget-ms", str(budget)]
    per_layer = ["--no-progress", "--per-layer", "--population", "6", "--generations", "1"]
    # --backend torch (the default when measuring here) is said to be ignored, not silently dropped.
    # So are --warmup and --repeats (they were dropped without a word).
    assert search_main([*argv, *per_layer, "--backend", "torch", "--repeats", "9"]) == 0
    results = read_results(trained_run / "search" / "results.jsonl")
    assert len(results) >= 12 and any(not r.subnet.is_uniform for r in results)
    source = (
        "predicted from latency-table.json (Test CPU, onnxruntime 1.0, measured 2026-01-01T00:00:00+00:00)"
    )
    for r in results:
        # The table's latencies are exactly additive, so the predictor reproduces them.
        assert r.latency_ms == pytest.approx(additive_ms(model, r.subnet), rel=1e-9)
        assert r.latency_source == source and r.latency_spread_ms is None
        assert r.predicted_ms is None  # the latency is the prediction: no second column of it
    chosen = json.loads((trained_run / "search" / "chosen.json").read_text())
    fitting = [r for r in results if r.latency_ms <= budget]
    assert chosen["name"] == max(fitting, key=lambda r: (r.accuracy, -r.latency_ms)).name
    assert chosen["latency_table"]["device"]["cpu"] == "Test CPU"
    assert chosen["setting"]["backend"] == "onnxruntime" and chosen["setting"]["seq_len"] == FAKE_SEQ
    # Nothing was measured on this machine.
    assert not (trained_run / "latency").exists() or not any((trained_run / "latency").iterdir())
    out = capsys.readouterr().out
    assert f"latency {source}, cpu-onnxruntime-b1-s32-t1; nothing is measured on this machine" in out
    # A supernet trained on the grid alone: said before the grid is scored (as when measuring here).
    said = out.splitlines()
    note = next(
        i for i, line in enumerate(said) if line.startswith("note: this supernet was trained on the uniform")
    )
    assert note < said.index(
        f"latency {source}, cpu-onnxruntime-b1-s32-t1; nothing is measured on this machine"
    )
    # The device was busy while profile.py timed the kit: said, and kept with the choice.
    files = sorted(json.loads(table.read_text())["results"])
    warning = (
        f"latency of {', '.join(files[:4])} and {len(files) - 4} more may not be the model's alone: other "
        "processes took up to 0.40 cores (bound 0.10); remeasure on an idle machine"
    )
    assert f"warning: latency-table.json: {warning} (run profile.py again)" in out.splitlines()
    assert chosen["latency_table"]["load_warning"] == warning
    assert out.splitlines()[0] == (
        "note: --backend and --repeats ignored: every latency comes from the table (Test CPU, onnxruntime 1.0)"
    )
    # The export of that choice keeps the device's predicted figure apart from this machine's
    # measurement; comparing the two would compare two machines.
    exported = tmp_path / "exp"
    assert export_main(["--run", str(trained_run), "--out", str(exported), "--no-onnx", "--no-progress"]) == 0
    summary = json.loads((exported / "summary.json").read_text())
    assert summary["search_latency"] is None
    predicted = summary["device_prediction"]
    assert predicted["latency_ms"] == chosen["latency_ms"] and predicted["device"]["cpu"] == "Test CPU"
    assert predicted["latency_table"] == str(table.resolve()) and predicted["setting"] == chosen["setting"]
    assert (
        f"  on the profiled device (Test CPU): {chosen['latency_ms']:.2f} ms predicted by search from its "
        "latency table; the latency above is this machine's"
    ) in capsys.readouterr().out.splitlines()
    # Through the API with a log of the caller's: every line goes there (the run's own notes, as the
    # per-layer search's on a budget only the smallest subnet fits, went to the terminal).
    from supernet import search_cli
    from supernet.parsers import search_parser

    lines: list[str] = []
    tight = additive_ms(model, SubnetConfig(width_mult=0.25, depth_mult=0.5)) + 1e-6
    argv = [*argv[:-1], str(tight), *per_layer, "--out", str(tmp_path / "logged")]
    assert search_cli.run(search_parser().parse_intermixed_args(argv), log=lines.append) == 0
    assert capsys.readouterr().out == ""
    assert [line for line in lines if line.startswith("note: per-layer search: no new distinct subnet")]


@pytest.mark.slow
def test_profile_kit_refuses_a_non_empty_folder(trained_run: Path, tmp_path, capsys) -> None:
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "notes.txt").write_text("mine")
    assert export_main(["--run", str(trained_run), "--profile-kit", str(tmp_path / "kit")]) == 2
    assert capsys.readouterr().err == (
        f"error: '{tmp_path / 'kit'}' already exists and is not an empty folder: pass a new --profile-kit\n"
    )
    assert sorted(p.name for p in (tmp_path / "kit").iterdir()) == ["notes.txt"]
    # --overwrite does not stretch to kits, and the line says so (it did not).
    argv = ["--run", str(trained_run), "--profile-kit", str(tmp_path / "kit"), "--overwrite"]
    assert export_main(argv) == 2
    assert capsys.readouterr().err == (
        "error: --profile-kit writes a device profile kit, not an export, and takes none of --overwrite: "
        "drop it (a kit is never replaced: pass a new folder)\n"
    )
    assert sorted(p.name for p in (tmp_path / "kit").iterdir()) == ["notes.txt"]
    # A folder it cannot write: said first, naming the kit (it named a hidden temporary folder after
    # the kit's exports).
    (tmp_path / "a-file").write_text("mine")
    assert export_main(["--run", str(trained_run), "--profile-kit", str(tmp_path / "a-file" / "kit")]) == 2
    assert capsys.readouterr().err == (
        f"error: --profile-kit '{tmp_path / 'a-file' / 'kit'}' cannot be written: {tmp_path / 'a-file'} is a "
        "file; pass another folder\n"
    )


def test_profile_kit_refuses_the_exports_own_options(tmp_path: Path, capsys) -> None:
    """A kit took --subnet, --out, --search, --no-onnx and --threads without a word: no --out folder
    was written, --no-onnx still wrote ONNX files. Refused before the run is read."""
    kit = ["--run", str(tmp_path / "run"), "--profile-kit", str(tmp_path / "kit")]
    for extra, said in (
        (["--subnet", "best", "--out", str(tmp_path / "zz")], "--subnet, --out: drop them"),
        (["--no-onnx"], "--no-onnx: drop it"),
        (
            ["--search", str(tmp_path), "--threads", "1"],
            "--search, --threads: drop them (the device's profile.py takes --threads)",
        ),
    ):
        assert export_main([*kit, *extra]) == 2
        assert capsys.readouterr().err == (
            f"error: --profile-kit writes a device profile kit, not an export, and takes none of {said}\n"
        )
    assert list(tmp_path.iterdir()) == []
    # What a kit does take: --int8 and --opset (then the missing run is what stops it).
    assert export_main([*kit, "--int8", "--opset", "17", "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith(f"error: run '{tmp_path / 'run'}' does not exist")


def test_readme_device_commands_parse() -> None:
    """README's three device-profile commands are accepted by the three parsers, flags as written."""
    import re
    import shlex

    from supernet import profile_kit_script
    from supernet.export_cli import build_parser as export_parser
    from supernet.search_cli import build_parser as search_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("### For a device that cannot run this package")
    block = re.findall(r"```bash\n(.*?)```", readme[start:], flags=re.S)[0]
    lines = [shlex.split(line) for line in block.strip().splitlines()]
    assert [a[:2] for a in lines] == [
        ["python", "export.py"],
        ["python", "my-kit/profile.py"],
        ["python", "search.py"],
    ]
    kit = export_parser().parse_args(lines[0][2:])
    profile = profile_kit_script.build_parser().parse_args(lines[1][2:])
    search = search_parser().parse_args(lines[2][2:])
    assert kit.profile_kit == "my-kit"
    assert (profile.threads, profile.batch_size, profile.seq_len) == (4, 1, 128)
    assert search.latency_table == Path("my-kit/latency-table.json") and search.latency_budget_ms == 15
    # profile.py writes its table into the kit folder, where the third command reads it.
    assert profile.out is None


@pytest.mark.parametrize(
    ("flags", "want"),
    [
        ({"avx2", "avx512f", "avx512_vnni", "amx_int8"}, "AMX-INT8, AVX512-VNNI"),
        ({"avx2", "avx_vnni"}, "AVX-VNNI"),
        ({"fpu", "avx2", "fma"}, "none (AVX2)"),
        ({"fp", "asimd", "asimddp", "i8mm"}, "ARM i8mm, ARM dotprod"),
        ({"fp", "asimd"}, "none (NEON)"),
        (set(), "unknown"),
    ],
)
def test_int8_dot_product_names_the_instruction_sets(flags, want) -> None:
    from supernet.profile_kit_script import int8_dot_product

    assert int8_dot_product(flags) == want


def test_table_of_an_older_graph_revision_is_refused(tmp_path, model) -> None:
    # A kit written before the LayerNorm rewrites timed graphs export.py no longer writes.
    path = fake_table(tmp_path / "t.json", model)
    data = json.loads(path.read_text())
    assert data["kit"]["onnx_graph"] == 3
    del data["kit"]["onnx_graph"]
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileKitError) as err:
        load_latency_table(path)
    assert str(err.value) == (
        f"{path} holds ONNX graphs export.py no longer writes (ONNX graph revision 1, now 3): write a new "
        "kit (export.py --run DIR --profile-kit OUT) and profile it again"
    )


def test_int8_table_of_an_older_int8_graph_is_refused(tmp_path, model) -> None:
    # An int8 kit of 2026-12-01 or before timed int8 graphs whose GELUs added their own bias.
    path = fake_table(tmp_path / "t.json", model)
    data = json.loads(path.read_text())
    data["kit"]["int8"] = True
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileKitError) as err:
        load_latency_table(path)  # an int8 kit without the int8 revision
    assert str(err.value) == (
        f"{path} holds ONNX graphs export.py no longer writes (int8 graph revision 1, now 2): write a new "
        "kit (export.py --run DIR --profile-kit OUT --int8) and profile it again"
    )
    data["kit"]["int8_graph"] = 2
    path.write_text(json.dumps(data))
    assert load_latency_table(path).setting.int8


def test_slow_layer_norm_releases_are_named() -> None:
    from supernet.profile_kit_script import slow_layer_norm_note

    assert slow_layer_norm_note("1.28.0") == (
        "warning: onnxruntime 1.28.0 runs LayerNormalization ~8x slower on CPU than 1.30 and later: "
        "this table times that install (pip install 'onnxruntime>=1.30' for faster models)"
    )
    assert slow_layer_norm_note("1.27.1") is not None and slow_layer_norm_note("1.29.0") is not None
    for fine in ("1.26.0", "1.30.0", "1.32.0", "2.0.0", "1.31.0.dev20261101", "nightly"):
        assert slow_layer_norm_note(fine) is None


@pytest.mark.slow
def test_a_moved_run_keeps_its_kits_tables(trained_run: Path, tmp_path, capsys) -> None:
    """A run folder renamed after its kit was cut was refused as 'another run', naming two equal
    digests; a table from a kit of before 2026-11-30 (config.yaml's digest) is accepted too."""
    from supernet.profile_kit import config_file_digest
    from supernet.trainer import load_supernet

    moved = tmp_path / "renamed-run"
    shutil.copytree(trained_run, moved, ignore=shutil.ignore_patterns("search", "latency", "checkpoints"))
    model = load_supernet(moved / "supernet")
    space = SearchSpace(width_mults=(1.0, 0.75, 0.5, 0.25), depth_mults=(1.0, 0.75, 0.5))
    for name, run in (
        ("new.json", run_identity(trained_run)),
        ("old.json", {"name": trained_run.name, "config_sha256": config_file_digest(trained_run)}),
    ):
        table = fake_table(tmp_path / name, model, run=run, space=space)
        argv = ["--run", str(moved), "--latency-table", str(table), "--out", str(tmp_path / name[:3])]
        assert search_main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
        # Predicted from the table, not measured here instead.
        results = read_results(tmp_path / name[:3] / "results.jsonl")
        assert len(results) == 12 and all(r.latency_source.startswith("predicted from ") for r in results)
    assert not (moved / "latency").exists()


def test_profile_script_needs_no_python_newer_than_3_9(tmp_path) -> None:
    """Devices run older Pythons than the training machine; the script says it runs on 3.9."""
    script = Path(__file__).resolve().parents[1] / "supernet" / "profile_kit_script.py"
    assert "Python 3.9+" in script.read_text()
    vermin = [str(Path(sys.executable).with_name("vermin")), "--no-tips", "-t=3.9-", "--eval-annotations"]
    check = subprocess.run([*vermin, "--violations", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    # The check itself catches what 3.9 lacks.
    newer = tmp_path / "newer.py"
    newer.write_text("def pairs(a, b):\n    return list(zip(a, b, strict=True))\n")
    check = subprocess.run([*vermin, "--violations", str(newer)], capture_output=True, text=True)
    assert check.returncode == 1 and "'zip(strict)' requires !2, 3.10" in check.stdout


@pytest.mark.parametrize(
    ("line", "busy"),
    [
        ("cpu  100 5 50 1000 20 3 2 7 0 0\n", (100 + 5 + 50 + 3 + 2 + 7) / 100),
        ("cpu  100 5 50 1000 20 3 2\n", None),  # before Linux 2.6.11: no steal field
        ("intr 1 2 3\n", None),
    ],
)
def test_cpu_seconds_reads_proc_stat_or_says_it_cannot(monkeypatch, line: str, busy) -> None:
    """profile.py runs on devices with old kernels; a short /proc/stat line crashed it after timing."""
    import io

    from supernet import profile_kit_script

    monkeypatch.setattr(profile_kit_script, "_CLOCK_TICKS", 100.0)
    monkeypatch.setattr(profile_kit_script, "open", lambda *a, **k: io.StringIO(line), raising=False)
    assert profile_kit_script.cpu_seconds()[0] == (None if busy is None else pytest.approx(busy))


@pytest.mark.parametrize(
    ("files", "want"),
    [
        ({"cpu.max": "200000 100000\n"}, 2.0),  # cgroup v2, docker --cpus 2
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.5),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
)
def test_a_cpu_quota_counts_as_fewer_cores(tmp_path, monkeypatch, files, want) -> None:
    # A container limited by a CPU quota (not a cpuset) saw every host core in its affinity, so
    # --threads 64 passed in a 2-CPU pod.
    from supernet import profile_kit_script as script

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert script.cpu_quota(tmp_path) == want
    monkeypatch.setattr(script, "cpu_quota", lambda: want)
    monkeypatch.setattr(script.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert script.usable_cores() == (16 if want is None else max(1, int(want)))


def test_a_config_key_added_at_its_default_leaves_the_run_the_same(tmp_path) -> None:
    """teacher.finetune (2026-12-01) changed the digest of every run's whole resolved config: a device's
    FP32 table and a --search folder of the same run were refused as 'another run'."""
    import hashlib
    import json as json_module

    import yaml

    from supernet.config import TrainConfig, config_to_dict, load_config, save_config
    from supernet.profile_kit import run_digests

    run = tmp_path / "run"
    cfg = load_config(
        TrainConfig, None, ["model=m", "task=trec", f"output_dir={run}", "stage_wd.max_steps=9"]
    )
    save_config(cfg, run / "config.yaml")
    identity = run_identity(run)["config_sha256"]
    # What 0ce5bbc recorded: the whole resolved config without output_dir, before the key existed.
    before = config_to_dict(cfg)
    before.pop("output_dir")
    del before["teacher"]["finetune"]
    del before["distill"]["depth_pairing"]  # added later the same day, at the behaviour of then
    recorded = hashlib.sha256(json_module.dumps(before, sort_keys=True, default=str).encode()).hexdigest()
    assert recorded != identity and recorded in run_digests(run)
    # A config.yaml written before the key (none in it) is the same run to run_identity too.
    data = yaml.safe_load((run / "config.yaml").read_text())
    del data["teacher"]["finetune"]
    (run / "config.yaml").write_text(yaml.safe_dump(data))
    assert run_identity(run)["config_sha256"] == identity
    # A value that changes training changes the identity.
    save_config(load_config(TrainConfig, run / "config.yaml", ["teacher.finetune=true"]), run / "config.yaml")
    assert run_identity(run)["config_sha256"] != identity


def _reads(text: str, *args, **kwargs):
    import io

    return io.StringIO(text)


def test_other_cpu_allows_one_tick_per_busy_core_not_per_core(monkeypatch) -> None:
    """The allowance was one clock tick per core of the machine: on 64 cores, 0.64 s, so another
    process taking a whole core over a 0.5 s measurement read as 0.0 cores (bound 0.10)."""
    from supernet import profile_kit_script

    def stat(busy: list[int], rounding: int) -> str:
        total = sum(busy) + rounding  # the "cpu" line is rounded apart from the cores' lines
        return "".join(
            [f"cpu  {total} 0 0 100000 0 0 0 0 0 0\n"]
            + [f"cpu{i} {b} 0 0 1000 0 0 0 0 0 0\n" for i, b in enumerate(busy)]
            + ["intr 1 2 3\n"]
        )

    monkeypatch.setattr(profile_kit_script, "_CLOCK_TICKS", 100.0)
    monkeypatch.setattr(profile_kit_script.os, "cpu_count", lambda: 64)
    readings = []
    # cpu0: another process, cpu1: ours; the "cpu" line 2 ticks more apart than the cores' sum.
    for busy, rounding in (([500] * 64, 7), ([550, 525] + [500] * 62, 9)):
        monkeypatch.setattr(
            profile_kit_script, "open", functools.partial(_reads, stat(busy, rounding)), raising=False
        )
        readings.append(profile_kit_script.cpu_seconds())
    assert readings[0][0] == pytest.approx(320.07) and readings[0][2] == (500,) * 64
    start, end = readings
    start, end = (start[0], 10.0, start[2]), (end[0], 10.25, end[2])  # we took 0.25 s of it
    # 0.75 s busy, 0.25 s ours, 3 ticks of allowance (2 busy cores and our own time), over 0.5 s.
    assert profile_kit_script.other_cpu_cores(start, end, 0.5) == pytest.approx((0.75 - 0.25 - 0.03) / 0.5)
    # Without per-core lines: one tick per core of the machine, as before.
    bare = (start[0], 10.0, None), (end[0], 10.25, None)
    assert profile_kit_script.other_cpu_cores(*bare, 0.5) == 0.0


@pytest.mark.parametrize("run", ["qs", {}, {"name": "tiny"}, None])
def test_a_kit_of_no_run_identity_is_refused_before_its_exports(model, tmp_path: Path, run) -> None:
    """run="qs" failed after every export ("dictionary update sequence element #0 has length 1"); {}
    was written, its table refused only later, on the training machine."""
    with pytest.raises(ValueError) as err:
        write_profile_kit(model, tmp_path / "kit", run=run, space=SPACE)
    assert str(err.value) == f"run must be the run's identity, run_identity(RUN_DIR), got {run!r}"
    assert list(tmp_path.iterdir()) == []


def test_a_kit_written_meanwhile_into_the_same_folder_is_one_line(model, tmp_path: Path, monkeypatch) -> None:
    """Two `export.py --profile-kit DIR` at once: the second made all its graphs, then failed with
    a traceback (OSError: Directory not empty) when it came to rename its kit into place."""
    from supernet import profile_kit

    out = tmp_path / "kit"
    real = profile_kit.share_weights

    def other_kit_lands(folder, files):
        out.mkdir()
        (out / "kit.json").write_text("{}")  # the other job's kit, complete meanwhile
        return real(folder, files)

    monkeypatch.setattr(profile_kit, "share_weights", other_kit_lands)
    with pytest.raises(FileExistsError) as err:
        write_profile_kit(model, out, run=RUN, space=SPACE, calibration_subnets=CALIBRATION)
    assert str(err.value) == (
        f"'{out}' was written while this kit was made (by another export.py --profile-kit?): pass a new "
        "--profile-kit"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kit"]  # its own files gone, the other's kept
    assert sorted(p.name for p in out.iterdir()) == ["kit.json"]


def test_a_load_just_above_the_bound_does_not_read_as_on_it() -> None:
    """A flagged 0.1021 cores was said as "up to 0.10 cores (bound 0.10)": three decimals there."""
    from supernet.profile_kit_script import cores_text, flag_warning

    assert [cores_text(c) for c in (0.1021, 0.1, 0.0949, 0.11, 1.5)] == [
        "0.102",
        "0.10",
        "0.09",
        "0.11",
        "1.50",
    ]
    assert flag_warning({"a.onnx": (("load",), 0.1021, 0.01)}).startswith(
        "latency of a.onnx may not be the model's alone: other processes took up to 0.102 cores (bound 0.10)"
    )
