"""bench/int8_anatomy.py: its one-node graphs compute what they claim, its profile sees every node."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import load_bench, tiny_model

import supernet as sn
from supernet.export import export_subnet

anatomy = load_bench("int8_anatomy")


def _run(kernel: str, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    model, weights = anatomy.build(kernel, m, k, n)
    a = anatomy.example_input(kernel, m, k)
    return anatomy.session(model).run(None, {"a": a})[0], a, weights


def test_gemm_graphs_compute_their_product() -> None:
    y, a, w = _run("MatMul fp32", 16, 24, 8)
    np.testing.assert_allclose(y, a @ w["w"], rtol=1e-5, atol=1e-5)
    y, a, w = _run("MatMulInteger", 16, 24, 8)
    assert y.dtype == np.int32 and np.array_equal(y, a.astype(np.int32) @ w["w"].astype(np.int32))
    y, a, w = _run("DynamicQuantizeMatMul", 16, 24, 8)
    want = a @ (w["w"].astype(np.float32) * w["w_scale"]) + w["bias"]
    # The input is quantized to uint8 over its own range: within 1% of the output's scale.
    assert np.abs(y - want).max() <= 0.01 * np.abs(want).max()


def test_shapes_are_parsed_and_refused_by_name() -> None:
    assert anatomy.parse_shapes("128x384x384, 1X2X3") == [(128, 384, 384), (1, 2, 3)]
    with pytest.raises(ValueError) as err:
        anatomy.parse_shapes("128x384x384,128x0x4")
    assert str(err.value) == "shape '128x0x4' is not MxKxN with positive integers, e.g. 128x384x384"
    with pytest.raises(SystemExit):
        anatomy.main(["--shapes", "128x384"])


def test_an_export_folder_without_int8_graph_is_refused(tmp_path: Path, capsys, as_script) -> None:
    as_script("int8_anatomy")
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(SystemExit):
        anatomy.main(["--export", str(tmp_path)])
    assert capsys.readouterr().err == (
        f"int8_anatomy.py: error: --export {tmp_path}: {tmp_path / 'model.int8.onnx'}, {tmp_path / 'config.json'} "
        "not found (export it with --int8) (usage: int8_anatomy.py --help)\n"
    )


def test_profile_of_an_export_counts_each_graphs_ops(tmp_path: Path) -> None:
    model = sn.to_supernet(tiny_model("bert"))
    cfg = sn.SubnetConfig(width_mult=0.5, depth_mult=0.5)
    sn.set_active_subnet(model, cfg)
    export_subnet(model, cfg, tmp_path / "export", onnx=True, int8=True)
    out = tmp_path / "anatomy.json"
    assert (
        anatomy.main(
            [
                "--shapes",
                "8x16x8",
                "--calls",
                "5",
                "--export",
                str(tmp_path / "export"),
                "--seq-len",
                "16",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    gemm = result["gemm"][0]
    assert gemm["shape"] == "8x16x8" and gemm["macs"] == 8 * 16 * 8
    for kernel in anatomy.KERNELS:
        assert gemm[kernel]["gmac_per_s"] == pytest.approx(8 * 16 * 8 / gemm[kernel]["us"] / 1e3)
    fp32, int8 = result["profile"]["model"], result["profile"]["model.int8"]
    # Two kept layers of the tiny BERT: a fused attention each, and 2 LayerNorms each plus the embeddings'.
    assert "Attention" in fp32 and "QAttention" in int8 and "DynamicQuantizeMatMul" in int8
    assert "MatMul" in fp32 and "MatMul" not in int8
    assert all(ms > 0 for ms in [*fp32.values(), *int8.values()])
    assert {"LayerNormalization", "Sum"} <= set(fp32) & set(int8)
    # The int8 MatMul adds the FFN's bias: BiasGelu in float32, a plain Gelu after quantization.
    assert "BiasGelu" in fp32 and "Gelu" in int8 and "BiasGelu" not in int8
    # The machine's load is recorded for each timed part.
    assert list(result["load"]) == ["the GEMMs", "the profile"]
    assert all(set(load) == {"load_avg", "other_cpu", "wall_s", "loaded"} for load in result["load"].values())
