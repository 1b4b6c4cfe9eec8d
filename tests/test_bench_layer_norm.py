"""bench/layer_norm_kernels.py: the forms it times compute what they claim."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import load_bench

kernels = load_bench("layer_norm_kernels")


def _layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + kernels.EPSILON) * gamma + beta


@pytest.mark.parametrize("hidden", [8, 24])
def test_residual_forms_compute_the_same_layer_norm(hidden: int) -> None:
    # The weights build() draws, in its order: gamma, beta, bias, skip.
    rng = np.random.default_rng(0)
    gamma, beta, bias = (rng.standard_normal(hidden).astype(np.float32) for _ in range(3))
    skip = rng.standard_normal((1, 5, hidden)).astype(np.float32)
    x = np.random.default_rng(7).standard_normal((1, 5, hidden)).astype(np.float32)
    run = {
        form: kernels.session(kernels.build(form, hidden, 5)).run(None, {"x": x})[0] for form in kernels.FORMS
    }
    want = _layer_norm(x + bias + skip, gamma, beta)
    for form in ("SkipLayerNormalization", "Sum + LayerNormalization", "primitives"):
        assert np.abs(run[form] - want).max() <= 1e-5, form
    assert np.abs(run["LayerNormalization"] - _layer_norm(x, gamma, beta)).max() <= 1e-5
    assert np.abs(run["Add"] - (x + skip)).max() <= 1e-6


def test_sum_keeps_onnxruntime_from_fusing_the_skip_kernel_back(tmp_path) -> None:
    import onnx
    import onnxruntime as ort

    # The op types onnxruntime runs after its own graph fusions.
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "sum.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(
        kernels.build("Sum + LayerNormalization", 8, 5), options, providers=["CPUExecutionProvider"]
    )
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert "SkipLayerNormalization" not in ops and ops.count("LayerNormalization") == 1


def test_unknown_form_is_named() -> None:
    with pytest.raises(ValueError) as err:
        kernels.build("RMSNorm", 8, 5)
    assert str(err.value) == (
        "unknown form 'RMSNorm'; one of LayerNormalization, SkipLayerNormalization, "
        "Sum + LayerNormalization, primitives, Add"
    )


def test_the_table_ends_with_the_machines_load(capsys) -> None:
    assert kernels.main(["--hidden", "8", "--seq-len", "4", "--calls", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[2:7]] == [form.split()[0] for form in kernels.FORMS]
    summary = next(line for line in lines if line.startswith("load while timing: "))
    assert re.fullmatch(
        r"load while timing: other processes took at most \d+\.\d\d cores \(bound 0\.10\), "
        r"1-min load average (\d+\.\d\d)-\1",
        summary,
    )
    assert lines[lines.index(summary) + 1 :] in ([], [line for line in lines if line.startswith("warning: ")])


def test_json_holds_each_forms_median_and_the_load(tmp_path, capsys) -> None:
    """README says the kernel benches put their load in their --json; this one had no --json."""
    import json

    out = tmp_path / "ln.json"
    assert kernels.main(["--hidden", "8,16", "--seq-len", "4", "--calls", "3", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["bench"] == "layer_norm_kernels.py" and (figures["seq_len"], figures["calls"]) == (4, 3)
    assert list(figures["median_us"]) == list(kernels.FORMS)
    assert all(
        list(cells) == ["8", "16"] and min(cells.values()) > 0 for cells in figures["median_us"].values()
    )
    assert {"load_avg", "other_cpu"} <= set(figures["load"])
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {out}"
