"""Does a device profile kit's latency table predict onnxruntime latency of held-out subnets?

The whole device flow on this machine, with the goal of issue 11 (MAPE <= 5%
on 30 held-out per-layer subnets):

1. write the profile kit of a converted model (`supernet.profile_kit.write_profile_kit`:
   the lookup-table predictor's probes and calibration subnets, exported to ONNX by
   `export_subnet`), and export the held-out per-layer subnets into the same folder
   (kit.json lists them with role "held-out"; the predictor never uses them);
2. run the kit's profile.py in a subprocess where torch, transformers and supernet
   cannot be imported, exactly as on a device;
3. solve the predictor from the table (`LatencyTable.predictor`) and compare its
   prediction for every held-out subnet with the table's measured median.

The held-out files are timed by profile.py in the same interleaved rounds as the
kit's own files, so a load change on a shared machine hits them alike (with
--separate they are timed afterwards with `supernet.latency.measure_onnx`).

    python bench/profile_kit.py                       # MiniLM, b1 s128, 1 thread, 30 subnets
    python bench/profile_kit.py --model bert-base --json out.json
    python bench/profile_kit.py --int8                # the int8 graphs export.py --int8 ships

Most of the time goes into the ONNX exports (one per kit file and held-out subnet);
--work DIR keeps them, and a second run with the same DIR reuses kit and table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import transformers  # noqa: E402
from latency_predictor import (  # noqa: E402
    GOAL_SUBNETS,
    MAPE_GOAL,
    add_model_arguments,
    held_out_subnets,
    load_model,
    verdict,
)

from supernet import SearchSpace  # noqa: E402
from supernet.cli import OneLineParser, at_least, figures_file, folder_problem, user_path, write_figures  # noqa: E402
from supernet.data import positions_problem  # noqa: E402
from supernet.export import export_subnet  # noqa: E402
from supernet.latency import load_warning, measure_onnx  # noqa: E402
from supernet.profile_kit import (  # noqa: E402
    KitEntry,
    ProfileKitError,
    add_to_kit,
    load_latency_table,
    write_profile_kit,
)
from supernet.profile_kit_script import timing_setting  # noqa: E402


def poisoned_env(folder: Path) -> dict[str, str]:
    """Environment in which `import torch` / `transformers` / `supernet` raises ImportError."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("torch", "transformers", "supernet"):
        (folder / f"{name}.py").write_text(f"raise ImportError('{name} is not installed on the device')\n")
    return {**os.environ, "PYTHONPATH": str(folder)}


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_arguments(parser)
    parser.add_argument("--warmup", type=at_least(0), default=5, help="untimed calls before each timed block")
    parser.add_argument("--repeats", type=at_least(1), default=30, help="timed calls per file")
    parser.add_argument("--rounds", type=at_least(1), default=5, help="interleaved passes over the files")
    parser.add_argument(
        "--subnets", type=at_least(1), default=30, help="held-out per-layer subnets (>= 30 for the goal)"
    )
    parser.add_argument("--seed", type=int, default=1234, help="seed of the held-out subnets")
    parser.add_argument("--int8", action="store_true", help="an int8 kit (export.py --profile-kit --int8)")
    parser.add_argument(
        "--separate", action="store_true", help="time held-out subnets after, with measure_onnx"
    )
    parser.add_argument(
        "--work", type=user_path, default=None, help="folder for kit and table (default: temporary)"
    )
    parser.add_argument("--json", type=figures_file(__file__), default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if args.work is None:
        work = Path(tempfile.mkdtemp(prefix="profile-kit-bench-"))
        try:
            return run(args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)  # ~123 MiB of kit for MiniLM, ~700 MiB for BERT-base
    problem = reused_work_problem(args)
    if problem is not None:
        parser.error(problem)
    return run(args, args.work)


def reused_work_problem(args: argparse.Namespace) -> str | None:
    """Why --work cannot serve this run: a file, or a kit or table of another setting (a second run
    reused them whatever it asked for, and reported the first run's figures under its own header)."""
    work = args.work
    if work.exists() and not work.is_dir():
        return f"--work {work} is a file: pass a folder"
    problem = folder_problem(work, f"--work {work}")
    if problem is not None:
        return problem
    kit_json, table_path = work / "kit" / "kit.json", work / "latency-table.json"
    if kit_json.is_file():
        kit = json.loads(kit_json.read_text(encoding="utf-8"))
        held = (kit.get("run", {}).get("name"), bool(kit.get("int8")))
        if held != (f"bench-{args.model}", args.int8):
            return (
                f"--work {work} holds a kit of {held[0]}{' int8' if held[1] else ''}, not bench-{args.model}"
                f"{' int8' if args.int8 else ''}: pass another --work"
            )
    if table_path.is_file():
        timed = json.loads(table_path.read_text(encoding="utf-8")).get("setting", {})
        asked = timing_setting(args)  # what profile.py records for these flags
        differ = [f"{k} {timed.get(k)} (asked {v})" for k, v in asked.items() if timed.get(k) != v]
        if differ:
            return (
                f"--work {work} holds a latency table timed with {', '.join(differ)}: pass another --work, "
                f"or delete {table_path} to time the kit again"
            )
    return None


def run(args: argparse.Namespace, work: Path) -> int:
    t0 = time.perf_counter()
    kit, table_path = work / "kit", work / "latency-table.json"
    model = load_model(args.model)
    problem = positions_problem(model.config, args.seq_len, "--seq-len")
    if problem is not None:  # before the kit is written (a minute for MiniLM), not from profile.py after it
        print(f"profile_kit.py: error: {problem}", file=sys.stderr)
        return 2
    space = SearchSpace()
    subnets = held_out_subnets(model, space, args.subnets + 5, args.seed, exclude=set())
    kind = " int8" if args.int8 else ""
    print(f"model={args.model}{kind} threads={args.threads} b{args.batch_size} s{args.seq_len} work={work}")
    if not (kit / "kit.json").is_file():
        print("writing the kit ...", flush=True)
        transformers.logging.disable_progress_bar()  # one "Writing model shards" bar per file otherwise
        write_profile_kit(
            model,
            kit,
            run={"name": f"bench-{args.model}", "config_sha256": "-"},
            space=space,
            int8=args.int8,
            log=print,
        )
    kit_files = [e.file for e in load_kit_entries(kit) if e.role in ("probe", "calibration")]
    shared = json.loads((kit / "kit.json").read_text()).get("weights") or {}
    kit_bytes = sum((kit / f).stat().st_size for f in kit_files) + int(shared.get("bytes", 0))
    print(
        f"kit: {len(kit_files)} ONNX files, {kit_bytes / 2**20:.1f} MiB with their shared weights "
        f"({int(shared.get('inline_bytes', kit_bytes)) / 2**20:.1f} MiB with the weights in each file)"
    )
    calibration = {e.subnet for e in load_kit_entries(kit) if e.role == "calibration"}
    subnets = [c for c in subnets if c not in calibration][: args.subnets]
    if not args.separate:
        # Files already in the kit (an earlier run with this --work) are kept.
        add_to_kit(kit, model, subnets, role="held-out", log=print)
    export_s = time.perf_counter() - t0
    load_before = os.getloadavg()[0]
    if not table_path.is_file():
        print(f"running profile.py without torch (load average {load_before:.2f}) ...", flush=True)
        cmd = [sys.executable, str(kit / "profile.py"), "--threads", str(args.threads)]
        cmd += [
            "--batch-size",
            str(args.batch_size),
            "--seq-len",
            str(args.seq_len),
            "--warmup",
            str(args.warmup),
        ]
        cmd += ["--repeats", str(args.repeats), "--rounds", str(args.rounds), "--out", str(table_path)]
        subprocess.run(cmd, env=poisoned_env(work / "poison"), check=True)
    table = load_latency_table(table_path)
    try:
        predictor = table.predictor(model)
    except ProfileKitError as err:  # figures that do not fit together (a busy machine while timing)
        print(f"profile_kit.py: error: {err}", file=sys.stderr)
        return 2
    print(
        f"predictor: fixed={predictor.fixed_ms:.3f} ms, calibration={predictor.calibration_model} "
        f"(alpha={predictor.alpha:.4f}, beta={predictor.beta:.3f} ms)"
    )
    held = {e.subnet: table.results[e.file] for e in table.entries if e.role == "held-out"}
    if args.separate or any(c not in held for c in subnets):
        for cfg in [c for c in subnets if c not in held]:
            with tempfile.TemporaryDirectory() as tmp:
                report = export_subnet(model, cfg, Path(tmp) / "m", onnx=True, int8=args.int8)
                graph = report.int8_path if args.int8 else report.onnx_path
                held[cfg] = measure_onnx(graph, table.setting)
    load_after = os.getloadavg()[0]
    # profile.py records the CPU other processes took over its whole run, the same for every file.
    other_cpu = next(iter(table.results.values())).other_cpu
    table_warning = load_warning(table.results)

    rows = []
    print(f"{'subnet':<16} {'layers':>6} {'pred ms':>9} {'meas ms':>9} {'err %':>7}")
    for cfg in subnets:
        measured, predicted = held[cfg].median_ms, predictor.predict(cfg)
        err = 100.0 * (predicted - measured) / measured
        print(f"{cfg.name:<16} {len(cfg.layers or ()):>6} {predicted:>9.3f} {measured:>9.3f} {err:>+7.2f}")
        rows.append(
            {"name": cfg.name, "spec": cfg.to_dict(), "predicted_ms": predicted, "measured_ms": measured}
        )
    mape = predictor.mape(subnets, [held[c] for c in subnets])
    abs_err = [abs(r["predicted_ms"] - r["measured_ms"]) / r["measured_ms"] * 100 for r in rows]
    total_s = time.perf_counter() - t0
    others = "unknown" if other_cpu is None else f"{other_cpu:.2f} cores"
    print(
        f"load average (1 min): {load_before:.2f} before profiling, {load_after:.2f} after, {os.cpu_count()} cores; "
        f"other processes while profile.py timed the kit: {others}"
    )
    if table_warning is not None:
        print(f"warning: the table: {table_warning}")
    print(f"median abs error {statistics.median(abs_err):.2f}%, max abs error {max(abs_err):.2f}%")
    print(f"exports {export_s:.0f} s, total {total_s:.0f} s")
    passed = verdict(mape, len(rows))
    print(
        f"MAPE: {mape:.1f}% over {len(rows)} held-out subnets (goal <= {MAPE_GOAL:.0f}% on >= {GOAL_SUBNETS}): {passed}"
    )
    if args.json is not None:
        write_figures(
            args.json,
            {
                "model": args.model,
                "int8": args.int8,
                "setting": table.setting.to_dict(),
                "device": table.device,
                "held_out_interleaved": not args.separate,
                "mape_pct": mape,
                "median_abs_err_pct": statistics.median(abs_err),
                "max_abs_err_pct": max(abs_err),
                "goal_pct": MAPE_GOAL,
                "pass": passed == "PASS",
                "load_average_before": load_before,
                "load_average_after": load_after,
                "other_cpu": other_cpu,
                "load_warning": table_warning,
                "kit_bytes": kit_bytes,
                "kit_inline_bytes": shared.get("inline_bytes"),
                "export_seconds": export_s,
                "total_seconds": total_s,
                "predictor": predictor.to_dict(),
                "subnets": rows,
            },
            script=__file__,
        )
    return 0


def load_kit_entries(kit: Path) -> list[KitEntry]:
    return [KitEntry.from_dict(e) for e in json.loads((kit / "kit.json").read_text())["entries"]]


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))
