"""Accuracy against CPU latency: DynaBERT subnets versus the seed methods, from one command.

    python bench/accuracy_latency.py --config configs/rt-minilm.yaml
    python bench/accuracy_latency.py --config configs/trec-minilm.yaml --seeds 42 43 44
    python bench/accuracy_latency.py --config configs/quickstart.yaml --out /tmp/bench --no-benchmarks \\
        --finetune-steps 3 data.max_train_samples=64 teacher.max_steps=2 stage_wd.max_steps=2  # a smoke run: minutes

``key=value`` overrides apply to the preset (put them before flags that take lists, e.g. --seeds).

What it does, per seed (trained artefacts are reused when they exist, so a rerun only measures):

1. DynaBERT: `supernet.trainer.train(cfg)` on the preset (run directory = the preset's output_dir,
   `.../seed-<s>` for other seeds; with ``--out OUT``, ``OUT/supernet/seed-<s>`` unless an
   ``output_dir=`` override says otherwise). Its run holds the fine-tuned teacher, the importance scores and
   the supernet; grid accuracies come from its eval.jsonl.
2. Baselines, all from that same teacher, same data, batch size and max_length, each under
   ``<out>/<method>/seed-<s>/<model>/`` (dense model + baseline.json):
   head pruning (Michel et al. 2019; top-k heads per layer by L2-normalised gradient importance,
   then fine-tuned), layer pruning (keep the most important layers, fine-tuned), a DistilBERT-style
   student (teacher layers 0, 2, 4, ...; hard CE + soft CE at T=2 + cosine), plain layer skipping of
   the teacher (no retraining), and a LayerDrop model (`train()` with layerdrop, width 1.0 only)
   cut by layer skipping and by layer importance without retraining.
3. Dev/test accuracy of every model, then CPU latency of every model (dense, cut by
   `supernet.export.get_active_subnet`) measured interleaved in one run
   (`supernet.latency.measure_models`: batch 1, 128 tokens, pinned threads, medians).

Outputs in ``<out>`` (default ``results/<task>``): results.jsonl (one row per seed and model),
results.csv (mean and std over seeds), accuracy_latency.png (`supernet.search.plot_pareto`: the
DynaBERT grid with its Pareto line, each baseline with its own marker; dev accuracy), results.md
(the table and the PASS/MISS checks), also written into BENCHMARKS.md between
``<!-- results:<task> -->`` markers. A file of these names that the script did not write (a user's own)
is refused before any work, and kept.
"""

from __future__ import annotations

import argparse
import copy
import csv
import dataclasses
import io
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from supernet.assets import resolve_model_path  # noqa: E402
from supernet.baselines import (  # noqa: E402
    BENCHMARKS_HELP,
    DISTILBERT_LOSS,
    HARD_LABELS,
    KD_LOSS,
    BenchRow,
    Check,
    aggregate_rows,
    benchmarks_file,
    check_dominance,
    check_targets,
    cut_subnet,
    distilbert_student,
    finetune,
    format_markdown,
    layers_to_keep,
    prune_heads,
    prune_layers,
    skip_layers,
    source_subnet,
    train_batches,
    update_section,
)
from supernet.cli import (  # noqa: E402
    OneLineParser,
    at_least,
    markdown_file,
    output_folder,
    results_folder_problem,
    rows_with,
    text_starting,
    thread_count,
)
from supernet.config import (  # noqa: E402
    SINGLE_STAGE_NEUTRAL,
    ConfigError,
    StageConfig,
    TrainConfig,
    load_config,
)
from supernet.convert import supernet_state, to_supernet  # noqa: E402
from supernet.cost import count_flops  # noqa: E402
from supernet.data import PACKAGED_TASKS, DataError, make_dataloader, tokenize_task  # noqa: E402
from supernet.distill import LossWeights  # noqa: E402
from supernet.elastic.depth import kept_layers  # noqa: E402
from supernet.export import load_exported, save_exported  # noqa: E402
from supernet.importance import ImportanceScores, compute_importance, layer_importance  # noqa: E402
from supernet.io import RunDir, atomic_dir, atomic_write_json, atomic_write_text, read_jsonl  # noqa: E402
from supernet.latency import (  # noqa: E402
    LOAD_BOUND_CORES,
    SPREAD_BOUND,
    LatencySetting,
    LatencyWarning,
    load_warning,
    measure_models,
)
from supernet.profile_kit_script import cpu_description  # noqa: E402
from supernet.recipes import RECIPES  # noqa: E402
from supernet.search import SubnetResult, plot_pareto  # noqa: E402
from supernet.subnet import MAX_NET, SubnetConfig  # noqa: E402
from supernet.tracking import stage_seconds  # noqa: E402
from supernet.trainer import (  # noqa: E402
    RunError,
    TrainingError,
    config_changes,
    elastic_steps,
    evaluate_subnet,
    load_supernet,
    task_from_config,
    train,
)

