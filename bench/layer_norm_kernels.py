"""How fast is each way of writing a BERT LayerNorm in the installed onnxruntime?

One node (or the few nodes of one form) per graph, one thread, static shape [1, S, H],
medians of --calls calls after a warm-up. The three residual forms compute the same
LayerNorm(x + bias + skip); the first and last rows are for scale:

* `LayerNormalization` (ONNX) alone, LayerNorm(x);
* `SkipLayerNormalization` (com.microsoft) with bias: what onnxruntime's BERT optimizer writes
  for a residual LayerNorm;
* `Sum` + `LayerNormalization`: what `supernet.export.write_onnx` writes for it (graph revision 3);
  a `Sum` because onnxruntime fuses `Add` + `LayerNormalization` into `SkipLayerNormalization`;
* primitives (ReduceMean / Sub / Mul / ReduceMean / Add / Sqrt / Reciprocal / Mul / Mul / Add):
  graph revision 2;
* `Add`: one elementwise op over the same tensor, for scale.

Releases differ by up to 8x in one of the kernels (BENCHMARKS.md, "Exported models"); run it in
the environment you deploy with:

    python bench/layer_norm_kernels.py [--hidden 384,768] [--seq-len 128] [--calls 300]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ort_timing import session, time_us  # noqa: E402
from supernet.cli import DefaultsHelp, OneLineParser, figures_file, write_figures  # noqa: E402
from supernet.latency import monitor_load, print_load_report  # noqa: E402

FORMS = ("LayerNormalization", "SkipLayerNormalization", "Sum + LayerNormalization", "primitives", "Add")
EPSILON = 1e-12


def build(form: str, hidden: int, seq_len: int, seed: int = 0) -> bytes:
    """A graph of one form: input x [1, S, H] -> y, with the residual `skip` and the bias as weights."""
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> Any:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    inits = [weight("gamma", hidden), weight("beta", hidden), weight("bias", hidden)]
    inits += [
        weight("skip", 1, seq_len, hidden),
        numpy_helper.from_array(np.array(EPSILON, np.float32), "eps"),
    ]
    node = helper.make_node
    if form == "LayerNormalization":
        nodes = [node("LayerNormalization", ["x", "gamma", "beta"], ["y"], axis=-1, epsilon=EPSILON)]
    elif form == "SkipLayerNormalization":
        nodes = [
            node(
                "SkipLayerNormalization",
                ["x", "skip", "gamma", "beta", "bias"],
                ["y"],
                domain="com.microsoft",
                epsilon=EPSILON,
            )
        ]
    elif form == "Sum + LayerNormalization":
        nodes = [
            node("Add", ["x", "bias"], ["biased"]),
            node("Sum", ["biased", "skip"], ["total"]),
            node("LayerNormalization", ["total", "gamma", "beta"], ["y"], axis=-1, epsilon=EPSILON),
        ]
    elif form == "primitives":
        axes = numpy_helper.from_array(np.array([-1], np.int64), "axes")
        inits.append(axes)
        nodes = [
            node("Add", ["x", "bias"], ["biased"]),
            node("Add", ["biased", "skip"], ["total"]),
            node("ReduceMean", ["total", "axes"], ["mean"], keepdims=1),
            node("Sub", ["total", "mean"], ["centred"]),
            node("Mul", ["centred", "centred"], ["squared"]),
            node("ReduceMean", ["squared", "axes"], ["var"], keepdims=1),
            node("Add", ["var", "eps"], ["var_eps"]),
            node("Sqrt", ["var_eps"], ["std"]),
            node("Reciprocal", ["std"], ["inv_std"]),
            node("Mul", ["centred", "inv_std"], ["normed"]),
            node("Mul", ["normed", "gamma"], ["scaled"]),
            node("Add", ["scaled", "beta"], ["y"]),
        ]
    elif form == "Add":
        nodes = [node("Add", ["x", "skip"], ["y"])]
    else:
        raise ValueError(f"unknown form {form!r}; one of {', '.join(FORMS)}")
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(
        nodes,
        form,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq_len, hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq_len, hidden])],
        [i for i in inits if i.name in used],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        allow_abbrev=False,
        description=__doc__.splitlines()[0],
        formatter_class=DefaultsHelp,
    )
    parser.add_argument("--hidden", default="384,768", help="comma-separated hidden sizes")
    parser.add_argument("--seq-len", type=int, default=128, help="rows each LayerNorm normalises")
    parser.add_argument("--calls", type=int, default=300, help="timed calls per form (medians)")
    parser.add_argument("--json", type=figures_file(__file__), help="write the figures here")
    args = parser.parse_args(argv)
    try:
        sizes = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        parser.error(f"--hidden {args.hidden!r}: give comma-separated integers, e.g. 384,768")
    if args.seq_len < 1 or args.calls < 1 or min(sizes) < 1:
        parser.error("--hidden, --seq-len and --calls must be positive")
    print(
        f"onnxruntime {ort.__version__}, 1 thread, [1, {args.seq_len}, H], median of {args.calls} calls (us)"
    )
    print(f"{'form':<28}" + "".join(f"{f'H={h}':>10}" for h in sizes))
    x = {h: np.random.default_rng(1).standard_normal((1, args.seq_len, h)).astype(np.float32) for h in sizes}
    us: dict[str, dict[str, float]] = {}
    with monitor_load() as probe:
        for form in FORMS:
            cells = [time_us(session(build(form, h, args.seq_len)), {"x": x[h]}, args.calls) for h in sizes]
            us[form] = {str(h): c for h, c in zip(sizes, cells, strict=True)}
            print(f"{form:<28}" + "".join(f"{c:>10.0f}" for c in cells), flush=True)
    assert probe.load is not None
    print_load_report({"the kernels": probe.load})
    if args.json is not None:
        figures = {"onnxruntime": ort.__version__, "seq_len": args.seq_len, "calls": args.calls}
        write_figures(args.json, {**figures, "median_us": us, "load": probe.load.to_dict()}, script=__file__)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))
