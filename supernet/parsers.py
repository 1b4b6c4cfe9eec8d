"""The options of search.py and export.py, built without torch, transformers or onnx.

`--help`, and an option argparse refuses, answered after seconds of importing those (6 s on a
2-core machine); the commands import them once their options are parsed.
"""

from __future__ import annotations

import dataclasses

from supernet.cli import OneLineParser, folder_option, user_path, user_path_text
from supernet.config import DEFAULT_ACCURACY_SUBSET, DEFAULT_OPSET, DTYPE_NAMES, SearchConfig

__all__ = ["SEARCH_DEFAULTS", "export_parser", "search_parser"]

# search.py's defaults are SearchConfig's (its API users get what search.py does), --verify-top aside.
SEARCH_DEFAULTS = {f.name: f.default for f in dataclasses.fields(SearchConfig)}


def search_parser() -> OneLineParser:
    """search.py's options (`run` takes the parsed namespace; `search_defaults` fills what is unset)."""
    p = OneLineParser(
        prog="search.py",
        allow_abbrev=False,
        description="Measure every trained subnet, draw the accuracy/latency Pareto front, "
        "pick the most accurate subnet within a latency budget.",
    )
    p.add_argument("--run", required=True, type=user_path_text, help="run directory written by train.py")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--latency-budget-ms", type=float, help="latency budget in milliseconds")
    budget.add_argument(
        "--latency-budget-ratio",
        type=float,
        help="budget as a fraction of the full model's measured latency (e.g. 0.5)",
    )
    # None means "not given": with --latency-table, a given one is said to be ignored.
    p.add_argument("--device", default=None, help="cpu or cuda[:N] (default cpu)")
    p.add_argument(
        "--backend",
        default=None,
        choices=("torch", "onnxruntime"),
        help="torch eager, or onnxruntime on the optimised graph export.py writes (default torch)",
    )
    p.add_argument(
        "--int8",
        action="store_true",
        help="with --backend onnxruntime: time and score the int8 graph export.py --int8 writes (dev "
        "scores are the int8 model's; per-layer candidates are still ranked on FP32 dev-subset scores)",
    )
    p.add_argument(
        "--dtype",
        default=None,
        choices=DTYPE_NAMES,
        help="with --backend torch: the type the subnets are timed in, the one you will serve in "
        "(default float32; e.g. bfloat16 on a GPU: an H200 ran BERT-base 3x faster in it at batch 32). "
        "Dev scores stay float32's",
    )
    p.add_argument("--batch-size", type=int, default=None, help="(default 1, or the latency table's)")
    p.add_argument(
        "--seq-len",
        type=int,
        default=None,
        help="tokens per sequence (default 128, or the run's max_length where the model has fewer positions; "
        "with --latency-table, the table's)",
    )
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help=f"untimed calls before each measurement (default {SEARCH_DEFAULTS['warmup']})",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"timed calls per measurement; the median is kept (default {SEARCH_DEFAULTS['repeats']})",
    )
    p.add_argument("--per-layer", action="store_true", help="also search per-layer subnets (evolution)")
    p.add_argument(
        "--predict",
        action="store_true",
        help="also fit the per-layer latency predictor and print its estimate next to each measured "
        "latency (pred ms); always on with --per-layer, and shown whenever the run has one cached",
    )
    p.add_argument(
        "--remeasure",
        action="store_true",
        help="time every subnet (and the predictor's probes) again instead of reading the run's latency "
        "cache, e.g. on an idle machine after figures flagged load or spread; the new figures replace them",
    )
    p.add_argument(
        "--population",
        type=int,
        default=None,
        help=f"per-layer subnets per generation (default {SEARCH_DEFAULTS['population']})",
    )
    p.add_argument(
        "--generations",
        type=int,
        default=None,
        help=f"rounds of evolution after the first population (default {SEARCH_DEFAULTS['generations']})",
    )
    p.add_argument(
        "--verify-top",
        type=int,
        default=None,
        help="per-layer candidates verified by measurement (default 5)",
    )
    p.add_argument(
        "--accuracy-subset",
        type=int,
        default=None,
        metavar="N",
        help="dev examples that rank per-layer candidates during the evolution (a fixed seeded, "
        f"stratified subset; 0 = the whole dev split; default {DEFAULT_ACCURACY_SUBSET})",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the evolution and of the accuracy subset (default 0)"
    )
    p.add_argument(
        "--out",
        type=folder_option("leave --out out for RUN/search"),
        default=None,
        metavar="DIR",
        help="folder for this search's results.jsonl, pareto.csv, pareto.png, search.json and chosen.json (default "
        "RUN/search); one per target device keeps their searches apart (export.py --search DIR)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--latency-table",
        type=user_path,
        default=None,
        help="latency-table.json from a device profile kit (export.py --profile-kit): predict every "
        "latency from it instead of measuring on this machine (its setting replaces --device, --backend, "
        "--warmup and --repeats; --threads/--batch-size/--seq-len must match it when given)",
    )
    return p


def export_parser() -> OneLineParser:
    """export.py's options (`supernet.export_cli.run` takes the parsed namespace)."""
    p = OneLineParser(
        prog="export.py",
        allow_abbrev=False,
        description="Export a subnet of a trained supernet as a standalone model folder (+ ONNX), "
        "checked against the supernet.",
    )
    p.add_argument("--run", required=True, type=user_path_text, help="run directory written by train.py")
    p.add_argument(
        "--subnet",
        default=None,  # 'best', but told apart from one given (--profile-kit refuses it)
        help="'best' (search.py's choice, the default), a grid name such as "
        "w0.50-d0.75, or a per-layer name from search/results.jsonl",
    )
    p.add_argument(
        "--out",
        type=folder_option("leave --out out for RUN/export/<subnet name>"),
        default=None,
        help="output folder (default: RUN/export/<subnet name>)",
    )
    p.add_argument(
        "--search",
        type=user_path,
        default=None,
        metavar="DIR",
        help="the search whose choice 'best' is and whose per-layer names --subnet may use "
        "(search.py --out; default RUN/search)",
    )
    onnx = p.add_mutually_exclusive_group()
    onnx.add_argument(
        "--onnx", dest="onnx", action="store_true", default=True, help="write model.onnx (default)"
    )
    onnx.add_argument("--no-onnx", dest="onnx", action="store_false", help="skip ONNX")
    p.add_argument("--int8", action="store_true", help="also write a dynamically quantized model.int8.onnx")
    p.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset ({DEFAULT_OPSET}: the exporter's native one, no conversion, and the one "
        "search.py --backend onnxruntime times)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export at --out (only folders holding a parity.json)",
    )
    p.add_argument("--threads", type=int, default=None, help="threads for the latency measurement")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--profile-kit",
        type=folder_option("leave --profile-kit out to export a subnet"),
        metavar="OUT",
        default=None,
        help="instead of exporting a subnet, write a device profile kit to OUT: the ONNX files the "
        "latency predictor is built from and profile.py, which times them on a device with only "
        "numpy and onnxruntime (then: search.py --latency-table); with --int8, the int8 graphs",
    )
    return p
