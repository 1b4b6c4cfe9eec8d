"""`python export.py`: cut a trained subnet out as a small dense model (HF folder + ONNX), parity-checked."""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from supernet.cli import output_target
from supernet.config import DEFAULT_OPSET, TrainConfig, load_config
from supernet.convert import supernet_state
from supernet.data import make_dataloader, window_stride
from supernet.export import ExportReport, export_subnet, load_exported, onnx_opsets, score
from supernet.io import (
    RunDir,
    atomic_write_json,
    disk_error,
    disk_errors_named,
    one_timing_job,
    remove_stale_temporaries,
    unwritable,
    weights_digest,
)
from supernet.latency import (
    LatencyResult,
    LatencySetting,
    LatencyWarning,
    graph_change_of,
    load_warning,
    measure_interleaved,
    unavailable,
)
from supernet.parsers import export_parser
from supernet.profile_kit import run_digests, run_identity
from supernet.profile_kit_script import some_names, too_many_threads, usable_cores
from supernet.progress import progress_bar
from supernet.search import read_results
from supernet.search_cli import SEARCH_RECORD, default_seq_len
from supernet.subnet import SearchSpace, SubnetConfig, resolve_subnet
from supernet.tasks import TaskKind, model_inputs, task_kind_of_config
from supernet.trainer import (
    RunError,
    eval_dataloader,
    load_supernet,
    recorded_paths,
    require_weights,
    tokenized_split,
    trained_run,
)

__all__ = ["build_parser", "resolve_subnet_name", "run"]


build_parser = export_parser  # export.py's options (supernet.parsers)


def resolve_subnet_name(
    run: RunDir, name: str, search: Path | None = None, space: SearchSpace | None = None
) -> SubnetConfig:
    """The subnet `name` refers to in a run: 'best', a grid name, or a per-layer name from the search.

    Args:
        run: the run directory.
        name: 'best' (the search's choice), a grid name, or a per-layer name in the search's results.
        search: the search's folder (``search.py --out``); default the run's search/.
        space: the run's trained space: a grid name means its multipliers (w0.62 is 0.625 there).
    """
    folder = run.search if search is None else Path(search)
    if search is not None and not folder.is_dir():
        raise RunError(f"--search '{folder}' is not a folder: pass the --out folder of a search.py run")
    path = folder / "chosen.json"
    chosen = read_chosen(path) if (search is not None or name == "best") and path.is_file() else None
    if search is not None and chosen is not None:
        stamp = chosen.get("run")  # searches before 2026-11-30 carry none
        if stamp is not None and stamp.get("config_sha256") not in run_digests(run.root):
            raise RunError(
                f"--search '{folder}' is a search of run '{stamp.get('name')}', not of '{run.root}': pass the "
                f"folder of a search of this run (search.py --run {run.root} --out DIR)"
            )
    if name == "best":
        if chosen is None and not (run.supernet / "config.json").is_file():
            raise RunError(f"'{run.supernet}' holds no saved model (no config.json): has training finished?")
        if chosen is None:
            where = f"'{run.root}'" if search is None else f"'{folder}'"
            raise RunError(
                f"no subnet chosen yet in {where}: run search.py with a latency budget, or pass --subnet NAME"
            )
        searched = chosen.get("weights_sha256")  # older searches carry none
        if searched is not None and (run.supernet / "config.json").is_file():
            require_weights(run.supernet)  # else the digest of no files differs, and blames a retraining
        if searched is not None and run.supernet.is_dir() and searched != weights_digest(run.supernet):
            raise RunError(
                f"{path} was chosen by a search of other weights than '{run.supernet}' holds now (trained "
                f"again since): run search.py again to choose on these, or pass --subnet {chosen.get('name')}"
            )
        return SubnetConfig.from_dict(chosen["spec"])
    if name.startswith("w"):
        try:
            return SubnetConfig.from_name(name, space)
        except ValueError as err:
            raise RunError(str(err)) from err
    results = folder / "results.jsonl"
    known = {r.name: r.subnet for r in read_results(results)} if results.is_file() else {}
    if name not in known and path.is_file():
        # A search without a budget keeps the earlier choice in chosen.json while its results.jsonl
        # holds only what it measured: the chosen per-layer subnet is still known by its name.
        earlier = read_chosen(path)
        if earlier.get("name") == name:
            return SubnetConfig.from_dict(earlier["spec"])
    if name not in known:
        raise RunError(
            f"subnet '{name}' is not a grid name (w0.50-d0.75) and not in {results}; run search.py first"
            + ("" if search is not None else ", or pass --search DIR for a search written with --out DIR")
        )
    return known[name]


