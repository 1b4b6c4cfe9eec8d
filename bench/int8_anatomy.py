"""Where an int8 graph's time goes: onnxruntime's 8-bit GEMMs against float32, and per op type.

Two parts, one thread, onnxruntime's CPU provider:

1. GEMM throughput at the shapes a BERT layer runs (M rows = batch x sequence length, K -> N):
   `MatMul` in float32, `MatMulInteger` (uint8 x int8 -> int32, the GEMM alone) and
   `DynamicQuantizeMatMul` (what `export.py --int8` graphs run: float32 in, the input quantized on
   every call, float32 out with the bias), each a one-node graph, medians of --calls calls after a
   warm-up. Their ratio is what 8-bit dot products (VNNI, AMX) buy at that shape.
2. With --export DIR (a folder `export.py --int8` wrote): both of its graphs, `model.onnx` and
   `model.int8.onnx`, profiled by onnxruntime (`SessionOptions.enable_profiling`) at b1 and
   --seq-len, the median of each node's kernel time summed per op type. The LayerNorms, GELUs and
   residual sums (`UNQUANTIZED`) are float32 work in both graphs that quantization does not touch;
   with the fp32 attention core inside `QAttention` they bound the whole graph's int8 speed-up
   (BENCHMARKS.md, "Exported models").

    python bench/int8_anatomy.py [--shapes 128x384x384,...] [--calls 200] [--export DIR] [--json OUT]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ort_timing import session, time_us  # noqa: E402
from supernet.cli import DefaultsHelp, OneLineParser, figures_file, write_figures  # noqa: E402
from supernet.latency import MachineLoad, monitor_load, print_load_report  # noqa: E402
from supernet.profile_kit_script import _feeds, cpu_description, int8_dot_product  # noqa: E402

KERNELS = ("MatMul fp32", "MatMulInteger", "DynamicQuantizeMatMul")
UNQUANTIZED = ("LayerNormalization", "SkipLayerNormalization", "BiasGelu", "Gelu", "FastGelu", "Sum")
"""Op types that run in float32 in the int8 graph as in the fp32 one."""
DEFAULT_SHAPES = "128x384x384,128x384x1536,128x1536x384,128x768x768,128x768x3072,1024x1024x1024"


def parse_shapes(text: str) -> list[tuple[int, int, int]]:
    """ "MxKxN,..." -> [(M, K, N), ...]; ValueError names the bad item."""
    shapes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError(f"shape {item.strip()!r} is not MxKxN with positive integers, e.g. 128x384x384")
        m, k, n = (int(p) for p in parts)
        shapes.append((m, k, n))
    return shapes


def build(kernel: str, m: int, k: int, n: int, seed: int = 0) -> tuple[bytes, dict[str, np.ndarray]]:
    """A one-node graph of `kernel` at [m, k] x [k, n], and its weights (for checking the result)."""
    rng = np.random.default_rng(seed)
    node = helper.make_node
    if kernel == "MatMul fp32":
        weights = {"w": rng.standard_normal((k, n)).astype(np.float32)}
        nodes = [node("MatMul", ["a", "w"], ["y"])]
        types = (TensorProto.FLOAT, TensorProto.FLOAT)
    elif kernel == "MatMulInteger":
        weights = {"w": rng.integers(-127, 128, (k, n)).astype(np.int8)}
        nodes = [node("MatMulInteger", ["a", "w"], ["y"])]
        types = (TensorProto.UINT8, TensorProto.INT32)
    elif kernel == "DynamicQuantizeMatMul":
        weights = {
            "w": rng.integers(-127, 128, (k, n)).astype(np.int8),
            "w_scale": np.array(0.01, np.float32),
            "w_zero_point": np.array(0, np.int8),
            "bias": rng.standard_normal(n).astype(np.float32),
        }
        inputs = ["a", "w", "w_scale", "w_zero_point", "bias"]
        nodes = [node("DynamicQuantizeMatMul", inputs, ["y"], domain="com.microsoft")]
        types = (TensorProto.FLOAT, TensorProto.FLOAT)
    else:
        raise ValueError(f"unknown kernel {kernel!r}; one of {', '.join(KERNELS)}")
    graph = helper.make_graph(
        nodes,
        kernel,
        [helper.make_tensor_value_info("a", types[0], [m, k])],
        [helper.make_tensor_value_info("y", types[1], [m, n])],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString(), weights


def example_input(kernel: str, m: int, k: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kernel == "MatMulInteger":
        return rng.integers(0, 256, (m, k)).astype(np.uint8)
    return rng.standard_normal((m, k)).astype(np.float32)


def gemm_rows(shapes: list[tuple[int, int, int]], calls: int) -> Iterator[dict[str, Any]]:
    """One row per shape, yielded as soon as it is timed."""
    for m, k, n in shapes:
        row: dict[str, Any] = {"shape": f"{m}x{k}x{n}", "macs": m * k * n}
        for kernel in KERNELS:
            model, _ = build(kernel, m, k, n)
            us = time_us(session(model), {"a": example_input(kernel, m, k)}, calls)
            row[kernel] = {"us": us, "gmac_per_s": m * k * n / us / 1e3}
        yield row


def op_type_profile(graph: Path, seq_len: int, calls: int) -> dict[str, float]:
    """Milliseconds per op type: each node's median kernel time over `calls` profiled calls, summed."""
    config = json.loads((graph.parent / "config.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(str(graph), profile_prefix=str(Path(tmp) / "profile"))
        feeds = _feeds(sess, 1, seq_len, config["vocab_size"])
        for _ in range(max(10, calls // 10)):
            sess.run(None, feeds)
        # The warm-up calls are profiled too: only the last `calls` of each node count.
        for _ in range(calls):
            sess.run(None, feeds)
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_node: dict[tuple[str, str], list[float]] = defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            per_node[(event["args"]["op_name"], event["name"])].append(event["dur"])
    per_type: dict[str, float] = defaultdict(float)
    for (op_type, _), durations in per_node.items():
        per_type[op_type] += statistics.median(durations[-calls:]) / 1e3
    return dict(sorted(per_type.items(), key=lambda item: -item[1]))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        allow_abbrev=False,
        description=__doc__.splitlines()[0],
        formatter_class=DefaultsHelp,
    )
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated MxKxN GEMM shapes")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per GEMM or graph (medians)")
    parser.add_argument(
        "--export", type=Path, help="a folder export.py --int8 wrote (model.onnx, model.int8.onnx)"
    )
    parser.add_argument("--seq-len", type=int, default=128, help="tokens of the --export graphs' input")
    parser.add_argument("--json", type=figures_file(__file__), help="write the figures here")
    args = parser.parse_args(argv)
    try:
        shapes = parse_shapes(args.shapes)
    except ValueError as err:
        parser.error(f"--shapes: {err}")
    if args.calls < 1 or args.seq_len < 1:
        parser.error("--calls and --seq-len must be positive")
    graphs = None
    if args.export is not None:
        graphs = {name: args.export / f"{name}.onnx" for name in ("model", "model.int8")}
        missing = [
            str(path) for path in [*graphs.values(), args.export / "config.json"] if not path.is_file()
        ]
        if missing:
            parser.error(f"--export {args.export}: {', '.join(missing)} not found (export it with --int8)")

    print(f"CPU: {cpu_description()}; 8-bit dot-product instructions: {int8_dot_product()}")
    print(f"onnxruntime {ort.__version__}, 1 thread, median of {args.calls} calls")
    print(
        f"{'M x K x N':<18}{'fp32 us':>10}{'int8 GEMM us':>14}{'DQMatMul us':>13}{'GEMM x':>9}{'DQMatMul x':>12}"
    )
    rows = []
    loads: dict[str, MachineLoad] = {}
    with monitor_load() as probe:
        for row in gemm_rows(shapes, args.calls):
            rows.append(row)
            fp32, gemm, dq = (row[kernel]["us"] for kernel in KERNELS)
            print(
                f"{row['shape']:<18}{fp32:>10.1f}{gemm:>14.1f}{dq:>13.1f}{fp32 / gemm:>8.2f}x{fp32 / dq:>11.2f}x",
                flush=True,
            )
    assert probe.load is not None
    loads["the GEMMs"] = probe.load
    result: dict[str, Any] = {
        "cpu": cpu_description(),
        "int8_dot_product": int8_dot_product(),
        "onnxruntime": ort.__version__,
        "calls": args.calls,
        "gemm": rows,
    }
    if graphs is not None:
        print(f"profiling {graphs['model']} and {graphs['model.int8']} ...", flush=True)
        with monitor_load() as probe:
            profiles = {
                name: op_type_profile(path, args.seq_len, args.calls) for name, path in graphs.items()
            }
        assert probe.load is not None
        loads["the profile"] = probe.load
        fp32, int8 = profiles["model"], profiles["model.int8"]
        print(f"\n{args.export}: kernel time per op type, b1 s{args.seq_len}, ms (median per node, summed)")
        print(f"{'op type':<26}{'model.onnx':>12}{'model.int8.onnx':>17}")
        for op_type in dict.fromkeys([*fp32, *int8]):
            cells = [f"{p[op_type]:.3f}" if op_type in p else "-" for p in (fp32, int8)]
            print(f"{op_type:<26}{cells[0]:>12}{cells[1]:>17}")
        shared = [t for t in UNQUANTIZED if t in fp32 or t in int8]
        totals = [sum(p.values()) for p in (fp32, int8)]
        same = [sum(p.get(t, 0.0) for t in shared) for p in (fp32, int8)]
        print(f"{'total':<26}{totals[0]:>12.3f}{totals[1]:>17.3f}   ratio {totals[0] / totals[1]:.2f}x")
        print(f"{'float32 in both':<26}{same[0]:>12.3f}{same[1]:>17.3f}   ({', '.join(shared)})")
        result["profile"] = {"seq_len": args.seq_len, "export": str(args.export), **profiles}
    print_load_report(loads)
    result["load"] = {name: load.to_dict() for name, load in loads.items()}
    if args.json is not None:
        write_figures(args.json, result, script=__file__)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))