REPO = Path(__file__).resolve().parents[1]
METHODS = ("layer-skipping", "head-pruning", "layer-pruning", "distilbert", "layerdrop")
PRUNING_LOSSES = {"kd": "hard CE + soft CE from the teacher (T=1)", "ce": "hard CE"}
LABELS = {
    "teacher": "teacher (fine-tuned)",
    "dynabert": "DynaBERT",
    "layer-skipping": "layer skipping, no retraining",
    "head-pruning": "head pruning (Michel+ 2019)",
    "layer-pruning": "layer pruning (importance)",
    "distilbert": "DistilBERT-style (Sanh+ 2019)",
    "layerdrop": "LayerDrop (Fan+ 2019), no retraining",
}


@dataclasses.dataclass
class Entry:
    """A model of the comparison before its latency is measured."""

    method: str
    model: str
    dense: nn.Module
    spec: SubnetConfig
    dev: float
    test: float
    train_seconds: float | None
    note: str = ""
    detail: str = ""


# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def task_slug(task: str) -> str:
    return task if task in PACKAGED_TASKS else Path(task).stem


def dynabert_dir(cfg: TrainConfig, seed: int) -> Path:
    """The preset's output_dir for its own seed; ``.../seed-<s>`` (or ``<dir>-seed<s>``) for others."""
    path = Path(cfg.output_dir)
    if seed == cfg.seed:
        return path
    if path.name == f"seed-{cfg.seed}":
        return path.parent / f"seed-{seed}"
    return path.with_name(f"{path.name}-seed{seed}")


def supernet_label(recipe: str) -> str:
    """How the tables name the supernet's subnets: "DynaBERT" for its schedule, else the recipe."""
    return "DynaBERT" if recipe == "dynabert" else f"supernet ({recipe})"


def ensure_trained(cfg: TrainConfig, *, progress: bool) -> None:
    """Train the run `cfg` describes, or reuse it when it is complete and was made with the same config."""
    run = RunDir(Path(cfg.output_dir))
    if run.config.exists():
        diffs = config_changes(run, cfg)
        if diffs:
            raise RunError(
                f"{run.root} was trained with another config ({'; '.join(diffs)}); "
                f"delete it or pass another output_dir / --out"
            )
        if (run.supernet / "config.json").is_file() and run.eval.is_file():
            log(f"reusing {run.root}")
            return
    log(f"training {run.root}")
    train(cfg, progress=progress)


