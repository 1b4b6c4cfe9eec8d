"""`python search.py`: accuracy and latency of every trained subnet, Pareto front, budgeted choice.

The run directory supplies the trained supernet, its config (for the dev
split) and the grid's dev accuracies (`eval.jsonl`, written by training);
latency is measured on this machine for the requested setting and cached in
`latency/`. With `--per-layer`, an evolutionary search over per-layer subnets
keeps candidates under the budget with the lookup-table predictor and ranks
them by their accuracy on a fixed dev subset (`--accuracy-subset`); the best
are then scored on the whole dev split and verified by measurement.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import random
import shlex
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from supernet.cli import output_target
from supernet.config import (
    ConfigError,
    SearchConfig,
    TrainConfig,
    load_config,
)
from supernet.convert import supernet_state
from supernet.cost import count_flops, count_params
from supernet.data import DataError, eval_subset, positions_problem
from supernet.export import export_graph as export_for_measurement
from supernet.export import graph_revisions, onnx_predict, score
from supernet.io import (
    DISK_ERRNOS,
    RunDir,
    atomic_write_json,
    json_bytes,
    one_timing_job,
    unwritable,
    weights_digest,
)
from supernet.latency import (
    LatencyCache,
    LatencyPredictor,
    LatencyResult,
    LatencySetting,
    LatencyWarning,
    graph_change_of,
    graph_stamp,
    load_warning,
    measure_onnx_files,
    measure_subnets,
    stale_reason,
    unavailable,
)
from supernet.parsers import SEARCH_DEFAULTS, search_parser
from supernet.profile_kit import run_digests, run_identity
from supernet.profile_kit_script import (
    LOAD_BOUND_CORES,
    cores_text,
    cpu_seconds,
    other_cpu_cores,
    too_many_threads,
)
from supernet.progress import progress_bar
from supernet.recipes import SingleStage
from supernet.search import (
    BudgetError,
    ShortSearchWarning,
    SubnetResult,
    budget_that_takes,
    evaluate_grid,
    evolutionary_search,
    format_table,
    left_out_by_rounding,
    ms_text,
    read_results,
    select_under_budget,
    wilson_interval,
    write_results,
)
from supernet.subnet import MAX_NET, SearchSpace, SubnetConfig
from supernet.tasks import batch_to, task_kind_of_config
from supernet.trainer import (
    RunError,
    _held_by,
    eval_dataloader,
    evaluate_subnet,
    load_supernet,
    recorded_paths,
    saved_model_config,
    split_change,
    task_from_config,
    tokenized_split,
    trained_run,
)

__all__ = ["SearchRun", "build_parser", "export_for_measurement", "per_layer_search", "run"]

build_parser = search_parser  # search.py's options (supernet.parsers)


class SearchRun:
    """The objects a search measures with, built from a run directory.

    Args:
        run_dir: a run directory written by train.py.
        setting: where and how latency is measured.
        progress: show progress bars.
        accuracy_subset: dev examples `estimate` ranks candidates on (None = the whole dev split).
        subset_seed: seed of that subset's draw.
        log: where progress lines and warnings are printed.
        remeasure: time every subnet (and the predictor's probes) again instead of reading the
            run's latency cache; the new figures replace the cached ones.
    """

    def __init__(
        self,
        run_dir: Path,
        setting: LatencySetting,
        *,
        progress: bool = True,
        accuracy_subset: int | None = None,
        subset_seed: int = 0,
        log: Callable[[str], None] = print,
        remeasure: bool = False,
    ) -> None:
        self.run = trained_run(run_dir)
        self.remeasure = remeasure
        self._remeasured: set[str] = set()
        reason = unavailable(setting)
        if reason is not None:
            raise RunError(
                f"cannot measure latency on {setting.device}: {reason}; search on the machine you target "
                "(or --device cpu)"
            )
        self.setting = setting
        self.progress = progress
        self.log = log
        self.train_cfg = recorded_paths(load_config(TrainConfig, self.run.config), self.run)
        self.space = SearchSpace(
            width_mults=self.train_cfg.width_mults, depth_mults=self.train_cfg.depth_mults
        )
        self.model = load_supernet(self.run.supernet).to(setting.device)
        self._timed_copy: torch.nn.Module | None = None
        problem = positions_problem(self.model.config, setting.seq_len, "seq_len")
        if problem is not None:
            raise RunError(f"--seq-len: {problem}; pass a shorter --seq-len")
        self.arch = supernet_state(self.model).arch
        # Search ranks by the task's main metric (accuracy, Pearson, ...), read from the model's head.
        self.metric = task_kind_of_config(self.model.config).main_metric
        self.tokenizer = AutoTokenizer.from_pretrained(self.run.supernet)
        # What the search/ score caches and chosen.json are tied to: scores of other weights (the run
        # trained again from its first step, a supernet copied in) are taken again, not reused.
        self.weights = weights_digest(self.run.supernet)
        self._said_other_weights = False
        self._said_stale_predictor = False
        self._said_other_counts = False  # the latency cache's note on figures of other counts: once
        self._said_unsaved = False
        self._dev_loader: Any = None
        self._accuracy = self._load_accuracy_cache()
        self.accuracy_subset, self.subset_seed = accuracy_subset, subset_seed
        self._subset_loader: Any = None
        self._subset_built = False
        self._estimates: dict[str, float] | None = None
        self._int8_scores: dict[str, float] | None = None
        self._said_int8 = False
        self._graphs: dict[str, Path] = {}
        self._graph_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def precision(self) -> str:
        """What `evaluate` scores: "int8" (each subnet's int8 graph) with --int8, else "fp32"."""
        return "int8" if self.setting.int8 else "fp32"

    def graph(self, cfg: SubnetConfig) -> Path:
        """The ONNX graph `export.py` writes for `cfg` in this setting (model.int8.onnx with --int8),
        exported once per search and kept until the search ends."""
        if cfg.name not in self._graphs:
            if self._graph_dir is None:
                self._graph_dir = tempfile.TemporaryDirectory(prefix="supernet-search-")
            folder = Path(self._graph_dir.name) / f"m{len(self._graphs)}"
            self._graphs[cfg.name] = self._graph_only(self.model, cfg, folder, int8=self.setting.int8)
        return self._graphs[cfg.name]

    def _graph_only(self, model: torch.nn.Module, cfg: SubnetConfig, folder: Path, *, int8: bool) -> Path:
        """`export_for_measurement` into `folder`, keeping only the timed graph as `folder`.onnx (its
        weights are inline): the dense model, tokenizer and other graph beside it go at once. Kept,
        the 12 exports of a BERT-base grid held ~5.9 GB of the temporary folder."""
        path = export_for_measurement(model, cfg, folder, tokenizer=self.tokenizer, int8=int8)
        graph = path.replace(folder.with_suffix(".onnx"))
        shutil.rmtree(folder)
        return graph

    # ---------------------------------------------------------------- accuracy

    @property
    def _accuracy_file(self) -> Path:
        return self.run.search / "accuracy.json"

    def _load_accuracy_cache(self) -> dict[str, float]:
        cache: dict[str, float] = {}
        unread: list[str] = []
        if self.run.eval.is_file():
            for i, line in enumerate(
                self.run.eval.read_text(encoding="utf-8", errors="replace").splitlines(), 1
            ):
                try:
                    row = json.loads(line)
                    score = float(row[self.metric])
                except (ValueError, TypeError, KeyError):
                    unread.append(f"{self.run.eval.name} line {i}")
                    continue
                # Rows record the weights they scored (runs before 2026-11-30's last session do not).
                if row.get("weights_sha256", self.weights) != self.weights:
                    self._say_other_weights(self.run.eval)
                else:
                    cache[row["subnet"]] = score
            if not cache and not unread and not self._said_other_weights:
                unread.append(f"{self.run.eval.name} (empty)")
        else:
            # The supernet is saved before the grid is scored (minutes on a benchmark preset), and
            # eval.jsonl written after: a run stopped in between has no scores, one still there none yet.
            holder = _held_by(self.run.root)
            if holder is not None:
                why, finish = f"{holder} is still training it (scoring the grid)", ""
            else:
                why = "its training stopped before scoring the grid"
                finish = (
                    "; rerun its train.py command with resume=true to finish the run (its test scores too)"
                )
            self.log(
                f"note: '{self.run.root}' has no {self.run.eval.name}: {why}, so the subnets are scored on dev "
                f"here{finish}"
            )
        saved = self._read_scores(self._accuracy_file, self._weights_form)
        if saved is None:
            unread.append(str(self._accuracy_file.relative_to(self.run.root)))
        else:
            cache.update(saved)
        if unread:
            # Only caches: what they would have told is scored on dev again.
            shown = ", ".join(unread[:3]) + (f" and {len(unread) - 3} more" if len(unread) > 3 else "")
            self.log(
                f"warning: cannot read {shown} in '{self.run.root}': those subnets are scored on dev again"
            )
        return cache

    def note_changed_dev(self) -> None:
        """A grid search takes its dev scores from training (eval.jsonl): when the task's file has
        changed since, they are of the split as it was, which is said before anything is measured;
        a subnet that still needs a score is refused when it is scored (`tokenized_split`)."""
        try:
            change = split_change(task_from_config(self.train_cfg, self.run), "dev", self.run)
        except (DataError, OSError):
            return  # the file is gone or unreadable: said if and when a score is needed
        if change is not None:
            self.log(f"note: {change}: the dev scores below are those training took on the split as it was")

    def dev_loader(self) -> Any:
        if self._dev_loader is None:
            self._dev_loader = self._loader(
                tokenized_split(self.train_cfg, self.tokenizer, model_config=self.model.config, run=self.run)
            )
        return self._dev_loader

    def _loader(self, split: Any) -> Any:
        """Evaluation batches of `split`, collated for the run's task kind."""
        return eval_dataloader(self.train_cfg, split, self.tokenizer, task_kind_of_config(self.model.config))

    def evaluate(self, cfg: SubnetConfig) -> float:
        """Dev main metric of `cfg` (cached in eval.jsonl / search/accuracy.json).

        With --int8, of `cfg`'s int8 graph (`graph`), the model `export.py --int8` ships, cached in
        search/accuracy-int8.json.
        """
        return self._evaluate_int8(cfg) if self.setting.int8 else self._evaluate_fp32(cfg)

    def _evaluate_fp32(self, cfg: SubnetConfig) -> float:
        if cfg.name not in self._accuracy:
            # The model already lives on the setting's device; batches follow it there.
            self._accuracy[cfg.name] = evaluate_subnet(self.model, cfg, self._on_device(self.dev_loader()))[
                self.metric
            ]
            # eval.jsonl's rows are saved too: training wrote them of these weights.
            self._write_scores(self._accuracy_file, self._weights_form, self._accuracy)
        return self._accuracy[cfg.name]

    @property
    def _weights_form(self) -> dict[str, Any]:
        """What an FP32 score depends on beside the subnet: the supernet's weights."""
        return {"weights_sha256": self.weights}

    def _read_scores(self, path: Path, form: dict[str, Any]) -> dict[str, float] | None:
        """Scores an earlier search saved in `path` (`_write_scores`) of the same `form`: {} where
        there are none or they are of another form (said once), None where `path` cannot be read."""
        if not path.is_file():
            return {}
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            scores = {str(k): float(v) for k, v in saved.get("scores", {}).items()}
        except (ValueError, TypeError, AttributeError):
            return None
        if saved.get("weights_sha256") != self.weights:
            # Of other weights, or written before the caches recorded them (a flat {name: score}):
            # said, and emptied, so that the next search does not say it again.
            self._say_other_weights(path)
            self._write_scores(path, form, {})
            return {}
        return scores if all(saved.get(k) == v for k, v in form.items()) else {}

    def _say_other_weights(self, path: Path) -> None:
        if not self._said_other_weights:
            self.log(
                f"note: {path.relative_to(self.run.root)} in '{self.run.root}' holds scores of other "
                f"weights than {self.run.supernet.name}/ has now (trained again, or saved before "
                "searches recorded them): its subnets are scored on dev again"
            )
            self._said_other_weights = True

    def _write_scores(self, path: Path, form: dict[str, Any], scores: dict[str, float]) -> None:
        self._keep(path, lambda: atomic_write_json(path, {**form, "scores": dict(sorted(scores.items()))}))

    def _keep(self, path: Path, write: Callable[[], None]) -> None:
        """Write one of the run's caches; where the run folder cannot take it (read-only, full), say
        so once and go on: the caches only spare later searches work (--out may be elsewhere)."""
        try:
            write()
        except OSError as err:
            if err.errno not in DISK_ERRNOS and not isinstance(err, PermissionError):
                raise
            if not self._said_unsaved:
                self.log(
                    f"note: '{path}' cannot be saved ({err.strerror}): this search goes on without the run's "
                    "caches, and a later one measures and scores again"
                )
                self._said_unsaved = True

    @property
    def _int8_file(self) -> Path:
        return self.run.search / "accuracy-int8.json"

    def _evaluate_int8(self, cfg: SubnetConfig) -> float:
        import onnxruntime

        if self._int8_scores is None:
            self._int8_scores = self._load_int8_cache(self._int8_form(onnxruntime.__version__))
        if not self._said_int8:  # said where the scores are read back too: the column is the int8 graph's
            earlier = len(self._int8_scores)
            self.log(
                f"dev {self.metric} is the int8 graph's (model.int8.onnx, as export.py --int8 writes it), "
                "scored with onnxruntime"
                + (
                    f"; earlier searches' scores of {earlier} subnet{'s' if earlier > 1 else ''} read from "
                    f"{self._int8_file.relative_to(self.run.root)}"
                    if earlier
                    else ""
                )
            )
            self._said_int8 = True
        if cfg.name not in self._int8_scores:
            scores = score(onnx_predict(self.graph(cfg)), self.dev_loader(), self.model.config)
            self._int8_scores[cfg.name] = scores[self.metric]
            self._write_scores(self._int8_file, self._int8_form(onnxruntime.__version__), self._int8_scores)
        return self._int8_scores[cfg.name]

    def _int8_form(self, version: str) -> dict[str, Any]:
        """What an int8 graph's score depends on beside the subnet: the weights, the export's graph
        form and the onnxruntime whose quantizer wrote it."""
        return {**self._weights_form, "onnxruntime": version, **graph_revisions(int8=True)}

    def _load_int8_cache(self, form: dict[str, Any]) -> dict[str, float]:
        """Scores of int8 graphs an earlier search took of the same graph `form`, or none."""
        scores = self._read_scores(self._int8_file, form)
        if scores is None:
            self.log(
                f"warning: cannot read {self._int8_file.relative_to(self.run.root)} in '{self.run.root}': "
                "those int8 graphs are scored on dev again"
            )
            return {}
        return scores

    @property
    def _estimate_file(self) -> Path:
        return self.run.search / f"accuracy-subset{self.accuracy_subset}-seed{self.subset_seed}.json"

    def _subset(self) -> Any | None:
        """Loader over the fixed dev subset, or None when the search uses the whole dev split."""
        if not self._subset_built:
            dev = tokenized_split(
                self.train_cfg, self.tokenizer, model_config=self.model.config, run=self.run
            )
            subset = eval_subset(dev, self.accuracy_subset, self.subset_seed)
            # Question answering draws whole questions: a subset of at least as many questions as
            # dev has is the whole split, though smaller than its count of context windows.
            if len(subset) < len(dev):
                self._subset_loader = self._loader(subset)
            self._subset_built = True
        return self._subset_loader

    def estimate(self, cfg: SubnetConfig) -> float:
        """Dev main metric of `cfg` on the fixed dev subset: the evolutionary search's fitness.

        Without a subset (``accuracy_subset`` None, or not smaller than the dev split) this is
        `evaluate`'s FP32 score. Always FP32 (with --int8 too). Cached in
        ``search/accuracy-subset<N>-seed<S>.json``.
        """
        loader = self._subset()
        if loader is None:
            # FP32 even with --int8: an int8 graph per candidate would cost an export each.
            return self._evaluate_fp32(cfg)
        if self._estimates is None:
            self._estimates = self._read_scores(self._estimate_file, self._weights_form)
            if self._estimates is None:
                self.log(
                    f"warning: cannot read {self._estimate_file.relative_to(self.run.root)} in "
                    f"'{self.run.root}': those subnets are scored on the dev subset again"
                )
                self._estimates = {}
        if cfg.name not in self._estimates:
            self._estimates[cfg.name] = evaluate_subnet(self.model, cfg, self._on_device(loader))[self.metric]
            self._write_scores(self._estimate_file, self._weights_form, self._estimates)
        return self._estimates[cfg.name]

    def _on_device(self, loader: Any) -> Any:
        device = torch.device(self.setting.device)
        for batch in loader:
            yield batch_to(batch, device)

    # ---------------------------------------------------------------- latency

    def _say_latency_warnings(self, caught: list[warnings.WarningMessage], prefix: str) -> None:
        """Log each caught LatencyWarning as one line starting with `prefix`; others warn as they came."""
        for w in caught:
            if issubclass(w.category, LatencyWarning):
                self.log(f"{prefix}{w.message}")
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

    def measure(
        self,
        cfgs: list[SubnetConfig],
        *,
        reference: Mapping[SubnetConfig, LatencyResult] | None = None,
    ) -> dict[str, LatencyResult]:
        """Measured latency of each subnet (cached per setting in latency/).

        Results measured under load or with a wide spread (`LatencyResult.flags`), fresh or cached,
        are named in one warning line; a cached one taken under load is timed again where the machine
        is quiet now. Where the subnets timed now will be compared with figures taken earlier
        (`reference`, by default those of `cfgs` read from the cache), one of those is timed again
        beside them: a machine whose speed changed since by more than `SPEED_CHANGE_BOUND` is said in
        one warning line.
        """
        cache = LatencyCache(self.run.root, self.setting)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LatencyWarning)
            earlier = {c: r for c in cfgs if c in cache and (r := cache.get(c)) is not None}
        # A cache damaged, or of another machine or graph revision: one line, not a Python warning.
        self._say_latency_warnings(caught, "warning: ")
        # Timed again, once in this search: every subnet with --remeasure, and a figure taken while
        # other processes took the cores (flagged "load": a second search starting up beside the
        # first left a 13 ms figure of a 5 ms subnet, which refused later budgets).
        loaded = [c for c, r in earlier.items() if "load" in r.flags and c.name not in self._remeasured]
        if loaded and not self.remeasure:
            busy = others_now()
            if busy is not None and busy > LOAD_BOUND_CORES:
                # Timed again now, they would be flagged again (and again at every search).
                self.log(
                    f"{len(loaded)} of the figures cached in {cache.path} were timed while other processes took "
                    f"the cores (flagged load), and they take {cores_text(busy)} cores now too: kept "
                    "(search.py --remeasure on an idle machine times them again)"
                )
                loaded = []
            else:
                self.log(
                    f"{len(loaded)} of the figures cached in {cache.path} were timed while other processes "
                    "took the cores (flagged load): timing them again"
                )
        todo = [
            c
            for c in cfgs
            if c not in earlier or (c.name not in self._remeasured and (self.remeasure or c in loaded))
        ]
        cached = {c: r for c, r in earlier.items() if c not in todo}
        self._remeasured.update(c.name for c in todo)
        fresh: dict[str, LatencyResult] = {}
        if reference is None:
            reference = cached
        if todo:
            check = _speed_check_subnet(reference, todo)
            again = (
                ""
                if check is None
                else f" (and {check.name} again, to compare this machine's speed with its earlier figure)"
            )
            self.log(f"measuring {len(todo)} of {len(cfgs)} subnets on {self.setting.key}{again} ...")
            other = cache.other_timing() if len(earlier) < len(cfgs) else None
            if other is not None and not self.remeasure and not self._said_other_counts:
                self._said_other_counts = (
                    True  # a cache that is there, yet not read, is a puzzle without this
                )
                self.log(
                    f"note: {cache.main} holds figures timed with {other[0]} warm-up and {other[1]} timed calls, "
                    f"not this search's {self.setting.warmup} and {self.setting.repeats}: they are kept, not "
                    f"reused (--warmup {other[0]} --repeats {other[1]} reuses them)"
                )
            # One line for the whole batch below, not one per measuring call.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", LatencyWarning)
                checked = [check] if check is not None else []
                results = self._measure_many(self._timed(), [*todo, *checked], self.setting, unkept=checked)
            if check is not None:
                self._say_speed_change(check, reference[check], results.pop(), len(todo))
            path = cache.path  # (reads the cache: once, not per subnet)
            for cfg, result in zip(todo, results, strict=True):
                fresh[cfg.name] = result
                self._keep(path, functools.partial(cache.put, cfg, result))
        # What was timed now is used as timed, saved or not (a read-only run folder).
        measured = {c.name: fresh[c.name] if c.name in fresh else cached[c] for c in cfgs}
        reused = len(cfgs) - len(todo)
        if reused:
            self.log(
                f"latency of {reused} of {len(cfgs)} subnets read from {cache.path} (timed earlier on this "
                "machine and setting; --remeasure times them again)"
            )
        line = load_warning(measured)
        if line is not None:
            timed = {c.name for c in todo}
            from_cache = any(measured[c.name].flags for c in cfgs if c.name not in timed)
            hint = (
                " (some were read from the run's cache: search.py --remeasure times them again)"
                if from_cache
                else ""
            )
            self.log(f"warning: {line}{hint}")
        return measured

    def _say_speed_change(
        self, cfg: SubnetConfig, before: LatencyResult, now: LatencyResult, timed: int
    ) -> None:
        """One warning line where `cfg`, timed again now, differs from its earlier figure by more than
        `SPEED_CHANGE_BOUND`: the subnets timed beside it and the earlier figures are not comparable.
        Where either figure is flagged (load or spread) no verdict, and the line says so: its own
        warning already says remeasure, and a median that moved within a wide spread may be noise."""
        change = now.median_ms / before.median_ms - 1
        if now.flags or before.flags:
            # Said too: the line that announced the comparison otherwise never told its outcome.
            flagged = [
                f"{when} ({', '.join(r.flags)})" for when, r in (("earlier", before), ("now", now)) if r.flags
            ]
            which = f"figure {flagged[0]} is" if len(flagged) == 1 else f"figures {' and '.join(flagged)} are"
            self.log(
                f"{cfg.name} again: {now.median_ms:.2f} ms against {before.median_ms:.2f} ms earlier "
                f"({change:+.0%}): no verdict on this machine's speed, as the {which} flagged; remeasure on an "
                "idle machine"
            )
            return
        if abs(change) <= SPEED_CHANGE_BOUND:
            # Said too: the line that announced the comparison otherwise never tells its outcome.
            self.log(
                f"{cfg.name} again: {now.median_ms:.2f} ms against {before.median_ms:.2f} ms earlier "
                f"({change:+.0%}; bound {SPEED_CHANGE_BOUND:.0%}): the figures compare"
            )
            return
        self.log(
            f"warning: {cfg.name} took {now.median_ms:.2f} ms now against {before.median_ms:.2f} ms earlier "
            f"({change:+.0%}; bound {SPEED_CHANGE_BOUND:.0%}): this machine's speed has changed, so the {timed} "
            f"subnet(s) timed now and the figures taken earlier do not compare; search.py --remeasure times "
            "them all again (on an idle machine)"
        )

    def _timed(self) -> torch.nn.Module:
        """The supernet as it is timed: itself, or a copy in --dtype (dev scores stay float32's)."""
        if self.setting.dtype == "float32":
            return self.model
        if self._timed_copy is None:
            self._timed_copy = copy.deepcopy(self.model).to(self.setting.torch_dtype)
        return self._timed_copy

    def _measure_many(
        self,
        model: torch.nn.Module,
        cfgs: Sequence[SubnetConfig],
        setting: LatencySetting,
        *,
        keep: bool = True,
        unkept: Sequence[SubnetConfig] = (),
    ) -> list[LatencyResult]:
        """The `MeasureFn` of this backend: torch subnets, or their exported graphs, interleaved.

        With --int8 the graphs are kept (`graph`) for `evaluate` to score, unless not `keep` (the
        predictor's probes, never scored) or listed in `unkept` (a subnet timed again only to check
        the machine's speed). A graph kept already is timed as it is.
        """
        if setting.backend == "torch":
            return measure_subnets(model, cfgs, setting, progress=self.progress)
        # Every graph exported first, then all timed interleaved in rounds like the torch subnets
        # (one session open at a time): timed one after another, each graph would meet another
        # moment of the machine's drifting speed.
        with tempfile.TemporaryDirectory() as tmp:
            bar = progress_bar(cfgs, desc="export", unit="graph", disable=not self.progress)
            paths = {}
            for i, cfg in enumerate(bar):
                bar.set_postfix_str(cfg.name, refresh=False)
                if cfg.name in self._graphs and setting == self.setting:
                    paths[cfg.name] = self._graphs[cfg.name]  # kept for scoring: not exported again
                elif keep and setting.int8 and cfg not in unkept:
                    paths[cfg.name] = self.graph(cfg)
                else:
                    paths[cfg.name] = self._graph_only(model, cfg, Path(tmp) / f"m{i}", int8=setting.int8)
            results = measure_onnx_files(paths, setting, progress=self.progress)
        return [results[cfg.name] for cfg in cfgs]

    def _predictor_path(self) -> Path:
        """Where this setting's predictor is kept: predictor-<key>.json, or beside it
        predictor-<key>.w<warmup>-r<repeats>.json where that file holds one whose probes were timed with
        other counts (kept, not reused), or is gone since and the file beside it is there (as the
        latency cache keeps figures of other counts)."""
        main = self.run.latency / f"predictor-{self.setting.key}.json"
        beside = main.with_name(f"{main.stem}.w{self.setting.warmup}-r{self.setting.repeats}.json")
        counts = _timing_counts(main)
        if counts == (self.setting.warmup, self.setting.repeats) or (counts is None and not beside.is_file()):
            return main
        return beside

    def _cached_predictor(self) -> dict[str, Any] | None:
        """The run's predictor file for this setting, unless absent or timed on another graph revision."""
        path = self._predictor_path()
        main = self.run.latency / f"predictor-{self.setting.key}.json"
        if path != main and not self._said_stale_predictor and (counts := _timing_counts(main)) is not None:
            warmup, repeats = counts
            # Of another machine or graph revision, those counts would not use it either.
            usable = stale_reason(json.loads(main.read_text(encoding="utf-8")), self.setting) is None
            self.log(
                f"note: {main.relative_to(self.run.root)} was built from probes timed with {warmup} warm-up "
                f"and {repeats} timed calls, not this search's {self.setting.warmup} and "
                f"{self.setting.repeats}: it is kept, not used"
                + (f" (--warmup {warmup} --repeats {repeats} uses it)" if usable else "")
            )
            self._said_stale_predictor = True
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            LatencyPredictor.from_dict(data)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            # Only a cache, as the latency caches: said once, then built again where it is needed.
            if not self._said_stale_predictor:
                reason = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
                self.log(
                    f"warning: cannot read {path.relative_to(self.run.root)} ({reason}): it is not used, "
                    "and --predict or --per-layer builds it again"
                )
                self._said_stale_predictor = True
            return None
        stale = stale_reason(data, self.setting)
        if stale is not None and not self._said_stale_predictor:
            # Its `pred ms` column would vanish without a word; --predict (or --per-layer) builds it again.
            self.log(f"note: {path.relative_to(self.run.root)} does not hold here ({stale}): it is not used")
            self._said_stale_predictor = True
        return None if stale is not None else data

    def has_predictor(self) -> bool:
        """Whether this setting's predictor is already cached in the run (so costs nothing to load)."""
        return self._cached_predictor() is not None

    def predictor(self) -> LatencyPredictor:
        path = self._predictor_path()
        cached = None if self.remeasure else self._cached_predictor()
        if cached is not None:
            if flagged := cached.get("probes_flagged"):
                # Its `pred ms` column and the evolution's budget check carry what its probes carried.
                self.log(
                    f"note: {path.relative_to(self.run.root)} was built from flagged probes ({flagged}): "
                    "its predictions may carry that; search.py --remeasure on an idle machine builds it again"
                )
            return LatencyPredictor.from_dict(cached)
        model = self._timed()
        # Minutes with onnxruntime (a graph per probe): said, so the bars that follow have a name.
        self.log(
            f"building the latency predictor for {self.setting.key}: timing its probe subnets "
            f"(kept in {path.relative_to(self.run.root)})"
        )
        # The table's probes are measured like every other subnet (exported first with onnxruntime).
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LatencyWarning)
            predictor = LatencyPredictor.build(
                model,
                self.setting,
                space=self.space,
                measure=functools.partial(self._measure_many, keep=False),
            )
        self._say_latency_warnings(caught, "warning: latency predictor probes: ")
        flagged = [str(w.message) for w in caught if issubclass(w.category, LatencyWarning)]
        # Kept with the predictor, so that a later search reusing it says so (it reused it silently).
        record = predictor.to_dict() | ({"probes_flagged": "; ".join(flagged)} if flagged else {})
        self._keep(path, functools.partial(atomic_write_json, path, record))
        return predictor

    def cost(self, cfg: SubnetConfig) -> tuple[int, int]:
        return count_params(self.model, cfg), count_flops(self.model, cfg, self.setting.seq_len)


