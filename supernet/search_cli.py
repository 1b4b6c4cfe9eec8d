"""`python search.py`: accuracy and latency of every trained subnet, Pareto front, budgeted choice.

The run directory supplies the trained supernet, its config (for the dev
split) and the grid's dev accuracies (`eval.jsonl`, written by training);
latency is measured on this machine for the requested setting and cached in
`latency/`. With `--per-layer`, an evolutionary search over per-layer subnets
ranks candidates by the lookup-table predictor and the best are verified by
measurement.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from supernet.config import SearchConfig, TrainConfig, load_config
from supernet.convert import supernet_state
from supernet.cost import count_flops, count_params
from supernet.data import make_dataloader
from supernet.io import RunDir, atomic_write_json
from supernet.latency import LatencyCache, LatencyPredictor, LatencyResult, LatencySetting, measure_subnets
from supernet.search import (
    evaluate_grid,
    evolutionary_search,
    format_table,
    select_under_budget,
    write_results,
)
from supernet.subnet import MAX_NET, SearchSpace, SubnetConfig
from supernet.tasks import task_kind_of_config
from supernet.trainer import RunError, evaluate_subnet, load_supernet, tokenized_split

__all__ = ["SearchRun", "build_parser", "run"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="search.py",
        description="Measure every trained subnet, draw the accuracy/latency Pareto front, "
        "pick the most accurate subnet within a latency budget.",
    )
    p.add_argument("--run", required=True, help="run directory written by train.py")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--latency-budget-ms", type=float, help="latency budget in milliseconds")
    budget.add_argument(
        "--latency-budget-ratio",
        type=float,
        help="budget as a fraction of the full model's measured latency (e.g. 0.5)",
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"))
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: torch's)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--per-layer", action="store_true", help="also search per-layer subnets (evolution)")
    p.add_argument("--population", type=int, default=24)
    p.add_argument("--generations", type=int, default=6)
    p.add_argument("--verify-top", type=int, default=5, help="per-layer candidates verified by measurement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    return p


class SearchRun:
    """The objects a search measures with, built from a run directory."""

    def __init__(self, run_dir: Path, setting: LatencySetting, *, progress: bool = True) -> None:
        self.run = RunDir(run_dir)
        if not self.run.config.is_file():
            raise RunError(f"'{run_dir}' is not a run directory (no config.yaml): run train.py first")
        if not (self.run.supernet / "config.json").is_file():
            raise RunError(
                f"run '{run_dir}' has no trained supernet yet: finish train.py (resume=true) first"
            )
        self.setting = setting
        self.progress = progress
        self.train_cfg = load_config(TrainConfig, self.run.config)
        self.space = SearchSpace(
            width_mults=self.train_cfg.width_mults, depth_mults=self.train_cfg.depth_mults
        )
        self.model = load_supernet(self.run.supernet).to(setting.device)
        self.arch = supernet_state(self.model).arch
        # Search ranks by the task's main metric (accuracy, Pearson, ...), read from the model's head.
        self.metric = task_kind_of_config(self.model.config).main_metric
        self.tokenizer = AutoTokenizer.from_pretrained(self.run.supernet)
        self._dev_loader: Any = None
        self._accuracy = self._load_accuracy_cache()

    # ---------------------------------------------------------------- accuracy

    @property
    def _accuracy_file(self) -> Path:
        return self.run.search / "accuracy.json"

    def _load_accuracy_cache(self) -> dict[str, float]:
        cache: dict[str, float] = {}
        if self.run.eval.is_file():
            for line in self.run.eval.read_text().splitlines():
                row = json.loads(line)
                cache[row["subnet"]] = float(row[self.metric])
        if self._accuracy_file.is_file():
            cache.update({k: float(v) for k, v in json.loads(self._accuracy_file.read_text()).items()})
        return cache

    def dev_loader(self) -> Any:
        if self._dev_loader is None:
            dev = tokenized_split(self.train_cfg, self.tokenizer)
            self._dev_loader = make_dataloader(
                dev,
                self.tokenizer,
                self.train_cfg.eval_batch_size,
                shuffle=False,
                collate_fn=task_kind_of_config(self.model.config).collator(self.tokenizer),
            )
        return self._dev_loader

    def evaluate(self, cfg: SubnetConfig) -> float:
        """Dev main metric of `cfg` (cached in eval.jsonl / search/accuracy.json)."""
        if cfg.name not in self._accuracy:
            # The model already lives on the setting's device; batches follow it there.
            self._accuracy[cfg.name] = evaluate_subnet(self.model, cfg, self._on_device(self.dev_loader()))[
                self.metric
            ]
            atomic_write_json(self._accuracy_file, {k: v for k, v in sorted(self._accuracy.items())})
        return self._accuracy[cfg.name]

    def _on_device(self, loader: Any) -> Any:
        device = torch.device(self.setting.device)
        for batch in loader:
            yield {k: v.to(device) for k, v in batch.items()}

    # ---------------------------------------------------------------- latency

    def measure(self, cfgs: list[SubnetConfig]) -> dict[str, LatencyResult]:
        """Measured latency of each subnet (cached per setting in latency/)."""
        cache = LatencyCache(self.run.root, self.setting)
        todo = [c for c in cfgs if c not in cache]
        if todo:
            if self.setting.backend == "torch":
                results = measure_subnets(self.model, todo, self.setting)
            else:
                results = [self._measure_onnx(c) for c in todo]
            for cfg, result in zip(todo, results, strict=True):
                cache.put(cfg, result)
        return {c.name: cache.get(c) for c in cfgs}  # type: ignore[misc]

    def _measure_onnx(self, cfg: SubnetConfig) -> LatencyResult:
        from supernet.export import export_subnet
        from supernet.latency import measure_onnx

        with tempfile.TemporaryDirectory() as tmp:
            report = export_subnet(self.model, cfg, Path(tmp) / "m", onnx=True)
            return measure_onnx(report.onnx_path, self.setting)

    def predictor(self) -> LatencyPredictor:
        path = self.run.latency / f"predictor-{self.setting.key}.json"
        if path.is_file():
            return LatencyPredictor.load(path)
        model = self.model
        predictor = LatencyPredictor.build(model, self.setting, space=self.space)
        predictor.save(path)
        return predictor

    def cost(self, cfg: SubnetConfig) -> tuple[int, int]:
        return count_params(self.model, cfg), count_flops(self.model, cfg, self.setting.seq_len)


def _budget(args: argparse.Namespace, full_ms: float) -> float | None:
    if args.latency_budget_ms is not None:
        return float(args.latency_budget_ms)
    if args.latency_budget_ratio is not None:
        if not 0 < args.latency_budget_ratio <= 1:
            raise RunError(f"--latency-budget-ratio must be in (0, 1], got {args.latency_budget_ratio}")
        return args.latency_budget_ratio * full_ms
    return None


def _score(metric: str, value: float) -> str:
    """A score as printed: "accuracy 70.80%", "pearson 81.20" (x 100)."""
    return f"{metric} {100 * value:.2f}" + ("%" if metric == "accuracy" else "")


def run(args: argparse.Namespace, *, log: Callable[[str], None] = print) -> int:
    cfg = SearchConfig(
        run=args.run,
        latency_budget_ms=args.latency_budget_ms,
        device=args.device,
        backend=args.backend,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        num_threads=args.threads,
        warmup=args.warmup,
        repeats=args.repeats,
        per_layer=args.per_layer,
        population=args.population,
        generations=args.generations,
        seed=args.seed,
    )
    setting = LatencySetting(
        device=cfg.device,
        backend=cfg.backend,
        batch_size=cfg.batch_size,
        seq_len=cfg.seq_len,
        num_threads=cfg.num_threads,
        warmup=cfg.warmup,
        repeats=cfg.repeats,
    )
    progress = not args.no_progress
    sr = SearchRun(Path(cfg.run), setting, progress=progress)
    grid = sr.space.grid()
    log(f"measuring {len(grid)} grid subnets on {setting.key} ...")
    measured = sr.measure(grid)
    predictor = sr.predictor() if cfg.per_layer or setting.backend == "torch" else None
    predict = predictor.predict if predictor is not None else None

    results = evaluate_grid(
        grid,
        evaluate=sr.evaluate,
        measure=lambda c: measured[c.name],
        predict=predict,
        cost=sr.cost,
        progress=progress,
        metric=sr.metric,
    )
    full_ms = measured[MAX_NET.name if MAX_NET.name in measured else grid[0].name].median_ms
    budget = _budget(args, full_ms)

    if cfg.per_layer:
        if predictor is None:
            raise RunError("--per-layer needs the torch backend's latency predictor")
        target = budget if budget is not None else full_ms
        log(f"evolutionary search over per-layer subnets, predicted latency <= {target:.2f} ms ...")
        found = evolutionary_search(
            space=sr.space,
            arch=sr.arch,
            evaluate=sr.evaluate,
            predict=predictor.predict,
            budget_ms=target,
            population=cfg.population,
            generations=cfg.generations,
            rng=random.Random(cfg.seed),
            progress=progress,
        )
        extra = [c for c, _, _ in found if not c.is_uniform][: args.verify_top]
        if extra:
            extra_measured = sr.measure(extra)
            results += evaluate_grid(
                extra,
                evaluate=sr.evaluate,
                measure=lambda c: extra_measured[c.name],
                predict=predictor.predict,
                cost=sr.cost,
                progress=progress,
                metric=sr.metric,
            )

    chosen = select_under_budget(results, budget) if budget is not None else None
    title = f"{sr.train_cfg.task}: dev {sr.metric} vs latency ({setting.key})"
    paths = write_results(results, sr.run.root, budget_ms=budget, chosen=chosen, title=title)
    if chosen is not None:
        atomic_write_json(
            sr.run.search / "chosen.json",
            {"budget_ms": budget, "setting": setting.to_dict(), **chosen.to_json()},
        )
    log(format_table(results, chosen=chosen))
    log(f"results: {paths['results']}\nplot: {paths['pareto_png']}")
    if chosen is not None:
        log(
            f"chosen under {budget:.2f} ms: {chosen.name} "
            f"(dev {_score(sr.metric, chosen.accuracy)}, {chosen.latency_ms:.2f} ms, "
            f"{chosen.params / 1e6:.2f} M params)"
        )
    return 0
