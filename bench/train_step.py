"""Stage W x D step cost: the trainer's step against the sum of its parts.

Measures, on the packaged all-MiniLM-L6-v2 (or a random BERT-base with
--model bert-base) and a real batch of Rotten Tomatoes sentences, with pinned
threads and medians over interleaved rounds:

  step      one stage W x D step as the trainer runs it (its own step function
            and subnet plan: 4 widths x 3 depths, teacher = stage-W net at the
            same width, run once per (batch, width));
  parts     the sum of each subnet's isolated forward + loss + backward and of
            the 4 teacher forwards, timed one by one;
  naive     the same step with the teacher recomputed for every subnet.

Goals: step / parts <= 1.10 (the loop adds no overhead) and naive / step
(the saving from sharing teacher forwards) reported.

    python bench/train_step.py [--threads 2] [--rounds 5] [--batch-size 32] [--seq-len 64]
"""

from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernet import active_layers, set_active_subnet, to_supernet  # noqa: E402
from supernet.assets import packaged_model_dir  # noqa: E402
from supernet.cli import (  # noqa: E402
    DefaultsHelp,
    OneLineParser,
    at_least,
    figures_file,
    quiet_libraries,
    thread_count,
    write_figures,
)
from supernet.config import TrainConfig  # noqa: E402
from supernet.data import load_task  # noqa: E402
from supernet.distill import LossWeights, distill_loss, teacher_hidden_targets  # noqa: E402
from supernet.latency import monitor_load, print_load_report  # noqa: E402
from supernet.progress import progress_bar  # noqa: E402
from supernet.recipes import Group  # noqa: E402
from supernet.trainer import _Job  # noqa: E402


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(
        allow_abbrev=False,
        description=__doc__.splitlines()[0],
        formatter_class=DefaultsHelp,
    )
    p.add_argument(
        "--model",
        choices=("minilm", "bert-base"),
        default="minilm",
        help="packaged MiniLM, or a random BERT-base",
    )
    p.add_argument("--threads", type=thread_count, default=2, help="torch threads (README's figures: 1)")
    p.add_argument(
        "--rounds", type=at_least(1), default=5, help="interleaved rounds of step, parts and naive"
    )
    p.add_argument("--batch-size", type=at_least(1), default=32, help="sentences per training batch")
    p.add_argument("--seq-len", type=at_least(1), default=64, help="tokens per sentence (padded or cut)")
    p.add_argument("--json", type=figures_file(__file__), default=None, help="also write the figures here")
    args = p.parse_args(argv)
    quiet_libraries()  # the fresh classifier's load report and tokenizing bars
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    minilm = packaged_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    if args.model == "minilm":
        model = AutoModelForSequenceClassification.from_pretrained(minilm, num_labels=2)
    else:
        model = BertForSequenceClassification(BertConfig(num_labels=2))
    student = to_supernet(model).train()
    teacher = copy.deepcopy(student).eval().requires_grad_(False)

    texts = load_task("rt-sentences").splits["train"]["text"][: args.batch_size]
    batch = dict(
        tokenizer(texts, padding="max_length", truncation=True, max_length=args.seq_len, return_tensors="pt")
    )
    batch["labels"] = torch.zeros(args.batch_size, dtype=torch.long)

    with tempfile.TemporaryDirectory() as tmp:
        # batch_size as timed: load_data prints the global batch, which said the default 32 before the
        # bench's own "batch 2 x 16" line.
        config = TrainConfig(
            model=str(minilm), task="rt-sentences", output_dir=tmp, batch_size=args.batch_size
        )
        job = _Job(config, progress=False)
        job.load_data()  # the task, its kind and tokenizer, as train() has them before any step

        recipe = job.recipe(student)  # the default, DynaBERT's

        def plan(step: int) -> list[Group]:
            return recipe.plan("stage_wd", step)

        def naive_plan(step: int) -> list[Group]:
            return [Group(g.teacher, (s,)) for g in plan(step) for s in g.students]

        step_fn = job._distill_step_fn("stage_wd", plan, teacher)
        naive_fn = job._distill_step_fn("stage_wd", naive_plan, teacher)
        groups = plan(0)
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        weights = LossWeights()

        def run_step(fn) -> float:
            student.zero_grad(set_to_none=True)
            return _timed(lambda: fn(student, batch, 0))

        def parts() -> float:
            total = 0.0
            for group in groups:
                set_active_subnet(teacher, group.teacher)
                with torch.no_grad():
                    total += _timed(lambda: teacher(**inputs, output_hidden_states=True))
                    t_out = teacher(**inputs, output_hidden_states=True)
                for cfg in group.students:
                    set_active_subnet(student, cfg)
                    student.zero_grad(set_to_none=True)

                    def one(t_out=t_out) -> None:
                        out = student(**inputs, output_hidden_states=True)
                        kept = active_layers(student)
                        t_hidden = teacher_hidden_targets(t_out.hidden_states, kept)  # the default pairing
                        loss = distill_loss(
                            out.logits,
                            out.hidden_states,
                            t_out.logits,
                            t_hidden,
                            None,
                            batch["attention_mask"],
                            weights,
                        )
                        loss.total.backward()

                    total += _timed(one)
            return total

        # A round is three steps of the model (a minute for MiniLM on one core): the bar moves between
        # rounds, outside the timed calls.
        steps, sums, naives = [], [], []
        with progress_bar(total=1 + args.rounds, desc="warm-up + rounds", unit="round") as bar:
            run_step(step_fn)  # warm-up
            parts()
            bar.update(1)
            with monitor_load() as probe:
                for _ in range(args.rounds):  # interleaved, so drift hits all three alike
                    steps.append(run_step(step_fn))
                    sums.append(parts())
                    naives.append(run_step(naive_fn))
                    bar.update(1)
    assert probe.load is not None

    step, total, naive = statistics.median(steps), statistics.median(sums), statistics.median(naives)
    n_students = sum(len(g.students) for g in groups)
    figures = {
        "model": args.model,
        "threads": args.threads,
        "batch": [args.batch_size, args.seq_len],
        "subnets_per_step": n_students,
        "teacher_forwards_per_step": len(groups),
        "step_s": step,
        "parts_s": total,
        "naive_s": naive,
        "step_over_parts": step / total,
        "teacher_sharing_speedup": naive / step,
        "load": probe.load.to_dict(),
    }
    print(
        f"stage W x D on {args.model}, batch {args.batch_size} x {args.seq_len}, {args.threads} threads, "
        f"median of {args.rounds} interleaved rounds"
    )
    print(f"  {n_students} subnets, {len(groups)} teacher forwards per step")
    print(f"  trainer step           {step:8.3f} s")
    print(f"  sum of isolated parts  {total:8.3f} s")
    print(f"  teacher per subnet     {naive:8.3f} s")
    print(f"step / parts = {step / total:.3f} (goal <= 1.10: {'PASS' if step / total <= 1.10 else 'MISS'})")
    print(f"teacher sharing speedup = {naive / step:.2f}x over recomputing it for every subnet")
    print_load_report({"the timed rounds": probe.load})
    if args.json:
        write_figures(args.json, figures, script=__file__)
    return 0


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))