def _timing_counts(path: Path) -> tuple[object, object] | None:
    """(warm-up, repeats) of the probes of the predictor saved at `path`; None where there is none to
    read (absent, damaged: replaced by the next one built)."""
    try:
        setting = json.loads(path.read_text(encoding="utf-8"))["setting"]
        return setting["warmup"], setting["repeats"]
    except (OSError, ValueError, TypeError, KeyError):
        return None


def per_layer_search(
    sr: SearchRun,
    cfg: SearchConfig,
    predictor: LatencyPredictor,
    target_ms: float,
    *,
    verify_top: int,
    progress: bool = True,
    reference: Mapping[SubnetConfig, LatencyResult] | None = None,
) -> list[SubnetResult]:
    """Evolutionary search under `target_ms` (predicted), then its best per-layer subnets verified.

    Candidates are ranked by `SearchRun.estimate` (the fixed dev subset); the `verify_top` most
    accurate non-uniform ones of the last population are then measured and scored on the whole dev
    split, like the grid.

    Args:
        sr: the run's measuring objects (its ``accuracy_subset`` sets the subset).
        cfg: population, generations and seed of the search.
        predictor: the latency predictor that keeps candidates under the budget.
        target_ms: the predicted-latency budget of every candidate.
        verify_top: per-layer subnets to verify.
        progress: show progress bars.
        reference: the figures the verified subnets will be compared with (the grid's): one is timed
            again beside them, and a change of the machine's speed since is said (`SearchRun.measure`).

    Returns:
        One `SubnetResult` per verified subnet (full-dev accuracy, measured latency).
    """
    extra = _evolve(
        sr,
        predictor.predict,
        target_ms,
        population=cfg.population,
        generations=cfg.generations,
        seed=cfg.seed,
        verify_top=verify_top,
        progress=progress,
    )
    if not extra:
        return []
    measured = sr.measure(extra, reference=reference)
    return evaluate_grid(
        extra,
        evaluate=sr.evaluate,
        measure=lambda c: measured[c.name],
        predict=predictor.predict,
        cost=sr.cost,
        progress=progress,
        metric=sr.metric,
        precision=sr.precision,
    )