# What an export folder holds beside the files parity.json names: its summary, its int8 graph and
# the tokenizer's files (each family's fast or slow tokenizer saves some of these, by these names).
_EXPORT_EXTRAS = frozenset(
    {
        "summary.json",
        "model.int8.onnx",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
        "spm.model",
        "chat_template.jinja",
        "chat_template.json",
    }
)


def _not_an_export(out: Path) -> tuple[str | None, list[str]]:
    """Why the non-empty folder `out` is not an earlier export (None where it is one), and what it
    holds beside an export's own files (folders marked with a /), which --overwrite would delete."""
    try:
        parity = json.loads((out / "parity.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "no parity.json", []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "its parity.json cannot be read", []
    paths = parity.get("paths") if isinstance(parity, dict) else None
    if not isinstance(paths, dict) or "subnet" not in parity or "param_count" not in parity:
        return "its parity.json is not one export.py wrote", []
    files = parity.get("files")
    if isinstance(files, list):  # every file it wrote (since 2026-12-02): a user's model.int8.onnx is not
        ours = {str(f) for f in files} | {"summary.json"}
    else:  # an older export: the files it names and those an export may write beside them
        ours = {str(p) for p in paths.values()} | _EXPORT_EXTRAS
    others = sorted(
        p.name + ("/" if p.is_dir() else "") for p in out.iterdir() if p.is_dir() or p.name not in ours
    )
    return None, others


def _replaces_export(out: Path, overwrite: bool, *, given: bool = True) -> bool:
    """Whether the export replaces an earlier one at `out`; refuses anything that is not one.

    Only a folder that export.py wrote, holding nothing else, is replaced (with --overwrite): a
    user's files in it, or a parity.json of their own, would be deleted with it.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"'{out}' is a file: pass a folder to --out")
    # The export is written beside `out` first (then renamed): that folder must be writable.
    problem = unwritable(out.parent, named=True)  # the message names `out`, not its folder
    if problem is not None:
        if not given:
            raise RunError(
                f"the run's export folder '{out}' cannot be written: {problem}; pass --out DIR elsewhere"
            )
        raise RunError(f"--out '{out}' cannot be written: {problem}; pass another folder")
    if not out.exists() or not any(out.iterdir()):
        return False
    reason, others = _not_an_export(out)
    if reason is not None:
        raise FileExistsError(
            f"'{out}' already exists and is not an earlier export ({reason}): pass a new --out "
            "(export only ever replaces an earlier export)"
        )
    if others:  # an export, with files of the user's added: said as such, not "not an export"
        shown = some_names(others)
        them = "it" if len(others) == 1 else "them"
        raise FileExistsError(
            f"'{out}' holds an earlier export and {shown}, which export.py did not write and replacing the "
            f"folder would delete: move {them} out to replace the export, or pass a new --out"
        )
    if not overwrite:
        raise FileExistsError(
            f"'{out}' holds an earlier export: pass --overwrite to replace it, or a new --out"
        )
    problem = unwritable(out)  # an immutable or read-only folder: its swap failed after the work
    if problem is not None:
        raise RunError(
            f"'{out}' holds an earlier export that cannot be replaced ({problem}): pass a new --out"
        )
    return True


def read_chosen(path: Path) -> dict[str, Any]:
    """search.py's `chosen.json`, or a one-line error when it cannot be read."""
    try:
        chosen = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(
            f"'{path}' cannot be read ({err}): run search.py again, or pass --subnet NAME"
        ) from err
    if not isinstance(chosen, dict) or not isinstance(chosen.get("spec"), dict):
        raise RunError(
            f"'{path}' is not a choice search.py wrote (no 'spec'): run search.py again, or pass --subnet NAME"
        )
    try:
        SubnetConfig.from_dict(chosen["spec"])
    except (TypeError, ValueError) as err:
        raise RunError(
            f"'{path}' holds a subnet spec that is not valid ({str(err).splitlines()[0]}): run search.py again, "
            "or pass --subnet NAME"
        ) from None
    return chosen


SEARCH_GAP_BOUND = 0.05
"""How far an export's latency may sit from search's figure for the same graph and setting before
export.py says so (README: within 5%)."""


def _searched(chosen: dict[str, Any] | None, folder: Path, cfg: SubnetConfig) -> dict[str, Any] | None:
    """The search's record of `cfg`'s latency: chosen.json where it chose `cfg`, else its row in the
    search's results.jsonl with search.json's setting (a per-layer subnet exported by name after
    comparing it with the choice), or None."""
    if chosen is not None and chosen.get("spec") == cfg.to_dict():
        return chosen
    try:
        record = json.loads((folder / SEARCH_RECORD).read_text(encoding="utf-8"))
        rows = (
            json.loads(line) for line in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
        )
        row = next((r for r in rows if isinstance(r, dict) and r.get("spec") == cfg.to_dict()), None)
    except (OSError, UnicodeDecodeError, ValueError):  # no such search, or files of another kind
        return None
    if not isinstance(record, dict) or "setting" not in record or row is None:
        return None
    return {**record, "latency_ms": row.get("latency_ms")}


def _search_comparison(
    searched: dict[str, Any] | None,
    setting: LatencySetting,
    results: dict[str, LatencyResult],
) -> dict[str, Any] | None:
    """search.py's latency of this subnet (`_searched`) next to the one measured here."""
    figure = None if searched is None else searched.get("latency_ms")
    if isinstance(figure, bool) or not isinstance(figure, (int, float)) or not 0 < figure < math.inf:
        return None  # none, or an edited record (0 divided the ratio after the export)
    try:
        searched_setting = LatencySetting.from_dict(searched["setting"])
    except (KeyError, TypeError, ValueError):  # a record of another version, or edited
        return None
    if searched.get("latency_table") or searched_setting.key != setting.key:
        # search's figure is for another device or setting (or predicted from a table): no comparison
        return None
    if graph_change_of(searched, setting) is not None:
        return None  # search timed graphs export.py no longer writes (a search of an older version)
    name = "torch" if setting.backend == "torch" else ("onnxruntime_int8" if setting.int8 else "onnxruntime")
    if name not in results:
        return None
    search_ms, measured = float(searched["latency_ms"]), results[name].median_ms
    return {"artefact": name, "search_ms": search_ms, "export_ms": measured, "ratio": measured / search_ms}


def _device_prediction(chosen: dict[str, Any] | None, cfg: SubnetConfig) -> dict[str, Any] | None:
    """What a search with a device's latency table predicted for this subnet on that device."""
    if chosen is None or chosen.get("spec") != cfg.to_dict() or not chosen.get("latency_table"):
        return None
    table = chosen["latency_table"]
    return {
        "latency_ms": float(chosen["latency_ms"]),
        "device": table.get("device"),
        "latency_table": table.get("path"),
        "setting": chosen["setting"],
    }


def write_kit(args: argparse.Namespace) -> int:
    """`export.py --profile-kit OUT`: the device profile kit of a run (see supernet.profile_kit)."""
    from supernet.profile_kit import write_profile_kit

    run_dir = RunDir(Path(args.run))
    train_cfg = recorded_paths(load_config(TrainConfig, run_dir.config), run_dir)
    space = SearchSpace(width_mults=train_cfg.width_mults, depth_mults=train_cfg.depth_mults)
    out = output_target(Path(args.profile_kit), "--profile-kit")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"'{out}' already exists and is not an empty folder: pass a new --profile-kit")
    # The kit is written beside `out` first (then renamed): found now, not as the temporary folder's
    # error after minutes of exports.
    problem = unwritable(out.parent, named=True)
    if problem is not None:
        raise RunError(f"--profile-kit '{out}' cannot be written: {problem}; pass another folder")
    model = load_supernet(run_dir.supernet)
    kind = "int8 " if args.int8 else ""
    print(f"writing the {kind}profile kit of {run_dir.root} to {out} ...")
    with warnings.catch_warnings():
        # The ONNX exporter's notes (opset conversion, optional packages) would bury the progress lines.
        warnings.simplefilter("ignore", UserWarning)
        write_profile_kit(
            model,
            out,
            run=run_identity(run_dir.root),
            space=space,
            tokenizer=AutoTokenizer.from_pretrained(run_dir.supernet),
            opset=args.opset,
            int8=args.int8,
            log=lambda s: print(f"  {s}"),
        )
    print(f"wrote {out}: copy it to the device and run there (needs only numpy and onnxruntime):")
    print(f"  python {out.name}/profile.py --threads N --batch-size 1 --seq-len 128")
    print(
        f"then here, with the table copied back: python search.py --run {args.run} "
        f"--latency-table {out / 'latency-table.json'}{' --int8' if args.int8 else ''} --latency-budget-ms MS"
    )
    return 0


def _time_export(out: Path, setting: LatencySetting, args: argparse.Namespace) -> dict[str, LatencyResult]:
    """Latency of the export at `out`: its torch folder and, where written, its ONNX graphs."""
    # In the type search timed (float32 unless search.py --dtype): the files stay float32.
    dense = load_exported(out).eval().to(device=setting.device, dtype=setting.torch_dtype)
    # torch and onnxruntime interleaved in rounds, so a drift of the machine's speed between them
    # (several % within seconds on a shared VM) cannot pass for a difference of runtime.
    artefacts: dict[str, Any] = {"torch": dense}
    onnx_reason = unavailable(setting, onnx=True) if args.onnx else None
    if onnx_reason is not None:
        print(f"note: {onnx_reason}: the ONNX files are not timed on {setting.device}")
    elif args.onnx:
        artefacts["onnxruntime"] = out / "model.onnx"
        if args.int8:
            artefacts["onnxruntime_int8"] = out / "model.int8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LatencyWarning)  # one line below for all three
        return measure_interleaved(artefacts, setting, progress=not args.no_progress)


def _threads_here(setting: LatencySetting) -> tuple[LatencySetting, str | None]:
    """`setting` with at most this machine's usable cores as threads, and a note when it had more:
    search's setting may come from a bigger machine or a device's latency table, and threads beyond
    the cores only wait for each other (`too_many_threads`)."""
    cores = usable_cores()
    if setting.num_threads is None or setting.num_threads <= cores:
        return setting, None
    note = (
        f"note: search timed with --threads {setting.num_threads}, more than the {cores} cores here: "
        f"latency timed with --threads {cores}"
    )
    return dataclasses.replace(setting, num_threads=cores), note


def _commit_and_time(
    out: Path,
    target: Path,
    bars: list[Any],
    caught: list[warnings.WarningMessage],
    cfg: SubnetConfig,
    run_dir: RunDir,
    args: argparse.Namespace,
) -> tuple[dict[str, LatencyResult], LatencySetting, dict[str, Any] | None, dict[str, Any] | None]:
    """Put the finished export (`target`) at `out` and time it in the setting search chose (the
    figures, that setting, search's chosen.json when there is one, and its record of this subnet's
    latency: `_searched`)."""
    for bar in bars:  # scoring is done: ended before the swap, which an interrupt may cut short
        bar.close()
    if target != out:
        # The new export is complete: swap it in, then drop the old one (moved into a fresh folder
        # of its own, so no folder of the user's is touched).
        old: Path | None = None
        try:
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            try:
                out.rename(old / out.name)
            except OSError as err:  # made unmovable since the check: the earlier export stays, alone
                old.rmdir()
                shutil.rmtree(target, ignore_errors=True)
                raise RunError(
                    f"'{out}' holds an earlier export that cannot be replaced ({err.strerror or err}): pass a "
                    "new --out"
                ) from None
            target.rename(out)
        except KeyboardInterrupt:
            if target.exists():  # interrupted before the swap ended: it is finished all the same
                if out.exists():
                    old = old or Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                    out.rename(old / out.name)
                target.rename(out)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
    for w in caught:
        print(f"warning: {w.message}")

    # Latency of what was exported, on this machine (b1, s128 unless search chose otherwise, or the
    # model has fewer positions).
    setting = LatencySetting(num_threads=args.threads)
    chosen_file = (run_dir.search if args.search is None else args.search) / "chosen.json"
    chosen = None
    if chosen_file.is_file():
        try:
            chosen = read_chosen(chosen_file)
        except RunError:
            print(f"note: '{chosen_file}' cannot be read: latency measured in the default setting (batch 1)")
    # search timed this subnet (chose it, or has it in results.jsonl): compared, or said why not
    searched = _searched(chosen, chosen_file.parent, cfg)
    if chosen is None:
        setting = dataclasses.replace(setting, seq_len=default_seq_len(run_dir.root, print, option=None))
    else:
        setting = LatencySetting.from_dict(chosen["setting"])
        if args.threads is not None and args.threads != setting.num_threads:
            if searched is not None:
                theirs = (
                    "the default threads"
                    if setting.num_threads is None
                    else f"--threads {setting.num_threads}"
                )
                print(
                    f"note: latency timed with --threads {args.threads}, search's with {theirs}: "
                    "its figure is not compared"
                )
            setting = dataclasses.replace(setting, num_threads=args.threads)
        if setting.int8 and not args.int8:
            if chosen.get("spec") == cfg.to_dict():
                print(
                    f"note: search chose {cfg.name} by its int8 graph's latency and dev score: pass --int8 to "
                    "write model.int8.onnx, the model it chose"
                )
            # No int8 file is written, so none is timed: the figures are FP32, and say so.
            setting = dataclasses.replace(setting, int8=False)
        if setting.backend == "onnxruntime" and not args.onnx and searched is not None:
            # Only torch is timed: a torch figure set beside search's onnxruntime one said nothing.
            print(
                f"note: search timed {cfg.name}'s ONNX graph; --no-onnx writes no model.onnx, so only torch is "
                "timed here, and search's figure is not compared"
            )
        elif (
            setting.backend == "onnxruntime"
            and args.opset != DEFAULT_OPSET
            and searched is not None
            and not searched.get("latency_table")  # a device's prediction: never compared
        ):
            # Another opset is another graph (converted, or the dynamo exporter's, fused less): a gap
            # to search's figure was put down to the machine.
            print(
                f"note: search timed {cfg.name}'s graph written at opset {DEFAULT_OPSET}; --opset {args.opset} "
                "writes another, so search's figure is not compared"
            )
            searched = None
    setting, note = _threads_here(setting)
    if note is not None:
        print(note)
    reason = unavailable(setting, onnx=False)
    if reason is not None:
        # Search ran on a GPU machine, the export runs elsewhere: the files are the same, only the
        # figure has to come from a device this machine has.
        # In float32: a bfloat16 or float16 figure is a GPU's, and CPUs without such kernels crawl.
        kind_of = "" if setting.dtype == "float32" else f" in float32 (search timed {setting.dtype})"
        print(
            f"note: search measured on {setting.device}, but {reason}: latency measured on cpu here{kind_of}"
        )
        setting = dataclasses.replace(setting, device="cpu", dtype="float32")
    return _time_export(out, setting, args), setting, chosen, searched


def _tokenization(train_cfg: TrainConfig, kind: TaskKind) -> dict[str, int]:
    """The run's max_length (and, for question answering, the stride between context windows)."""
    data = train_cfg.data
    out = {"max_length": data.max_length}
    if kind.name == "question-answering":
        out["doc_stride"] = window_stride(data.max_length, data.doc_stride)
    return out


def _kit_takes_none_of(args: argparse.Namespace) -> None:
    """Refuse the export's own options beside --profile-kit: the kit took none of them, silently (no
    --out folder was written, --no-onnx still wrote ONNX files)."""
    given = [
        flag
        for flag, value in (
            ("--subnet", args.subnet),
            ("--out", args.out),
            ("--search", args.search),
            ("--no-onnx", not args.onnx or None),
            ("--overwrite", args.overwrite or None),
            ("--threads", args.threads),
        )
        if value is not None
    ]
    if given:
        hints = {
            "--threads": "the device's profile.py takes --threads",
            "--overwrite": "a kit is never replaced: pass a new folder",
        }
        why = "; ".join(hints[flag] for flag in given if flag in hints)
        raise RunError(
            f"--profile-kit writes a device profile kit, not an export, and takes none of {', '.join(given)}: "
            f"drop {'it' if len(given) == 1 else 'them'}{f' ({why})' if why else ''}"
        )


def run(args: argparse.Namespace) -> int:
    if args.profile_kit is not None:
        _kit_takes_none_of(args)
    if args.subnet is None:
        args.subnet = "best"
    if args.threads is not None and args.threads < 1:
        # Checked before the export, not after it when the latency is measured.
        raise RunError(f"--threads must be >= 1, got {args.threads}")
    if why := too_many_threads(args.threads):  # the ONNX files, at least, are timed on this CPU
        raise RunError(why)
    if args.int8 and not args.onnx:
        raise RunError("--int8 quantizes model.onnx: drop --no-onnx")
    low, high = onnx_opsets()
    if args.onnx and not low <= args.opset <= high:
        raise RunError(
            f"--opset must be between {low} and {high} (what this torch exports), got {args.opset}"
        )
    run_dir = trained_run(args.run)
    if args.profile_kit is not None:
        with disk_errors_named(args.profile_kit):
            return write_kit(args)
    if args.out:  # checked before waiting for another job (and again after)
        _replaces_export(output_target(Path(args.out), "--out"), args.overwrite)
    else:  # the run's export folder for the subnet (again once held: a search may choose anew meanwhile)
        _replaces_export(_default_out(args, run_dir), args.overwrite, given=False)
    # and another run's export into the same --out, meanwhile
    with one_timing_job(run_dir.root, print, out=Path(args.out) if args.out else None):
        return _export(args, run_dir)


def _run_and_subnet(
    args: argparse.Namespace, run_dir: RunDir
) -> tuple[TrainConfig, SearchSpace, SubnetConfig]:
    """The run's training config (its paths as recorded: `recorded_paths`, which may say a note), its
    space, and the subnet `args` names (--subnet, or the search's choice)."""
    train_cfg = recorded_paths(load_config(TrainConfig, run_dir.config), run_dir)
    return (train_cfg, *_space_and_subnet(args, run_dir, train_cfg))


def _default_out(args: argparse.Namespace, run_dir: RunDir) -> Path:
    """The run's export folder for the subnet `args` names (the run's data paths are not needed:
    `recorded_paths` is not asked, and its notes are said once, by the export itself)."""
    return run_dir.export / _space_and_subnet(args, run_dir, load_config(TrainConfig, run_dir.config))[1].name


def _space_and_subnet(
    args: argparse.Namespace, run_dir: RunDir, train_cfg: TrainConfig
) -> tuple[SearchSpace, SubnetConfig]:
    """The run's space and the subnet `args` names."""
    space = SearchSpace(width_mults=train_cfg.width_mults, depth_mults=train_cfg.depth_mults)
    return space, resolve_subnet_name(run_dir, args.subnet, args.search, space)


def _export(args: argparse.Namespace, run_dir: RunDir) -> int:
    """`run` past its option checks, the run held (`one_timing_job`: a search choosing again, or
    another export timing, meanwhile): cut, check, write and time the subnet."""
    train_cfg, space, cfg = _run_and_subnet(args, run_dir)
    out = output_target(Path(args.out), "--out") if args.out else run_dir.export / cfg.name
    replacing = _replaces_export(
        out, args.overwrite, given=bool(args.out)
    )  # refused before minutes of loading and scoring
    # Where the folder comes from, in summary.json as in a search's chosen.json: the run and its weights.
    source = {"run": run_identity(run_dir.root), "weights_sha256": weights_digest(run_dir.supernet)}
    model = load_supernet(run_dir.supernet)
    try:
        resolve_subnet(supernet_state(model).arch, cfg)
    except ValueError as err:
        raise RunError(f"--subnet {args.subnet}: {err}") from err
    tokenizer = AutoTokenizer.from_pretrained(run_dir.supernet)

    # The export is scored by the task's main metric (accuracy, Pearson, ...), as search ranked it.
    kind = task_kind_of_config(model.config)
    dev = tokenized_split(train_cfg, tokenizer, model_config=model.config, run=run_dir, strict=False)
    # Batched as training evaluated the grid, so the export's dev score is the one search ranked it by.
    loader = eval_dataloader(train_cfg, dev, tokenizer, kind)
    parity_batch = model_inputs(
        next(iter(make_dataloader(dev, tokenizer, 16, shuffle=False, collate_fn=kind.collator(tokenizer))))
    )

    # export_subnet scores each artefact in this order, after writing them; one bar over all of them.
    scored = ["supernet", "torch"] + (["onnx"] if args.onnx else []) + (["int8"] if args.int8 else [])
    bars: list[Any] = []  # started at the first score, not while the files are written

    def dev_eval(predict: Any) -> float:
        if not bars:
            total = len(scored) * len(loader)
            bars.append(progress_bar(total=total, desc="score dev", unit="batch", disable=args.no_progress))
        bar = bars[0]
        bar.set_postfix_str(scored[min(bar.n // len(loader), len(scored) - 1)], refresh=False)
        return score(predict, loader, model.config, on_batch=bar.update)[kind.main_metric]

    # Built beside an earlier export under a fresh name (a fixed one, OUT.new, could be a folder of
    # the user's), and swapped in when complete.
    # A killed --overwrite leaves its new export half-written beside the earlier one, or the earlier
    # one moved aside; a killed first export its .OUT.tmp-PID, which export_subnet sweeps only for
    # its own target (.OUT.new-* under --overwrite): all removed once nobody writes them.
    name = glob.escape(out.name)
    for stale in remove_stale_temporaries(
        out.parent, [f".{name}.tmp-*", f".{name}.new-*", f"..{name}.new-*.tmp-*", f".{name}.old-*"]
    ):
        print(f"warning: removed {stale}, left by an export that was killed")
    target = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent)) if replacing else out
    written = "dense model" + (", ONNX" if args.onnx else "") + (", int8 ONNX" if args.int8 else "")
    print(f"exporting {cfg.name} ({written}) ...", flush=True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            report = export_subnet(
                model,
                cfg,
                target,
                tokenizer=tokenizer,
                onnx=args.onnx,
                int8=args.int8,
                opset=args.opset,
                parity_batch=parity_batch,
                dev_eval=dev_eval,
                space=space,
                # A minute of silence at BERT-base size before the first bar: each step said.
                on_step=lambda step: print(f"  {step} ...", flush=True),
            )
    except BaseException as err:
        for bar in bars:  # ended on its own line, before the message of what stopped it
            bar.close()
        # Told apart before the unfinished folder goes (removing it frees space).
        disk = disk_error(err, out) if isinstance(err, Exception) else None
        if target != out:
            shutil.rmtree(target, ignore_errors=True)  # the earlier export stays as it was
        if disk is not None:
            raise disk from err
        raise
    try:
        # From here the folder is in place (the earlier export replaced): an interrupt is not
        # "nothing was exported".
        results, setting, chosen, searched = _commit_and_time(out, target, bars, caught, cfg, run_dir, args)
        summary = {
            "subnet": cfg.name,
            "spec": cfg.to_dict(),
            **source,
            "setting": setting.to_dict(),
            "latency_ms": {
                "torch": results["torch"].median_ms,
                "onnxruntime": results["onnxruntime"].median_ms if "onnxruntime" in results else None,
                **(
                    {"onnxruntime_int8": results["onnxruntime_int8"].median_ms}
                    if "onnxruntime_int8" in results
                    else {}
                ),
            },
            "latency": {name: r.to_dict() for name, r in results.items()},
            "latency_flags": {name: list(r.flags) for name, r in results.items() if r.flags},
            "search_latency": _search_comparison(searched, setting, results),
            "device_prediction": _device_prediction(chosen, cfg),
            "metric": kind.main_metric,
            # What the scores were taken at, and what an input should be cut to as in training:
            # the saved tokenizer truncates nothing by itself.
            "tokenization": _tokenization(train_cfg, kind),
            "accuracy": report.accuracy,
            "parity_ok": report.parity_ok,
            "params": report.param_count,
        }
        atomic_write_json(out / "summary.json", summary)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"interrupted: {out} is exported and parity-checked (parity.json) but has no summary.json (its "
            "latency); export.py --overwrite exports and times it again"
        ) from None
    try:
        _say_summary(out, cfg, kind, report, results, setting, summary)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"interrupted: {out} is exported, parity-checked and timed (summary.json holds its figures)"
        ) from None
    return 0


def _say_summary(
    out: Path,
    cfg: SubnetConfig,
    kind: TaskKind,
    report: ExportReport,
    results: dict[str, LatencyResult],
    setting: LatencySetting,
    summary: dict[str, Any],
) -> None:
    """The lines export.py prints for what it wrote (summary.json holds the same figures)."""
    torch_ms = results["torch"].median_ms
    onnx_ms = results["onnxruntime"].median_ms if "onnxruntime" in results else None
    acc = (report.accuracy or {}).get("torch")
    print(f"exported {cfg.name} to {out}")
    print(
        f"  parity: torch vs supernet {report.max_abs_diff_torch_vs_supernet:.2e}"
        + (
            f", onnx vs torch {report.max_abs_diff_onnx_vs_torch:.2e}"
            if report.max_abs_diff_onnx_vs_torch is not None
            else ""
        )
    )
    # accuracy as a percentage after each figure; another metric scaled once in its label
    unit, label = (
        ("%", kind.main_metric) if kind.main_metric == "accuracy" else ("", f"{kind.main_metric} (x100)")
    )
    int8_acc = (report.accuracy or {}).get("int8")
    print(
        (
            f"  dev {label}: {100 * acc:.2f}{unit}"
            # search ranked the subnet by the FP32 figure, or with --int8 by the int8 model's
            + (f", model.int8.onnx {100 * int8_acc:.2f}{unit}" if int8_acc is not None else "")
        )
        if acc is not None
        else f"  dev {kind.main_metric}: n/a"
    )
    # The setting's key would name one backend (`cpu-onnxruntime-int8-...` after an int8 search)
    # before three figures: the conditions they share, and each figure's backend (and type).
    torch_type = "" if setting.dtype == "float32" else f" ({setting.dtype})"
    print(
        f"  latency ({setting.conditions}): torch{torch_type} {torch_ms:.2f} ms"
        # The ONNX graph is float32 whatever type torch was timed in.
        + (f", onnxruntime {onnx_ms:.2f} ms" if onnx_ms else "")
        + (" (float32 graph)" if onnx_ms and setting.dtype != "float32" else "")
        + (f", int8 {results['onnxruntime_int8'].median_ms:.2f} ms" if "onnxruntime_int8" in results else "")
    )
    compared = summary["search_latency"]
    if compared is not None:  # README's promise: within 5% of what search reported for it
        change = compared["ratio"] - 1
        beyond = abs(change) > SEARCH_GAP_BOUND
        # Two decimals where one would round onto the bound ("+5.0% here (more than 5% apart)").
        digits = 2 if beyond and round(abs(change), 3) <= SEARCH_GAP_BOUND else 1
        what = {"torch": "torch", "onnxruntime": "model.onnx", "onnxruntime_int8": "model.int8.onnx"}
        print(
            f"  search timed {what[compared['artefact']]} at {compared['search_ms']:.2f} ms: "
            f"{change:+.{digits}%} here" + (f" (more than {SEARCH_GAP_BOUND:.0%} apart)" if beyond else "")
        )
    predicted = summary["device_prediction"]
    if predicted is not None:
        cpu = (predicted["device"] or {}).get("cpu", "the device")
        of_int8 = " for model.int8.onnx" if predicted["setting"].get("int8") else ""
        print(
            f"  on the profiled device ({cpu}): {predicted['latency_ms']:.2f} ms predicted{of_int8} by search "
            f"from its latency table; the latency above is this machine's"
        )
    print(f"  params: {report.param_count / 1e6:.2f} M")
    # Named as on the latency line above ("int8", not summary.json's key "onnxruntime_int8").
    line = load_warning({"int8" if name == "onnxruntime_int8" else name: r for name, r in results.items()})
    if line is not None:  # after the indented summary, not inside it
        print(f"warning: {line}")
    if compared is not None and abs(compared["ratio"] - 1) > SEARCH_GAP_BOUND:
        print(
            f"warning: {compared['export_ms']:.2f} ms here against search's {compared['search_ms']:.2f} ms for "
            "the same graph and setting: the machine's load or speed changed between the two, or this is "
            "another machine; time both again on an idle machine (search.py --remeasure, then export.py "
            "--overwrite)"
        )