def fingerprint(folder: Path) -> str:
    """Size and modification time of a model folder's weights: changes when the model is retrained."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        path = folder / name
        if path.is_file():
            stat = path.stat()
            return f"{name}:{stat.st_size}:{stat.st_mtime_ns}"
    return "unknown"


def _layers_detail(layers: Sequence[int]) -> str:
    return "layers " + ",".join(map(str, layers))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- one seed


class SeedRun:
    """Everything of one seed: the DynaBERT run, the shared data and teacher, the baselines."""

    def __init__(self, args: argparse.Namespace, base: TrainConfig, seed: int, root: Path) -> None:
        self.args = args
        self.seed = seed
        self.root = root
        self.cfg = dataclasses.replace(base, seed=seed, output_dir=str(dynabert_dir(base, seed)), resume=True)
        self.run = RunDir(Path(self.cfg.output_dir))
        self.progress = not args.no_progress
        self.load: dict[str, object] = {}
        """The machine's load while this seed's models were timed (set by `rows`)."""

    # ---------------------------------------------------------------- setup

    def prepare(self) -> None:
        cfg = self.cfg
        ensure_trained(cfg, progress=self.progress)
        if cfg.teacher.path is not None:
            self.teacher_dir = resolve_model_path(cfg.teacher.path, "teacher.path")
        elif (self.run.teacher / "config.json").is_file():
            self.teacher_dir = self.run.teacher
        else:  # the model was already task-tuned and served as the teacher as is
            self.teacher_dir = resolve_model_path(cfg.model)
        self.teacher = AutoModelForSequenceClassification.from_pretrained(self.teacher_dir).eval()
        self.teacher.requires_grad_(False)
        self.teacher_sn = to_supernet(copy.deepcopy(self.teacher))
        self.arch = supernet_state(self.teacher_sn).arch

        self.task = task_from_config(cfg, self.run)  # split as the run was (a run before 2026-12-01 too)
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(cfg.model))
        self.tokenized = tokenize_task(self.task, self.tokenizer, cfg.data.max_length)
        self.loaders = {
            split: make_dataloader(self.tokenized[split], self.tokenizer, cfg.eval_batch_size, shuffle=False)
            for split in ("dev", "test")
        }
        n_train = len(self.tokenized["train"])
        supernet_steps = elastic_steps(cfg, n_train)
        self.steps = self.args.finetune_steps or supernet_steps
        self.supernet_steps = supernet_steps
        self.lr = self.args.finetune_lr or cfg.learning_rate
        self.times = stage_seconds(self.run.root)

    def evaluate(self, model: nn.Module) -> tuple[float, float]:
        dev = evaluate_subnet(model, None, self.loaders["dev"])["accuracy"]
        test = evaluate_subnet(model, None, self.loaders["test"])["accuracy"]
        return dev, test

    def importance(self) -> ImportanceScores:
        if self.run.importance.is_file():
            return ImportanceScores.load(self.run.importance)
        path = self.root / "importance" / f"seed-{self.seed}.safetensors"
        if not path.is_file():
            log("computing the teacher's importance scores on dev")
            scores = compute_importance(self.teacher_sn, self.dev_batches())
            path.parent.mkdir(parents=True, exist_ok=True)
            scores.save(path)
        return ImportanceScores.load(path)

    def dev_batches(self) -> list[dict[str, torch.Tensor]]:
        batches = list(self.loaders["dev"])
        n = self.cfg.importance.num_batches
        return batches if n is None else batches[:n]

    # ---------------------------------------------------------------- reference rows

    def teacher_entry(self) -> Entry:
        evals = json.loads((self.run.root / "teacher_eval.json").read_text())
        seconds = self.times.get("teacher")
        return Entry(
            method="teacher",
            model=Path(self.cfg.model).name,
            dense=self.teacher,
            spec=MAX_NET,
            dev=evals["dev"]["accuracy"],
            test=evals["test"]["accuracy"],
            train_seconds=seconds,
            note="fine-tuning; every method starts from it" if seconds is not None else "given",
        )

    def dynabert_entries(self) -> list[Entry]:
        sn = load_supernet(self.run.supernet)
        seconds = sum(v for k, v in self.times.items() if k in ("stage_w", "stage_wd", "final")) or None
        out = []
        names = {"stage_w": "stage W", "stage_wd": "stage W x D"}
        stages = " + ".join(names[plan.name] for plan in RECIPES[self.cfg.recipe].stages)
        for row in read_jsonl(self.run.eval):
            cfg = SubnetConfig.from_dict(row["spec"])
            out.append(
                Entry(
                    method="dynabert",
                    model=row["subnet"],
                    dense=cut_subnet(sn, cfg),
                    spec=cfg,
                    dev=row["accuracy"],
                    test=row["test_accuracy"],
                    train_seconds=seconds,
                    note=f"{stages}, shared by all subnets",
                )
            )
        return out

    # ---------------------------------------------------------------- baselines

    def trained(
        self,
        method: str,
        model: str,
        build: Callable[[], nn.Module],
        recipe: dict[str, Any],
        *,
        teacher: nn.Module | None,
        weights: LossWeights,
    ) -> Entry:
        """A fine-tuned baseline: reuse ``<out>/<method>/seed-<s>/<model>/`` or build, train, save it."""
        folder = self.root / method / f"seed-{self.seed}" / model
        meta_path = folder / "baseline.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
        if meta is not None and meta["recipe"] != recipe:
            changed = sorted(
                k for k in recipe.keys() | meta["recipe"].keys() if recipe.get(k) != meta["recipe"].get(k)
            )
            log(f"{folder}: recipe changed ({', '.join(changed)}), retraining")
            meta = None
        if meta is not None and not (folder / "config.json").is_file():
            # The results are committed, the weights are not: a fresh clone trains the model again.
            log(f"{folder} holds the baseline's results but not its weights (not kept in git), retraining")
            meta = None
        if meta is not None:
            log(f"reusing {folder}")
            dense = load_exported(folder)
        else:
            log(f"training {method} {model} for {recipe['steps']} steps")
            dense = build()
            batches = train_batches(
                self.tokenized["train"],
                self.tokenizer,
                self.cfg.batch_size * self.cfg.gradient_accumulation_steps,
                seed=self.seed,
                stage=f"baseline-{method}",
            )
            result = finetune(
                dense,
                batches,
                steps=recipe["steps"],
                learning_rate=recipe["learning_rate"],
                teacher=teacher,
                weights=weights,
                weight_decay=self.cfg.weight_decay,
                warmup_ratio=self.cfg.warmup_ratio,
                max_grad_norm=self.cfg.max_grad_norm,
                seed=self.seed,
                progress=self.progress,
                desc=f"{method} {model}",
            )
            dev, test = self.evaluate(dense)
            meta = {
                "method": method,
                "model": model,
                "spec": source_subnet(dense).to_dict(),
                "recipe": recipe,
                "train_seconds": result.seconds,
                "first_loss": result.mean_loss(first=True),
                "last_loss": result.mean_loss(first=False),
                "dev_accuracy": dev,
                "test_accuracy": test,
            }
            with atomic_dir(folder, replace=True) as tmp:
                save_exported(dense, tmp, tokenizer=self.tokenizer)
                atomic_write_json(tmp / "baseline.json", meta)
            log(
                f"{method} {model}: loss {meta['first_loss']:.3f} -> {meta['last_loss']:.3f}, dev {100 * dev:.2f}%"
            )
        return Entry(
            method=method,
            model=model,
            dense=dense.eval(),
            spec=source_subnet(dense),
            dev=meta["dev_accuracy"],
            test=meta["test_accuracy"],
            train_seconds=meta["train_seconds"],
            note="fine-tuning",
        )

    def cut(
        self, method: str, model: str, dense: nn.Module, source: str, seconds: float | None, note: str
    ) -> Entry:
        """A baseline without retraining: accuracy cached in ``<out>/<method>/seed-<s>/<model>/baseline.json``."""
        meta_path = self.root / method / f"seed-{self.seed}" / model / "baseline.json"
        spec = source_subnet(dense)
        recipe = {"source": source, "source_weights": fingerprint(Path(source)), "spec": spec.to_dict()}
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
        if meta is None or meta["recipe"] != recipe:
            dev, test = self.evaluate(dense)
            meta = {
                "method": method,
                "model": model,
                "recipe": recipe,
                "dev_accuracy": dev,
                "test_accuracy": test,
            }
            atomic_write_json(meta_path, meta)
        return Entry(method, model, dense, spec, meta["dev_accuracy"], meta["test_accuracy"], seconds, note)

    def finetune_recipe(self, loss: str) -> dict[str, Any]:
        return {
            "teacher": str(self.teacher_dir),
            "teacher_weights": fingerprint(self.teacher_dir),
            "steps": self.steps,
            "learning_rate": self.lr,
            "batch_size": self.cfg.batch_size * self.cfg.gradient_accumulation_steps,
            "max_length": self.cfg.data.max_length,
            "loss": loss,
        }

    def baselines(self) -> list[Entry]:
        args, arch = self.args, self.arch
        out: list[Entry] = []
        depths = [d for d in self.cfg.depth_mults if d < 1.0]
        pruning_loss = KD_LOSS if args.pruning_loss == "kd" else HARD_LABELS
        pruning_teacher = self.teacher if args.pruning_loss == "kd" else None
        if "layer-skipping" in args.methods:
            for d in depths:
                out.append(
                    self.cut(
                        "layer-skipping",
                        f"d{d:.2f}",
                        skip_layers(self.teacher, d),
                        str(self.teacher_dir),
                        None,
                        "",
                    )
                )
        scores = self.importance() if {"head-pruning", "layer-pruning"} & set(args.methods) else None
        if "head-pruning" in args.methods and scores is not None:
            keeps = args.head_keep or [round(arch.num_heads * w) for w in self.cfg.width_mults if w < 1.0]
            for k in keeps:
                out.append(
                    self.trained(
                        "head-pruning",
                        f"heads-{k}",
                        lambda k=k: prune_heads(self.teacher, scores, k),
                        self.finetune_recipe(PRUNING_LOSSES[args.pruning_loss]) | {"keep_heads": k},
                        teacher=pruning_teacher,
                        weights=pruning_loss,
                    )
                )
        if "layer-pruning" in args.methods and scores is not None:
            keeps = args.layer_keep or [len(kept_layers(arch.num_layers, d)) for d in depths]
            for k in keeps:
                layers = layers_to_keep(scores.layer, k)
                entry = self.trained(
                    "layer-pruning",
                    f"layers-{k}",
                    lambda layers=layers: prune_layers(self.teacher, layers),
                    self.finetune_recipe(PRUNING_LOSSES[args.pruning_loss]) | {"layers": list(layers)},
                    teacher=pruning_teacher,
                    weights=pruning_loss,
                )
                out.append(dataclasses.replace(entry, detail=_layers_detail(layers)))
        if "distilbert" in args.methods:
            layers = tuple(range(0, arch.num_layers, 2))
            out.append(
                self.trained(
                    "distilbert",
                    f"layers-{'-'.join(map(str, layers))}",
                    lambda: distilbert_student(self.teacher, layers),
                    self.finetune_recipe("hard CE + soft CE (T=2) + cosine(last hidden)")
                    | {"layers": list(layers)},
                    teacher=self.teacher,
                    weights=DISTILBERT_LOSS,
                )
            )
        if "layerdrop" in args.methods:
            out += self.layerdrop(depths)
        return out

    def layerdrop(self, depths: Sequence[float]) -> list[Entry]:
        """Train a LayerDrop model (width 1.0 only) with the trainer, then cut it without retraining."""
        cfg = self.cfg
        ld_cfg = dataclasses.replace(
            cfg,
            output_dir=str(self.root / "layerdrop" / f"seed-{self.seed}" / "run"),
            width_mults=(1.0,),
            depth_mults=(1.0,),  # one LayerDrop sample per step
            layerdrop=self.args.layerdrop,
            layerdrop_depth_scaled=False,
            recipe="layerdrop",
            **SINGLE_STAGE_NEUTRAL,  # the preset's single-stage options: config refuses them here
            teacher=dataclasses.replace(cfg.teacher, path=str(self.teacher_dir)),
            importance=dataclasses.replace(cfg.importance, enabled=False),
            stage_w=StageConfig(epochs=0.0),  # the trainer's minimum, 1 step
            stage_wd=StageConfig(max_steps=self.steps, learning_rate=cfg.stage_wd.learning_rate),
            final_finetune=StageConfig(epochs=0.0),
        )
        ensure_trained(ld_cfg, progress=self.progress)
        run = RunDir(Path(ld_cfg.output_dir))
        model = load_supernet(run.supernet)
        seconds = sum(stage_seconds(run.root).values()) or None
        source = str(run.supernet)
        note = "LayerDrop training, shared"
        out = [self.cut("layerdrop", "full", cut_subnet(model, MAX_NET), source, seconds, note)]
        for d in depths:
            out.append(self.cut("layerdrop", f"skip-d{d:.2f}", skip_layers(model, d), source, seconds, note))
        imp_path = run.root / "layer_importance.json"  # inside the run: deleted with it
        if imp_path.is_file():
            scores = torch.tensor(json.loads(imp_path.read_text())["layer"])
        else:
            scores = layer_importance(model, self.dev_batches())
            atomic_write_json(imp_path, {"layer": scores.tolist()})
        for d in depths:
            layers = layers_to_keep(scores, len(kept_layers(self.arch.num_layers, d)))
            entry = self.cut(
                "layerdrop", f"imp-layers-{len(layers)}", prune_layers(model, layers), source, seconds, note
            )
            out.append(dataclasses.replace(entry, detail=_layers_detail(layers)))
        return out

    # ---------------------------------------------------------------- all

    def entries(self) -> list[Entry]:
        """Every model of the seed, trained (or reused) and scored on dev and test; nothing timed yet."""
        self.prepare()
        return [self.teacher_entry(), *self.dynabert_entries(), *self.baselines()]

    def rows(self, setting: LatencySetting) -> list[BenchRow]:
        entries = self.entries()
        log(f"seed {self.seed}: measuring the latency of {len(entries)} models, interleaved")
        models = {f"{e.method}/{e.model}": e.dense for e in entries}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LatencyWarning)  # summarised in one line below
            latency = measure_models(models, setting, rounds=self.args.rounds, progress=True)
        # One interleaved run: its load is every model's; the notes under the table report it.
        first = next(iter(latency.values()))
        self.load = {
            "other_cpu": first.other_cpu,
            "load_avg": first.load_avg,
            "spread_flagged": sorted(name for name, r in latency.items() if "spread" in r.flags),
        }
        line = load_warning(latency)
        if line is not None:
            log(f"warning: {line}")
        rows = []
        for e in entries:
            lat = latency[f"{e.method}/{e.model}"]
            rows.append(
                BenchRow(
                    method=e.method,
                    model=e.model,
                    dev_accuracy=e.dev,
                    test_accuracy=e.test,
                    latency_ms=lat.median_ms,
                    params=n_params(e.dense),
                    flops=count_flops(self.teacher_sn, e.spec, setting.seq_len),
                    train_seconds=e.train_seconds,
                    train_note=e.note,
                    spec=e.spec.to_dict(),
                    detail=e.detail,
                    seed=self.seed,
                )
            )
        # Free this seed's models before the next seed loads its own.
        del self.teacher, self.teacher_sn, self.tokenized, self.loaders
        return rows


# --------------------------------------------------------------------------- outputs


def write_csv(path: Path, rows: Sequence[BenchRow]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "method",
            "model",
            "n_seeds",
            "dev_acc",
            "dev_acc_std",
            "test_acc",
            "test_acc_std",
            "latency_ms",
            "latency_ms_std",
            "params",
            "flops",
            "train_seconds",
            "train_seconds_std",
        ]
    )
    for r in rows:
        writer.writerow(
            [
                r.method,
                r.model,
                r.n_seeds,
                f"{r.dev_accuracy:.6f}",
                f"{r.dev_accuracy_std:.6f}",
                f"{r.test_accuracy:.6f}",
                f"{r.test_accuracy_std:.6f}",
                f"{r.latency_ms:.4f}",
                f"{r.latency_ms_std:.4f}",
                r.params,
                r.flops,
                "" if r.train_seconds is None else f"{r.train_seconds:.1f}",
                f"{r.train_seconds_std:.1f}",
            ]
        )
    atomic_write_text(path, buf.getvalue())


def write_plot(path: Path, rows: Sequence[BenchRow], title: str) -> None:
    dyna = [
        SubnetResult(
            subnet=SubnetConfig.from_dict(r.spec),
            name=r.model,
            accuracy=r.dev_accuracy,
            latency_ms=r.latency_ms,
            predicted_ms=None,
            params=r.params,
            flops=r.flops,
        )
        for r in rows
        if r.method == "dynabert"
    ]
    series: dict[str, list[tuple[str, float, float]]] = {}
    for r in rows:
        if r.method != "dynabert":
            series.setdefault(LABELS.get(r.method, r.method), []).append(
                (r.model, r.latency_ms, r.dev_accuracy)
            )
    plot_pareto(dyna, None, path, title=title, baselines=series)


def notes(
    args: argparse.Namespace, cfg: TrainConfig, runs: Sequence[SeedRun], setting: LatencySetting
) -> list[str]:
    first = runs[0]
    threads = "default" if setting.num_threads is None else setting.num_threads
    seeds = ", ".join(str(r.seed) for r in runs)
    budget = (
        f"{first.steps} optimizer steps of batch {cfg.batch_size * cfg.gradient_accumulation_steps} x "
        f"{cfg.data.max_length} tokens at lr {first.lr:g}"
    )
    if not args.finetune_steps:
        budget += f" (= the steps of the supernet's elastic stages, {first.supernet_steps})"
    loss = PRUNING_LOSSES[args.pruning_loss]
    loads = []
    for r in runs:
        load = r.load
        other, spread = load.get("other_cpu"), load.get("spread_flagged") or []
        # Rows are keyed "dynabert/<subnet>" whatever the recipe; name them as the table does.
        spread = [
            f"{supernet_label(cfg.recipe)}/{n.split('/', 1)[1]}" if n.startswith("dynabert/") else n
            for n in spread
        ]
        verdict = (
            "not recorded"
            if other is None
            else f"other processes took {float(other):.2f} cores "
            + ("(FLAGGED: above" if float(other) > LOAD_BOUND_CORES else "(within")
            + f" the {LOAD_BOUND_CORES:.2f}-core bound)"
        )
        if load.get("load_avg") is not None:
            verdict += f", 1-min load average {load['load_avg']:.2f}"
        if spread:
            verdict += (
                f"; p10-p90 spread above {100 * SPREAD_BOUND:.0f}% of the median for {', '.join(spread)}"
            )
        loads.append(f"seed {r.seed}: {verdict}")
    return [
        f"Config `{args.config}`{' with ' + ' '.join(args.overrides) if args.overrides else ''}; "
        f"model `{cfg.model}`, task `{cfg.task}`; seeds {seeds}"
        + (" (mean ± std over seeds; the checks use the means)" if len(runs) > 1 else "")
        + ". Accuracy in % on the dev and test splits; the checks use test accuracy.",
        f"Latency: CPU ({cpu_description()}), torch eager, batch {setting.batch_size}, {setting.seq_len} tokens, "
        f"{threads} thread(s), median of {setting.repeats} forward passes after {setting.warmup} warm-up calls; "
        f"all models of a seed measured interleaved in one run ({args.rounds} rounds), every model dense "
        f"(cut with `get_active_subnet`). GFLOPs: encoder matmuls of one {setting.seq_len}-token sequence.",
        f"Machine load while timing: {'; '.join(loads)}. A flagged run may carry time lost to other work: "
        "remeasure it on an idle machine.",
        f"Baseline fine-tuning budget: {budget}; head and layer pruning use {loss}. "
        "Train time excludes the teacher's fine-tuning (its own row), which every method starts from.",
    ]


def check_keeps(args: argparse.Namespace, base: TrainConfig) -> None:
    """--head-keep and --layer-keep against the model, before any training (they failed after the
    DynaBERT run had trained: about an hour on the presets).

    Raises:
        RunError: a count the model cannot keep.
    """
    if not args.head_keep and not args.layer_keep:
        return
    config = AutoConfig.from_pretrained(resolve_model_path(base.model))
    for flag, keeps, most in (
        ("--head-keep", args.head_keep or [], config.num_attention_heads),
        ("--layer-keep", args.layer_keep or [], config.num_hidden_layers),
    ):
        too_many = [k for k in keeps if k > most]
        if too_many:
            raise RunError(f"{flag} {' '.join(map(str, too_many))}: the model has {most}, keep at most that")


_OUR_TABLE = text_starting("### ", "| method | model | dev acc % | test acc % | latency ms |")
# The files main writes in its results folder, each with a check that an existing one is its own (it
# replaces those, and no file of the user's): the plot counts as ours when the table beside it is.
OURS = {
    "results.jsonl": rows_with("method", "model", "latency_ms", "n_seeds"),
    "results.csv": text_starting("method,model,n_seeds,dev_acc,"),
    "results.md": _OUR_TABLE,
    "accuracy_latency.png": lambda path: _OUR_TABLE(path.with_name("results.md")),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the DynaBERT preset (TrainConfig YAML)")
    parser.add_argument(
        "overrides", nargs="*", help="key=value config overrides (e.g. data.max_train_samples=64)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: the config's)")
    parser.add_argument(
        "--out",
        type=output_folder,
        default=None,
        help="results folder (default results/<task>); with it, the supernet's run goes to "
        "OUT/supernet/seed-<s> unless output_dir= is given",
    )
    parser.add_argument("--benchmarks", default=None, type=markdown_file, help=BENCHMARKS_HELP)
    parser.add_argument("--no-benchmarks", action="store_true", help="do not update the BENCHMARKS.md file")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--head-keep", type=at_least(1), nargs="+", default=None, help="heads kept per layer (default 9 6 3)"
    )
    parser.add_argument(
        "--layer-keep", type=at_least(1), nargs="+", default=None, help="layers kept (default 4 3)"
    )
    parser.add_argument("--layerdrop", type=float, default=0.2, help="LayerDrop rate of the LayerDrop model")
    parser.add_argument(
        "--pruning-loss", choices=("kd", "ce"), default="kd", help="fine-tuning loss of pruning"
    )
    parser.add_argument(
        "--finetune-steps", type=at_least(1), default=None, help="baseline steps (default: supernet's)"
    )
    parser.add_argument("--finetune-lr", type=float, default=None, help="baseline lr (default: config's)")
    parser.add_argument("--threads", type=thread_count, default=1, help="intra-op threads while timing")
    parser.add_argument("--batch-size", type=at_least(1), default=1, help="latency batch size")
    parser.add_argument("--seq-len", type=at_least(1), default=128, help="latency sequence length")
    parser.add_argument("--warmup", type=at_least(0), default=10)
    parser.add_argument("--repeats", type=at_least(1), default=50)
    parser.add_argument(
        "--rounds",
        type=at_least(1),
        default=25,
        help="passes over the models (default 25: 2 timed calls per model per pass); the more passes, "
        "the more moments of the machine's drifting speed each model's median pools",
    )
    parser.add_argument("--latency-tolerance", type=float, default=0.03, help="relative slack of 'as fast'")
    parser.add_argument(
        "--train-only",
        action="store_true",
        help="train and score every model, then stop: time them later, on an idle machine, with the same "
        "command without this flag (it reuses what was trained)",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    try:
        base = load_config(TrainConfig, args.config, args.overrides)
        if args.out is not None and not any(o.startswith("output_dir=") for o in args.overrides):
            # --out holds the whole bench, the supernet's run too: the preset's output_dir (under
            # results/<task>, or the user's own runs/quickstart) is for runs without --out.
            base = dataclasses.replace(
                base, output_dir=str(Path(args.out) / "supernet" / f"seed-{base.seed}")
            )
        check_keeps(args, base)
        setting = LatencySetting(
            batch_size=args.batch_size,
            seq_len=args.seq_len,
            num_threads=args.threads,
            warmup=args.warmup,
            repeats=args.repeats,
        )
        slug = task_slug(base.task)
        root = Path(args.out) if args.out else Path("results") / slug
        # --out was checked as it was parsed; the default folder is checked here, and the files in either.
        problem = results_folder_problem(root, OURS)
        if problem is not None:
            raise RunError(problem)
        seeds = args.seeds or [base.seed]
        started = time.perf_counter()
        runs, per_seed = [], []
        for seed in seeds:
            log(f"seed {seed}")
            run = SeedRun(args, base, seed, root)
            if args.train_only:
                for e in run.entries():
                    log(
                        f"seed {seed}: {e.method} {e.model}: dev {100 * e.dev:.2f}%, test {100 * e.test:.2f}%"
                    )
                continue
            per_seed += run.rows(setting)
            runs.append(run)
    except (ConfigError, DataError, RunError, TrainingError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.train_only:
        log(f"trained in {time.perf_counter() - started:.0f} s; nothing timed or written (--train-only)")
        return 0

    atomic_write_text(root / "results.jsonl", "".join(json.dumps(r.to_json()) + "\n" for r in per_seed))
    rows = aggregate_rows(per_seed)
    write_csv(root / "results.csv", rows)
    title = f"{slug}: {base.model}"
    checks: list[Check] = check_targets(rows) + check_dominance(
        rows, latency_tolerance=args.latency_tolerance
    )
    # The supernet's rows and checks carry its recipe's name: DynaBERT's schedule or another one.
    label = supernet_label(base.recipe)
    checks = [dataclasses.replace(c, name=c.name.replace("DynaBERT", label)) for c in checks]
    labels = {**LABELS, "dynabert": label}
    md = format_markdown(rows, checks, title=title, notes=notes(args, base, runs, setting), labels=labels)
    md += "\nPlot: `accuracy_latency.png`; rows: `results.jsonl` (per seed), `results.csv` (over seeds), next to `results.md`.\n"
    atomic_write_text(root / "results.md", md)
    # After its table: the plot counts as the script's own by the table beside it (OURS).
    write_plot(root / "accuracy_latency.png", rows, f"{title}, dev accuracy vs latency ({setting.words})")
    path = benchmarks_file(args, REPO / "BENCHMARKS.md")
    if path is not None:
        if not update_section(path, slug, md, new_file="# Benchmarks\n"):
            return 2
        log(f"updated {path} section '{slug}'")
    print(md)
    for c in checks:
        print(f"{c.status:5} {c.name}: {c.detail}")
    log(f"done in {time.perf_counter() - started:.0f} s; results in {root}")
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))