def _evolve(
    sr: SearchRun,
    predict: Callable[[SubnetConfig], float],
    target_ms: float,
    *,
    population: int,
    generations: int,
    seed: int,
    verify_top: int,
    progress: bool,
) -> list[SubnetConfig]:
    """The `verify_top` best per-layer subnets an evolutionary search finds under `target_ms`.

    None (an empty list) when even the smallest subnet is predicted over it: the grid, measured and
    scored by now, may still hold a subnet under the budget (the predictor is a few percent off), so
    the search goes on with the grid's choice instead of ending without results.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LatencyWarning)  # the predictor's extrapolation, say
            warnings.simplefilter("always", ShortSearchWarning)
            found = evolutionary_search(
                space=sr.space,
                arch=sr.arch,
                evaluate=sr.estimate,
                predict=predict,
                budget_ms=target_ms,
                population=population,
                generations=generations,
                rng=random.Random(seed),
                progress=progress,
            )
        # A population or generation that ran short: one note for all of them (it was a Python
        # warning per generation, with its source line, naming max_tries, which search.py lacks).
        short = [w.message for w in caught if isinstance(w.message, ShortSearchWarning)]
        sr._say_latency_warnings(
            [w for w in caught if not isinstance(w.message, ShortSearchWarning)], "warning: "
        )
        if short:
            first = short[0].shortfall
            more = len(short) - 1
            also = f" (and {more} more generation{'s' if more > 1 else ''} like it)" if more else ""
            sr.log(
                f"note: per-layer search{first}{also}: a higher --latency-budget-ms gives it more subnets to "
                "choose from"
            )
    except BudgetError as err:
        sr.log(
            f"note: no per-layer search: the smallest subnet is predicted at {err.needed_ms:.2f} ms, over "
            f"{ms_text(target_ms)} ms; the choice is among the grid's subnets"
        )
        return []
    return [c for c, _, _ in found if not c.is_uniform][:verify_top]


def _budget(args: argparse.Namespace, full_ms: float) -> float | None:
    if args.latency_budget_ms is not None:
        return float(args.latency_budget_ms)
    if args.latency_budget_ratio is not None:
        return args.latency_budget_ratio * full_ms
    return None


def _score(metric: str, value: float) -> str:
    """A score as printed: "accuracy 70.80%", "pearson 81.20" (x 100)."""
    return f"{metric} {100 * value:.2f}" + ("%" if metric == "accuracy" else "")


def run_with_table(
    args: argparse.Namespace, *, log: Callable[[str], None] = print, timing_given: Sequence[str] = ()
) -> int:
    """Search with a device's latency table: every latency is predicted from it, none is measured.

    `timing_given`: the timing flags given (--warmup, --repeats), said to be ignored with the others.
    """
    from dataclasses import replace

    from supernet.profile_kit import load_latency_table

    if args.dtype not in (None, "float32"):
        raise RunError(
            f"--dtype {args.dtype}: a latency table times the float32 (or int8) ONNX graphs; drop --dtype"
        )
    folder = search_folder(Path(args.run), getattr(args, "out", None))
    table = load_latency_table(args.latency_table)
    # Before loading anything else: a table of another setting is refused at once.
    table.check_setting(
        num_threads=args.threads, batch_size=args.batch_size, seq_len=args.seq_len, int8=args.int8
    )
    setting = table.setting
    given = (("--device", args.device), ("--backend", args.backend), ("--remeasure", args.remeasure))
    ignored = [flag for flag, value in given if value] + list(timing_given)
    if ignored:
        log(f"note: {_listed(ignored)} ignored: every latency comes from the table ({table.description})")
    sr = SearchRun(
        Path(args.run),
        setting,
        progress=not args.no_progress,
        accuracy_subset=args.accuracy_subset or None,
        subset_seed=args.seed,
        log=log,  # its notes go where the caller's lines go, as without a table
    )
    table.check_run(run_identity(sr.run.root), sr.arch, digests=run_digests(sr.run.root))
    if args.per_layer:
        _note_grid_only(sr.train_cfg, log)
    predictor = table.predictor(sr.model)
    source = f"predicted from {table.path.name} ({table.description}, measured {table.timestamp})"
    log(f"latency {source}, {setting.key}; nothing is measured on this machine")
    # profile.py records the device's load; a table timed on a busy device predicts a busy device.
    table_warning = load_warning(table.results)
    if table_warning is not None:
        log(f"warning: {table.path.name}: {table_warning} (run profile.py again)")
    fit = table.fit_warning(predictor)
    if fit is not None:
        log(f"warning: {table.path.name}: {fit}")
    progress = not args.no_progress
    grid = sr.space.grid()
    # Every latency is the table's prediction: no second column of the same figures (pred ms).
    results = evaluate_grid(
        grid,
        evaluate=sr.evaluate,
        measure=predictor.predict,
        cost=sr.cost,
        progress=progress,
        metric=sr.metric,
        precision=sr.precision,
    )
    by_name = {r.name: r for r in results}
    full_ms = by_name[MAX_NET.name].latency_ms if MAX_NET.name in by_name else results[0].latency_ms
    budget = _budget(args, full_ms)
    if args.per_layer:
        target = budget if budget is not None else full_ms
        log(f"evolutionary search over per-layer subnets, predicted latency <= {ms_text(target)} ms ...")
        extra = _evolve(  # ranked on the fixed dev subset, as without a table
            sr,
            predictor.predict,
            target,
            population=args.population,
            generations=args.generations,
            seed=args.seed,
            verify_top=args.verify_top,
            progress=progress,
        )
        results += evaluate_grid(
            extra,
            evaluate=sr.evaluate,
            measure=predictor.predict,
            cost=sr.cost,
            progress=progress,
            metric=sr.metric,
            precision=sr.precision,
        )
    results = [replace(r, latency_source=source) for r in results]
    title = f"{sr.train_cfg.task}: dev {sr.metric} vs predicted latency ({setting.words}; {table.device.get('cpu')})"
    measured_on = {
        "latency_table": {
            "path": str(table.path.resolve()),
            "device": table.device,
            "onnxruntime_version": table.onnxruntime_version,
            "timestamp": table.timestamp,
            "load_warning": table_warning,
        }
    }
    _finish(
        sr,
        folder,
        results,
        budget,
        title,
        measured_on,
        log,
        options=_options_record(args, budget, sr),
        predicted=True,
    )
    return 0


def search_folder(run_dir: Path, out: Path | None) -> Path:
    """Where a search writes its results: `out`, or the run's search/ folder.

    Raises:
        RunError: `out` is a file, or a non-empty folder that holds no earlier search (a
            results.jsonl that search.py wrote).
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise RunError(
            f"--run '{run_dir}' is a file, not a run directory: pass the output_dir train.py wrote"
        )
    default = RunDir(run_dir).search
    folder = default if out is None else output_target(Path(out), "--out", replaced=False)
    if folder.exists() and not folder.is_dir():
        raise RunError(f"--out '{folder}' is a file, not a folder: pass a folder for the search's results")
    if (
        out is not None
        and folder.resolve() != default.resolve()  # the run's own search/ also holds its caches
        and folder.is_dir()
        and any(folder.iterdir())
        and not _holds_search(folder)
    ):
        raise RunError(
            f"--out '{folder}' is not empty and holds no earlier search (no results.jsonl search.py "
            "wrote): refusing to write into it; pass a new folder"
        )
    other = _search_of_another_run(folder, run_dir) if out is not None else None
    if other is not None:
        raise RunError(
            f"--out '{folder}' holds a search of run '{other}', not of '{run_dir}': refusing to replace it; "
            "pass another --out DIR (one per run and target device)"
        )
    problem = unwritable(folder)  # before the measurements, not after them
    if problem is not None:
        if out is None:
            raise RunError(
                f"the run's search folder '{folder}' cannot be written: {problem}; pass --out DIR elsewhere"
            )
        raise RunError(f"--out '{folder}' cannot be written: {problem}; pass another folder")
    return folder


