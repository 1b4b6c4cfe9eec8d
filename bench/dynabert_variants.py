"""Why does one DynaBERT subnet miss its target? Retrain stage W x D with changes, one at a time.

    python bench/dynabert_variants.py --config configs/rt-minilm-dynabert.yaml --subnet w0.25-d0.50 \\
        --variant teacher-full distill.teacher_width=full --variant wd-3ep stage_wd.epochs=3 \\
        --finetune

The preset's run (its ``output_dir``, trained by ``train.py`` or ``bench/accuracy_latency.py``; one
that accuracy_latency.py trained under its ``--out OUT`` is at ``OUT/supernet/seed-<s>``: pass
``output_dir=`` that) is the reference. For it the script reports the subnet as stage W left it (cut from ``stage_w/``,
no stage W x D) and as the finished supernet has it. Then, per ``--variant NAME key=value ...``,
a run ``<output_dir>-variants/<NAME>/`` that **shares the reference's teacher, importance scores
and stage-W network** (copied in, so only what the variant changes is retrained) when the changed
keys only concern stage W x D (``stage_wd.*``, ``distill.teacher_width``, ``final_finetune.*``);
any other change retrains everything but the teacher. ``--finetune`` adds the subnet cut dense
from the reference supernet and fine-tuned on its own (hard CE + soft CE from the teacher, the
pruning baselines' loss and step budget of ``bench/accuracy_latency.py``).

Existing variant runs are reused, so a rerun only evaluates. Output: a markdown table on stdout
and in ``<output_dir>-variants/variants.md``, and a section of BENCHMARKS.md between
``<!-- results:variants-<task> -->`` markers (``--no-benchmarks`` to leave it alone).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

from transformers import AutoModelForSequenceClassification, AutoTokenizer  # noqa: E402

from supernet.assets import resolve_model_path  # noqa: E402
from supernet.baselines import KD_LOSS, cut_subnet, finetune, train_batches, update_section  # noqa: E402
from supernet.cli import OneLineParser, at_least, markdown_file  # noqa: E402
from supernet.config import (  # noqa: E402
    ConfigError,
    TrainConfig,
    config_to_dict,
    diff_configs,
    load_config,
    save_config,
)
from supernet.data import make_dataloader, tokenize_task  # noqa: E402
from supernet.io import RunDir, atomic_write_json, atomic_write_text  # noqa: E402
from supernet.subnet import SearchSpace, SubnetConfig  # noqa: E402
from supernet.tracking import stage_seconds  # noqa: E402
from supernet.trainer import elastic_steps, evaluate_subnet, load_supernet, task_from_config, train  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Keys whose change leaves teacher, importance and stage W as they are: the variant reuses them.
STAGE_WD_KEYS = ("stage_wd", "distill.teacher_width", "distill.depth_pairing", "final_finetune")
# Keys whose change leaves the fine-tuned teacher (and its importance scores) as it is.
TEACHER_KEYS = ("model", "task", "data", "teacher", "importance", "seed")


def log(message: str) -> None:
    print(f"[variants] {message}", flush=True)


def _under(key: str, prefixes: Sequence[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def changed_keys(base: TrainConfig, variant: TrainConfig) -> list[str]:
    return [
        line.split(":", 1)[0]
        for line in diff_configs(
            config_to_dict(base), config_to_dict(variant), ignore=("resume", "output_dir")
        )
    ]


def prepare_variant(base: TrainConfig, variant: TrainConfig) -> list[str]:
    """Copy the reference run's reusable artefacts into the variant's run; return what was shared."""
    src, dst = RunDir(Path(base.output_dir)), RunDir(Path(variant.output_dir))
    if dst.config.exists():
        return []
    keys = changed_keys(base, variant)
    shared: list[Path] = []
    if not any(_under(k, TEACHER_KEYS) for k in keys):
        shared += [src.teacher, src.importance, src.root / "teacher_eval.json"]
        if all(_under(k, STAGE_WD_KEYS) for k in keys):
            shared.append(src.stage_w)
    dst.root.mkdir(parents=True, exist_ok=True)
    for path in shared:
        target = dst.root / path.name
        if path.is_dir():
            shutil.copytree(path, target, dirs_exist_ok=True)
        elif path.is_file():
            shutil.copy2(path, target)
    if shared and src.inputs.is_file():
        # With the reference's teacher goes its split (and its rule: an older run has no inputs.json).
        shutil.copy2(src.inputs, dst.inputs)
    # The run directory needs its config before the copies make it "not a run directory".
    save_config(dataclasses.replace(variant, resume=True), dst.config)
    return [p.name for p in shared]


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the reference preset (TrainConfig YAML)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the reference preset")
    parser.add_argument("--subnet", default="w0.25-d0.50", help="the subnet to study (name like w0.25-d0.50)")
    parser.add_argument(
        "--variant",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "KEY=VALUE"),
        help="a variant: its name, then the overrides that make it (repeatable)",
    )
    parser.add_argument("--finetune", action="store_true", help="also fine-tune the cut subnet on its own")
    parser.add_argument(
        "--finetune-steps", type=at_least(1), default=None, help="default: stage W + W x D steps"
    )
    parser.add_argument(
        "--benchmarks",
        type=markdown_file,
        default=None,  # not REPO/BENCHMARKS.md: argparse would check it even with --no-benchmarks
        help="markdown file whose variants-<task> section to update (default: the repository's BENCHMARKS.md)",
    )
    parser.add_argument("--no-benchmarks", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    progress = not args.no_progress

    try:
        base = load_config(TrainConfig, args.config, args.overrides)
        subnet = SubnetConfig.from_name(
            args.subnet, SearchSpace(width_mults=base.width_mults, depth_mults=base.depth_mults)
        )
        variants = []
        for name, *overrides in args.variant:
            if not overrides:
                raise ConfigError(f"--variant {name}: give at least one key=value override")
            out = str(Path(f"{base.output_dir}-variants") / name)
            cfg = load_config(TrainConfig, args.config, [*args.overrides, *overrides, f"output_dir={out}"])
            cfg = dataclasses.replace(cfg, resume=True)
            variants.append((name, overrides, cfg))
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    ref = RunDir(Path(base.output_dir))
    if not (ref.supernet / "config.json").is_file():
        again = " ".join(["python train.py --config", str(args.config), *args.overrides])
        print(f"error: {ref.root} is not a finished run; train it first: {again}", file=sys.stderr)
        return 2
    if not (ref.stage_w / "config.json").is_file():
        print(
            f"error: {ref.root} has no stage_w/ (recipe {base.recipe} has no stage W): the variants restart "
            "stage W x D from stage W; pass a run of a two-stage recipe, e.g. --config "
            "configs/rt-minilm-dynabert.yaml",
            file=sys.stderr,
        )
        return 2

    task = task_from_config(base, ref)  # split as the reference run was
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(base.model))
    tokenized = tokenize_task(task, tokenizer, base.data.max_length)
    loaders = {
        s: make_dataloader(tokenized[s], tokenizer, base.eval_batch_size, shuffle=False)
        for s in ("dev", "test")
    }

    def accuracy(model, cfg) -> tuple[float, float]:
        return tuple(evaluate_subnet(model, cfg, loaders[s])["accuracy"] for s in ("dev", "test"))

    teacher_eval = json.loads((ref.root / "teacher_eval.json").read_text())
    t_dev, t_test = teacher_eval["dev"]["accuracy"], teacher_eval["test"]["accuracy"]
    ref_times = stage_seconds(ref.root)
    rows: list[dict] = []

    def add(name: str, what: str, dev: float, test: float, seconds: float | None) -> None:
        rows.append({"variant": name, "what": what, "dev": dev, "test": test, "train_seconds": seconds})
        log(f"{name}: dev {100 * dev:.2f}%  test {100 * test:.2f}%")

    stage_w_net = load_supernet(ref.stage_w)
    add(
        "stage W only",
        "the stage-W network cut at the subnet (no stage W x D)",
        *accuracy(stage_w_net, subnet),
        ref_times.get("stage_w"),
    )
    if subnet.depth_mult is not None and subnet.depth_mult < 1.0:
        full_depth = dataclasses.replace(subnet, depth_mult=1.0)
        add(
            "stage W only, full depth",
            f"the stage-W network at {full_depth.name}: the subnet's stage-W x D teacher (teacher_width=same)",
            *accuracy(stage_w_net, full_depth),
            None,
        )
    reference = load_supernet(ref.supernet)
    add("reference", f"`{args.config}` as trained", *accuracy(reference, subnet), ref_times.get("stage_wd"))

    if args.finetune:
        folder = Path(f"{base.output_dir}-variants") / f"finetune-{subnet.name}"
        result_path = folder / "result.json"
        if result_path.is_file():
            log(f"reusing {folder}")
            result = json.loads(result_path.read_text())
        else:
            n_train = len(tokenized["train"])
            steps = args.finetune_steps or elastic_steps(base, n_train)
            teacher = AutoModelForSequenceClassification.from_pretrained(ref.teacher).eval()
            teacher.requires_grad_(False)
            dense = cut_subnet(reference, subnet).train()
            log(f"fine-tuning the cut {subnet.name} for {steps} steps")
            started = time.perf_counter()
            finetune(
                dense,
                train_batches(
                    tokenized["train"], tokenizer, base.batch_size, seed=base.seed, stage="variant-ft"
                ),
                steps=steps,
                learning_rate=base.learning_rate,
                teacher=teacher,
                weights=KD_LOSS,
                weight_decay=base.weight_decay,
                warmup_ratio=base.warmup_ratio,
                max_grad_norm=base.max_grad_norm,
                seed=base.seed,
                progress=progress,
                desc=f"fine-tune {subnet.name}",
            )
            dev, test = accuracy(dense.eval(), None)
            result = {
                "dev": dev,
                "test": test,
                "steps": steps,
                "train_seconds": time.perf_counter() - started,
            }
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_json(result_path, result)
        add(
            "+ own fine-tune",
            f"reference subnet cut dense, then {result['steps']} steps of hard CE + soft CE from the teacher",
            result["dev"],
            result["test"],
            result["train_seconds"],
        )

    for name, overrides, cfg in variants:
        shared = prepare_variant(base, cfg)
        if shared:
            log(f"{name}: sharing {', '.join(shared)} with {ref.root}")
        run = RunDir(Path(cfg.output_dir))
        if not run.eval.is_file():
            log(f"training {run.root} ({' '.join(overrides)})")
            train(cfg, progress=progress)
        times = stage_seconds(run.root)
        seconds = sum(v for k, v in times.items() if k in ("stage_wd", "final")) or None
        add(
            name,
            " ".join(f"`{o}`" for o in overrides),
            *accuracy(load_supernet(run.supernet), subnet),
            seconds,
        )

    # Where a run directory was redirected (output_dir=...) is this machine's business, not the recipe's.
    given = sys.argv[1:] if argv is None else list(argv)
    shown_args = [a for a in given if not a.startswith(("output_dir=", "--no-"))]
    lines = [
        f"### Why {subnet.name} on {task.name}: variants of stage W x D",
        "",
        f"Teacher: dev {100 * t_dev:.2f}%, test {100 * t_test:.2f}%. Each row is the {subnet.name} subnet; "
        "variants share the reference's teacher, importance and stage W unless they change them. "
        "Reproduce: `python bench/dynabert_variants.py " + " ".join(shown_args) + "`.",
        "",
        "| variant | change | dev acc % | test acc % | test vs teacher (pt) | train time |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        secs = r["train_seconds"]
        lines.append(
            f"| {r['variant']} | {r['what']} | {100 * r['dev']:.2f} | {100 * r['test']:.2f} | "
            f"{100 * (r['test'] - t_test):+.2f} | {'' if secs is None else f'{secs / 60:.0f} min'} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    out_dir = Path(f"{base.output_dir}-variants")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "variants.md", table)
    atomic_write_text(out_dir / "variants.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    if not args.no_benchmarks:
        if not update_section(args.benchmarks or REPO / "BENCHMARKS.md", f"variants-{task.name}", table):
            return 2
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))