def _per_layer_not_kept(path: Path, results: Sequence[SubnetResult]) -> list[str]:
    """The per-layer subnets of the results.jsonl at `path` that `results` (replacing it) lacks."""
    try:
        earlier = read_results(path) if path.is_file() else []
    except (OSError, ValueError):  # unreadable: replaced as it is, nothing to name
        return []
    kept = {r.name for r in results}
    return [r.name for r in earlier if not r.subnet.is_uniform and r.name not in kept]


def _search_of_another_run(folder: Path, run_dir: Path) -> str | None:
    """The name of the run whose search `folder` holds, where that is another run than `run_dir`'s;
    None for a search of this run, a folder without one, or records that name no run (search.json
    names it since 2026-12-01, chosen.json since 2026-11-30)."""
    for name in (SEARCH_RECORD, "chosen.json"):
        record = _earlier_search(folder / name)
        stamp = record.get("run") if record is not None else None
        if isinstance(stamp, dict) and "config_sha256" in stamp:
            try:
                ours = run_digests(run_dir)
            except (OSError, ValueError, TypeError, KeyError, ConfigError):
                return None  # this run's own config is said elsewhere, in its own words
            return None if stamp["config_sha256"] in ours else str(stamp.get("name"))
    return None


SPEED_CHANGE_BOUND = 0.10
"""How far a subnet timed again may move from its earlier figure before the subnets timed beside it
are said not to compare with the earlier ones (`SearchRun.measure`): the spread bound of one figure."""


def others_now(seconds: float = 0.5, tries: int = 3) -> float | None:
    """The CPU other processes take now, in cores, over `seconds` of this process sleeping: the least
    of up to `tries` readings (a process ending meanwhile is no load), stopping at one under
    `LOAD_BOUND_CORES`; None without /proc/stat."""
    least = None
    for _ in range(tries):
        start, began = cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        cores = other_cpu_cores(start, cpu_seconds(), time.perf_counter() - began)
        if cores is None:
            return None
        least = cores if least is None else min(least, cores)
        if least <= LOAD_BOUND_CORES:
            break
    return least


def _speed_check_subnet(
    reference: Mapping[SubnetConfig, LatencyResult], todo: Sequence[SubnetConfig]
) -> SubnetConfig | None:
    """The earlier-timed subnet `SearchRun.measure` times again beside `todo`: of those not in `todo`,
    the one of median latency (neither the noisiest small one nor the costliest); None if there are none."""
    earlier = sorted((r.median_ms, c.name, c) for c, r in reference.items() if c not in todo)
    return earlier[len(earlier) // 2][2] if earlier else None


def _holds_search(folder: Path) -> bool:
    """Whether `folder` has a results.jsonl that search.py wrote (one a user made is not replaced)."""
    try:
        return bool(read_results(folder / "results.jsonl"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def _earlier_choice(path: Path) -> dict[str, Any] | None:
    """An earlier search's chosen.json, or None where there is none that can be read (it is replaced)."""
    before = _earlier_search(path)
    return before if before is not None and isinstance(before.get("name"), str) else None


SEARCH_RECORD = "search.json"
"""In a search folder: the latency setting (and device table) its results.jsonl was measured with."""


def _earlier_search(path: Path) -> dict[str, Any] | None:
    """An earlier search's record of where its latency came from (`SEARCH_RECORD`, or chosen.json,
    which holds the same keys), or None where there is none that can be read."""
    try:
        record = json.loads(path.read_text())
        _source_of(record)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return record


def _source_of(chosen: dict[str, Any]) -> str:
    """What a chosen.json's latency came from: its setting, and the device table if any."""
    setting = LatencySetting.from_dict(chosen["setting"]).key
    table = chosen.get("latency_table")
    return setting if table is None else f"{setting} from {table['path']}"


def _stale_choice(chosen: Mapping[str, Any]) -> str | None:
    """How the graphs an onnxruntime choice was ranked on differ from those export.py writes now, or
    None (a torch choice, or the same graphs). Choices before 2026-12-01 recorded no revision."""
    try:
        setting = LatencySetting.from_dict(chosen["setting"])
    except (KeyError, TypeError, ValueError):
        return None
    return graph_change_of(chosen, setting)


def _export_best(folder: Path, sr: SearchRun, *, full: bool = False) -> str:
    """The export command that cuts the choice in `folder`: `--search` names a folder other than the
    run's own search/. `full`: with `--run`, paths quoted as a shell reads them."""
    elsewhere = folder.resolve() != sr.run.search.resolve()
    quote = shlex.quote if full else str
    run = f" --run {quote(str(sr.run.root))}" if full else ""
    search = f" --search {quote(str(folder))}" if elsewhere else ""
    return f"export.py{run}{search} --subnet best"


def _finish(
    sr: SearchRun,
    folder: Path,
    results: list[SubnetResult],
    budget: float | None,
    title: str,
    measured_on: dict[str, Any],
    log: Callable[[str], None],
    *,
    options: dict[str, Any],
    predicted: bool = False,
) -> None:
    """Write the search's files in `folder`, print its table and its choice.

    Args:
        measured_on: chosen.json's record of where the latency comes from (a device's table).
        options: search.json's record of how the search ran (`_options_record`).
        predicted: the latencies are a device table's predictions, not measured here.
    """
    chosen = select_under_budget(results, budget) if budget is not None else None
    record = None
    before = _earlier_choice(folder / "chosen.json")
    options = {**options, "chosen": None if chosen is None else chosen.name}
    if chosen is None and before is not None:
        # The folder's chosen.json stays (export.py --subnet best cuts it): it is not this search's.
        options["chosen_json"] = f"kept from an earlier search ({before.get('name')}, {_source_of(before)})"
    # SEARCH_RECORD: what the results are of (the run: another one's search is not replaced, search_folder)
    source = {
        "setting": sr.setting.to_dict(),
        **measured_on,
        **graph_stamp(sr.setting),  # the graphs its onnxruntime figures are of (export.py compares them)
        "run": run_identity(sr.run.root),
        "search": options,
    }
    # The results replaced are those of the last search here, budgeted or not (SEARCH_RECORD, since
    # 2026-12-01; before, only a budgeted one's chosen.json said it).
    earlier = _earlier_search(folder / SEARCH_RECORD) or before
    now = _source_of(source)
    choice_of_earlier = (
        before is not None and earlier is not None and _source_of(before) == _source_of(earlier)
    )
    # --out given (another folder than the run's own search/): another one keeps both.
    out = "--out DIR" if folder.resolve() == sr.run.search.resolve() else "another --out DIR"
    if earlier is not None and _source_of(earlier) != now:
        # Two target devices' searches in one folder: the second replaces the first.
        chose = f", chose {before['name']}" if before is not None and choice_of_earlier else ""
        log(
            f"note: replacing the earlier search in {folder} ({_source_of(earlier)}{chose}); pass {out} to "
            "keep one search per device"
        )
    if chosen is not None and before is not None and _source_of(before) != now and not choice_of_earlier:
        # A choice an unbudgeted search of another setting kept since: replaced now.
        log(
            f"note: replacing the earlier choice in {folder / 'chosen.json'} ({_source_of(before)}, chose "
            f"{before['name']}); pass {out} to keep one search per device"
        )
    elif (
        chosen is not None
        and before is not None
        and _source_of(before) == now
        and before.get("name") != chosen.name
    ):
        # The same device searched again under another budget (or on weights trained since):
        # export.py --subnet best now cuts another subnet, which is said.
        was = before.get("budget_ms")
        under = f" under {ms_text(was)} ms" if isinstance(was, (int, float)) else ""
        log(
            f"note: {folder / 'chosen.json'} named {before.get('name')}{under}; it now names {chosen.name} "
            f"({_export_best(folder, sr)} cuts it; pass {out} to keep both)"
        )
    lost = _per_layer_not_kept(folder / "results.jsonl", results)
    if lost:
        # A grid search after a per-layer one: the evolution's verified subnets (minutes of work) go.
        shown = ", ".join(lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
        log(
            f"note: replacing the earlier search's {len(lost)} per-layer subnet(s) in {folder} ({shown}), "
            f"which this search did not measure; search with --per-layer, or pass {out}, to keep them"
        )
    if chosen is None:
        if before is not None:
            stale = _stale_choice(before)
            timed = before["setting"].get("warmup"), before["setting"].get("repeats")
            # Its latency beside results.jsonl's differs then: the same setting, other counts.
            counts = (
                f", {before['latency_ms']:.2f} ms timed with {timed[0]} warm-up and {timed[1]} timed calls"
                if timed != (sr.setting.warmup, sr.setting.repeats)
                and "latency_ms" in before
                and before.get("latency_table") is None  # a table's figure is predicted, not timed here
                else ""
            )
            kept = f"note: no budget, so {folder / 'chosen.json'} keeps the earlier choice ({before['name']}, {_source_of(before)}{counts})"
            if before.get("weights_sha256", sr.weights) != sr.weights:
                # export.py refuses it then (a choice of other weights): not "still cuts it".
                log(
                    f"{kept}, chosen on other weights than {sr.run.supernet.name}/ holds now (trained again "
                    "since): export.py --subnet best refuses it; pass a budget to choose again"
                )
            else:
                log(
                    f"{kept}: {_export_best(folder, sr)} still cuts it"
                    + (
                        f"; it was ranked on graphs export.py no longer writes ({stale}): pass a budget to choose again"
                        if stale
                        else ""
                    )
                )
    else:
        record = {
            "budget_ms": budget,
            "setting": sr.setting.to_dict(),
            # export.py --search refuses a search whose run is another one, --subnet best one of other weights.
            "run": run_identity(sr.run.root),
            "weights_sha256": sr.weights,
            **graph_stamp(sr.setting),  # an onnxruntime choice's graph revisions (export compares them)
            **measured_on,
            **chosen.to_json(),
        }
    # chosen.json in the same set: a failure (a full disk) must not leave it naming another choice
    # than results.jsonl marks.
    paths = write_results(
        results,
        folder.parent,
        budget_ms=budget,
        chosen=chosen,
        title=title,
        folder=folder.name,
        extra={SEARCH_RECORD: json_bytes(source)}
        | ({"chosen.json": json_bytes(record)} if record is not None else {}),
    )
    log(format_table(results, chosen=chosen, seq_len=sr.setting.seq_len))
    n = _dev_examples(sr.run)
    if n and results[0].metric == "accuracy":
        # How far apart two scores must be to differ by more than a sentence or two, and how far the
        # chosen's (or the best's) score may sit from the accuracy on the text it stands for.
        # (ties to the faster: the one on the front)
        shown = chosen if chosen is not None else max(results, key=lambda r: (r.accuracy, -r.latency_ms))
        low, high = wilson_interval(shown.accuracy, n)
        log(
            f"dev accuracy over {n} examples: one example is {100 / n:.2f} pt; {shown.name}'s "
            f"{100 * shown.accuracy:.2f}% has a 95% interval of {100 * low:.1f}-{100 * high:.1f}% (Wilson)"
        )
    log(f"results: {paths['results']}\nplot: {paths['pareto_png']}")
    if chosen is not None:
        log(
            f"chosen under {ms_text(budget)} ms{' (predicted for the device)' if predicted else ''}: "
            f"{chosen.name} (dev {'int8 ' if chosen.precision == 'int8' else ''}"
            f"{_score(chosen.metric, chosen.accuracy)}, {chosen.latency_ms:.2f} ms"
            f"{' predicted' if predicted else ''}, {chosen.params / 1e6:.2f} M params)"
        )
        near = left_out_by_rounding(results, chosen, budget)
        if near is not None:
            log(
                f"note: {near.name} ({_score(near.metric, near.accuracy)}) is left out: "
                f"{'predicted' if predicted else 'measured'} at {near.latency_ms:.4f} ms, over the "
                f"{ms_text(budget)} ms budget though the table shows {near.latency_ms:.2f}; "
                f"--latency-budget-ms {budget_that_takes(near.latency_ms):.2f} takes it"
            )
        # The choice was ranked by its int8 graph: export writes that graph only with --int8.
        int8 = " --int8" if chosen.precision == "int8" else ""
        log(f"next: python {_export_best(folder, sr, full=True)}{int8}")


# The flags behind SearchConfig's fields, so a refused value is named as the user typed it.
_FLAGS = {
    "latency_budget_ms": "--latency-budget-ms",
    "device": "--device",
    "backend": "--backend",
    "int8": "--int8",
    "dtype": "--dtype",
    "batch_size": "--batch-size",
    "seq_len": "--seq-len",
    "num_threads": "--threads",
    "warmup": "--warmup",
    "repeats": "--repeats",
    "population": "--population",
    "generations": "--generations",
    "seed": "--seed",
    "accuracy_subset": "--accuracy-subset",
}


def _search_config(args: argparse.Namespace) -> SearchConfig:
    return SearchConfig(
        run=args.run,
        latency_budget_ms=args.latency_budget_ms,
        device=args.device,
        backend=args.backend,
        int8=args.int8,
        dtype=args.dtype,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        num_threads=args.threads,
        warmup=args.warmup,
        repeats=args.repeats,
        per_layer=args.per_layer,
        population=args.population,
        generations=args.generations,
        seed=args.seed,
        accuracy_subset=args.accuracy_subset or None,
    )


def _as_flag(err: ConfigError) -> str:
    """`err`'s message with the config field replaced by its flag (num_threads -> --threads)."""
    message = str(err)
    flag = _FLAGS.get(err.key or "")
    if flag is None:
        return message
    message = message.replace(" or null,", ",")  # a flag is given or left out, never null
    if message.startswith(f"{err.key} "):
        return flag + message[len(err.key) :]
    return message.replace(f"'{err.key}'", flag)


def default_seq_len(run_dir: Path, log: Callable[[str], None], *, option: str | None = "--seq-len") -> int:
    """128 tokens (the usual b1 s128 benchmark), or the run's max_length where the model has fewer
    positions (said in a note, which names `option` where the command has one to choose)."""
    config_file = RunDir(run_dir).supernet / "config.json"
    if not config_file.is_file():
        return 128  # not a finished run: the run checks say so
    from supernet.data import positions_problem

    name = f"the default {option}" if option else "the usual sequence length"
    problem = positions_problem(saved_model_config(config_file.parent), 128, name)
    if problem is None:
        return 128
    length = load_config(TrainConfig, RunDir(run_dir).config).data.max_length
    choose = f" ({option} to choose)" if option else ""
    log(f"note: {problem}: timing at the run's max_length {length}{choose}")
    return length


# Options left None by the parser, so that one given where it does nothing is said: (flag, field, default).
_PER_LAYER_OPTIONS = (
    ("--population", "population", SEARCH_DEFAULTS["population"]),
    ("--generations", "generations", SEARCH_DEFAULTS["generations"]),
    ("--verify-top", "verify_top", 5),
    ("--accuracy-subset", "accuracy_subset", SEARCH_DEFAULTS["accuracy_subset"]),
)
_TIMING_OPTIONS = (
    ("--warmup", "warmup", SEARCH_DEFAULTS["warmup"]),
    ("--repeats", "repeats", SEARCH_DEFAULTS["repeats"]),
)


def _dev_examples(run: RunDir) -> int | None:
    """How many examples the run's dev scores are over (teacher_eval.json's count), or None."""
    try:
        n = json.loads((run.root / "teacher_eval.json").read_text(encoding="utf-8"))["dev"]["n"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None


def _options_record(args: argparse.Namespace, budget: float | None, sr: SearchRun) -> dict[str, Any]:
    """What search.json records of how the search ran, beside its setting: the budget as given and
    as resolved, and, with --per-layer, the evolution's options (with --seed they make it repeatable;
    an accuracy subset not smaller than the dev split is 0, the whole split, as the search used it)."""
    record: dict[str, Any] = {
        "latency_budget_ms": args.latency_budget_ms,
        "latency_budget_ratio": args.latency_budget_ratio,
        "budget_ms": budget,
        "per_layer": bool(args.per_layer),
    }
    if args.per_layer:
        record |= {name: getattr(args, name) for _, name, _ in _PER_LAYER_OPTIONS} | {"seed": args.seed}
        if sr._subset() is None:  # a 30-example dev split was recorded as a subset of 128
            record["accuracy_subset"] = 0
    return record


def _listed(flags: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return ", ".join(flags[:-1]) + " and " + flags[-1] if len(flags) > 1 else flags[0]


def _given_and_defaulted(args: argparse.Namespace, options: Sequence[tuple[str, str, Any]]) -> list[str]:
    """The flags of `options` given on the command line; the others set to their defaults."""
    given = [flag for flag, name, _ in options if getattr(args, name, None) is not None]
    for _, name, default in options:
        if getattr(args, name, None) is None:
            setattr(args, name, default)
    return given


def search_defaults() -> argparse.Namespace:
    """search.py's options at their defaults (a script offering the same options takes them from here)."""
    args = build_parser().parse_args(["--run", "-"])
    _given_and_defaulted(args, (*_PER_LAYER_OPTIONS, *_TIMING_OPTIONS))
    return args


def run(args: argparse.Namespace, *, log: Callable[[str], None] = print) -> int:
    """search.py itself on parsed options (`build_parser`): measure the grid (and with --per-layer
    search per-layer subnets), write results, the Pareto plot and, under a budget, chosen.json into
    the run's search/ (or --out), saying each step through `log`. Returns the exit status.

    Raises:
        RunError: a bad option or run folder, in one line (search.py prints it and exits 2).
    """
    per_layer_flags = _given_and_defaulted(args, _PER_LAYER_OPTIONS)
    timing_given = _given_and_defaulted(args, _TIMING_OPTIONS)
    budget = args.latency_budget_ms
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        # inf passed SearchConfig's "> 0" and was refused only after the whole grid was timed.
        raise RunError(f"--latency-budget-ms must be a finite number > 0, got {budget}")
    ratio = args.latency_budget_ratio
    if ratio is not None and not 0 < ratio <= 1:
        # Checked before anything is measured, not once the grid's latency is known.
        raise RunError(f"--latency-budget-ratio must be in (0, 1], got {ratio}")
    if args.verify_top < 1:
        # 0 ran the whole evolution, then kept none of it.
        raise RunError(
            f"--verify-top must be >= 1 (the per-layer subnets a --per-layer search keeps), got {args.verify_top}"
        )
    # Here for the latency-table search too, which builds no SearchConfig (it had a traceback).
    if args.population < 2:
        raise RunError(f"--population must be >= 2, got {args.population}")
    if args.generations < 0:
        raise RunError(f"--generations must be >= 0, got {args.generations}")
    if args.accuracy_subset < 0:
        raise RunError(
            f"--accuracy-subset must be >= 0 (0 = the whole dev split), got {args.accuracy_subset}"
        )
    if per_layer_flags and not args.per_layer:  # said once the values are known to be valid
        verb = "they set" if len(per_layer_flags) > 1 else "it sets"
        log(f"note: {_listed(per_layer_flags)} ignored: {verb} the per-layer search (--per-layer)")
    if getattr(args, "latency_table", None) is None and args.device in (None, "cpu"):
        if why := too_many_threads(args.threads):  # before waiting for another job (it took 64 s)
            raise RunError(why)
    out = getattr(args, "out", None)
    if Path(args.run).is_dir():  # checked before waiting for another job (and again after)
        search_folder(Path(args.run), out)
    # and another run's search into the same --out, meanwhile
    with one_timing_job(Path(args.run), log, out=None if out is None else Path(out)):
        if getattr(args, "latency_table", None) is not None:
            return run_with_table(args, log=log, timing_given=timing_given)
        return _measured_search(args, log)


def _note_grid_only(train_cfg: TrainConfig, log: Callable[[str], None]) -> None:
    """Say, before a --per-layer search, that the supernet was never trained on per-layer subnets: on
    such a supernet bench/per_layer.py found nothing better than the grid's pick (README)."""
    if not (train_cfg.recipe == SingleStage.name and train_cfg.per_layer_sampling):
        log(
            "note: this supernet was trained on the uniform grid only (per_layer_sampling is off), where a "
            "per-layer search has found nothing better than the grid's pick (README, 'When is --per-layer "
            f"worth running?'); to search per layer, train with recipe={SingleStage.name} per_layer_sampling=true"
        )


def _measured_search(args: argparse.Namespace, log: Callable[[str], None]) -> int:
    """`run` past its option checks, the run held (`one_timing_job`): measure, search, write."""
    folder = search_folder(Path(args.run), getattr(args, "out", None))
    # None means "not given" (a latency table then supplies them); measuring here defaults to b1 s128.
    args.device = "cpu" if args.device is None else args.device
    args.backend = "torch" if args.backend is None else args.backend
    args.batch_size = 1 if args.batch_size is None else args.batch_size
    args.dtype = "float32" if args.dtype is None else args.dtype
    if args.seq_len is None:
        args.seq_len = default_seq_len(Path(args.run), log)
    try:
        cfg = _search_config(args)
    except ConfigError as err:
        raise RunError(_as_flag(err)) from err
    setting = LatencySetting(
        device=cfg.device,
        backend=cfg.backend,
        int8=cfg.int8,
        dtype=cfg.dtype,
        batch_size=cfg.batch_size,
        seq_len=cfg.seq_len,
        num_threads=cfg.num_threads,
        warmup=cfg.warmup,
        repeats=cfg.repeats,
    )
    progress = not args.no_progress
    sr = SearchRun(
        Path(cfg.run),
        setting,
        progress=progress,
        accuracy_subset=cfg.accuracy_subset,
        subset_seed=cfg.seed,
        log=log,
        remeasure=args.remeasure,
    )
    if cfg.per_layer:
        _note_grid_only(sr.train_cfg, log)
    if cfg.per_layer or cfg.int8:
        # Both score subnets on dev: a task file not found here, or a split changed since training,
        # is said before minutes of measuring, not after.
        sr.dev_loader()
    else:
        sr.note_changed_dev()
    grid = sr.space.grid()
    measured = sr.measure(grid)  # says what it times, and what it reads from the cache
    # Fitting the predictor times ~26 probe subnets (a third of a quickstart search on torch, 26
    # exports on onnxruntime): done when per-layer search needs it or --predict asks for the column.
    predictor = sr.predictor() if cfg.per_layer or args.predict or sr.has_predictor() else None
    predict = predictor.predict if predictor is not None else None

    results = evaluate_grid(
        grid,
        evaluate=sr.evaluate,
        measure=lambda c: measured[c.name],
        predict=predict,
        cost=sr.cost,
        progress=progress,
        metric=sr.metric,
        precision=sr.precision,
    )
    full_ms = measured[MAX_NET.name if MAX_NET.name in measured else grid[0].name].median_ms
    budget = _budget(args, full_ms)

    if cfg.per_layer:
        # --per-layer always builds a predictor (for torch, onnxruntime or a device's table).
        assert predictor is not None, "--per-layer without a latency predictor"
        target = budget if budget is not None else full_ms
        subset = (
            # No subset asked for, or one not smaller than the dev split (a 60-row dev was "128").
            "the whole dev split" if sr._subset() is None else f"{cfg.accuracy_subset} dev examples"
        )
        log(
            f"evolutionary search over per-layer subnets, predicted latency <= {ms_text(target)} ms, "
            f"ranked on {subset} ..."
        )
        results += per_layer_search(
            sr,
            cfg,
            predictor,
            target,
            verify_top=args.verify_top,
            progress=progress,
            reference={c: measured[c.name] for c in grid},
        )

    title = f"{sr.train_cfg.task}: dev {sr.metric} vs latency ({setting.words}; medians of {setting.repeats} calls)"
    _finish(sr, folder, results, budget, title, {}, log, options=_options_record(args, budget, sr))
    return 0
