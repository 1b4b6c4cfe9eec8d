"""Regression (rt-scores) through the whole pipeline: train -> search -> export -> ONNX -> pipeline()."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy
import pandas
import pytest
import torch
import transformers
from conftest import REAL_SENTENCES, TINY_RUN, save_tiny_model_dir

from supernet.cli import export_main, search_main, train_main
from supernet.config import TrainConfig, load_config
from supernet.data import tokenize_task
from supernet.export import load_exported
from supernet.search import SubnetResult, format_table, metric_label, read_results
from supernet.subnet import SubnetConfig, set_active_subnet
from supernet.trainer import format_eval_table, load_supernet, task_from_config

PRESET = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"
FAST = ["--repeats", "3", "--warmup", "1", "--threads", "1", "--no-progress"]
TORCH_TOL = 1e-6


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory, minilm_dir) -> tuple[Path, str]:
    """A tiny rt-scores run from a base model (the teacher gets a fresh regression head)."""
    root = tmp_path_factory.mktemp("regression")
    model = save_tiny_model_dir(root / "model", minilm_dir)
    run = root / "run"
    argv = ["--config", str(PRESET), "--no-progress", f"model={model}", f"output_dir={run}", *TINY_RUN]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert train_main([*argv, "task=rt-scores", "width_mults=[1.0, 0.5]", "depth_mults=[1.0, 0.5]"]) == 0
    return run, printed.getvalue()


@pytest.mark.slow
def test_regression_end_to_end(regression_run, capsys) -> None:
    run, train_out = regression_run
    # Training: a regression head, Pearson/Spearman per subnet (dev and test), no accuracy.
    supernet = load_supernet(run / "supernet")
    assert supernet.config.problem_type == "regression" and supernet.config.num_labels == 1
    rows = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert [r["subnet"] for r in rows] == ["w1.00-d1.00", "w1.00-d0.50", "w0.50-d1.00", "w0.50-d0.50"]
    for r in rows:
        assert {"pearson", "spearman", "test_pearson", "test_spearman"} <= r.keys()
        assert "accuracy" not in r
    # Each subnet's figures, computed here from its raw outputs one dev sentence at a time (numpy's
    # correlation, pandas' average ranks), not by the code that wrote the rows. The tolerance: the
    # rows come from padded float32 batches, and the tiny model's outputs vary so little that the
    # rounding between the two paths moved one Pearson by 1.9e-5; a wrong prediction moves it by far more.
    cfg = load_config(TrainConfig, run / "config.yaml")
    tokenizer = transformers.AutoTokenizer.from_pretrained(run / "supernet")
    dev = tokenize_task(task_from_config(cfg), tokenizer, cfg.data.max_length)["dev"]
    gold = numpy.array([float(ex["labels"]) for ex in dev])
    supernet.eval()
    for r in rows:
        set_active_subnet(supernet, SubnetConfig.from_name(r["subnet"]))
        with torch.no_grad():
            raw = numpy.array(
                [
                    float(supernet(**{k: torch.tensor([v]) for k, v in ex.items() if k != "labels"}).logits)
                    for ex in dev
                ]
            )
        assert r["pearson"] == pytest.approx(numpy.corrcoef(raw, gold)[0, 1], abs=1e-4)
        ranks = [pandas.Series(v).rank().to_numpy() for v in (raw, gold)]
        assert r["spearman"] == pytest.approx(numpy.corrcoef(*ranks)[0, 1], abs=1e-4)
    teacher = json.loads((run / "teacher_eval.json").read_text())
    assert set(teacher["dev"]) == {"pearson", "spearman", "n"} and teacher["dev"]["n"] == 32
    assert "dev Pearson  dev Spearman  test Pearson" in train_out
    metrics = [json.loads(line) for line in (run / "train_metrics.jsonl").read_text().splitlines()]
    # The preset's single-stage recipe: the smallest subnet distils (MSE to the teacher) every step.
    assert any("stage_wd/w0.50-d0.50/logit_kd" in m for m in metrics)
    assert any("teacher/teacher/hard_ce" in m for m in metrics)

    # Search ranks by Pearson and names it.
    assert search_main(["--run", str(run), "--latency-budget-ms", "1000", *FAST]) == 0
    lines = [json.loads(line) for line in (run / "search" / "results.jsonl").read_text().splitlines()]
    assert all(line["metric"] == "pearson" and "accuracy" not in line for line in lines)
    assert {line["name"]: line["pearson"] for line in lines} == {r["subnet"]: r["pearson"] for r in rows}
    results = read_results(run / "search" / "results.jsonl")
    best = max(results, key=lambda r: (r.accuracy, -r.latency_ms))
    chosen = json.loads((run / "search" / "chosen.json").read_text())
    assert chosen["name"] == best.name and chosen["metric"] == "pearson"
    out = capsys.readouterr().out
    assert (
        "pearson x100"
        in out.splitlines()[[i for i, s in enumerate(out.splitlines()) if "latency ms" in s][0]]
    )
    assert f"chosen under 1000.00 ms: {best.name} (dev pearson {100 * best.accuracy:.2f}," in out
    assert (run / "search" / "pareto.csv").read_text().splitlines()[0].split(",")[:2] == ["name", "pearson"]

    # Export with ONNX: parity, the same Pearson from every artefact, and pipeline() gives the raw value.
    out_dir = run / "export" / "chosen"
    argv = ["--run", str(run), "--subnet", best.name, "--out", str(out_dir), "--onnx", "--int8"]
    assert export_main(argv) == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["metric"] == "pearson" and summary["parity_ok"]
    assert summary["tokenization"] == {"max_length": 32}  # TINY_RUN's data.max_length
    scores = summary["accuracy"]
    assert scores["torch"] == pytest.approx(best.accuracy, abs=1e-6)
    # Predictions a few 1e-7 apart; Pearson over nearly constant predictions moves more (measured 2e-5).
    assert scores["onnx"] == pytest.approx(scores["torch"], abs=1e-4)
    # Search ranked by the FP32 figure; the int8 model's own is printed beside it, not only in parity.json.
    assert (
        f"  dev pearson (x100): {100 * scores['torch']:.2f}, model.int8.onnx {100 * scores['int8']:.2f}"
        in capsys.readouterr().out
    )
    dense = load_exported(out_dir).eval()
    assert dense.config.problem_type == "regression"
    tokenizer = transformers.AutoTokenizer.from_pretrained(out_dir)
    regressor = transformers.pipeline("text-classification", model=dense, tokenizer=tokenizer)
    for sentence, pred in zip(REAL_SENTENCES, regressor(REAL_SENTENCES), strict=True):
        with torch.no_grad():
            value = dense(**tokenizer(sentence, return_tensors="pt")).logits[0, 0].item()
        assert abs(pred["score"] - value) <= TORCH_TOL  # no sigmoid: the predicted score itself


@pytest.mark.slow
def test_regression_resume_does_not_retrain(regression_run, capsys) -> None:
    """A finished regression run resumes to the same eval (the kind survives the saved folders)."""
    run, _ = regression_run
    before = (run / "eval.jsonl").read_text()
    argv = ["--config", str(run / "config.yaml"), "--no-progress", "resume=true"]
    capsys.readouterr()
    assert train_main(argv) == 0
    assert (run / "eval.jsonl").read_text() == before
    assert (
        f"note: {run / 'supernet'} is already trained: nothing is retrained, the grid is scored on dev and "
        "test again"
    ) in capsys.readouterr().out.splitlines()


def test_regression_table_and_labels() -> None:
    rows = [
        {
            "subnet": "w1.00-d1.00",
            "pearson": 0.81234,
            "spearman": 0.8,
            "test_pearson": 0.79,
            "test_spearman": 0.78,
            "params": 2_000_000,
            "flops": 3e9,
        }
    ]
    from supernet.tasks import TASK_KINDS

    table = format_eval_table(rows, 0.85, kind=TASK_KINDS["regression"], num_labels=1).splitlines()
    assert table[0].split() == [
        "subnet",
        "dev",
        "Pearson",
        "dev",
        "Spearman",
        "test",
        "Pearson",
        "params",
        "M",
        "GFLOPs",
    ]
    assert table[2].split() == ["teacher", "85.00"]
    assert table[3].split() == ["w1.00-d1.00", "81.23", "80.00", "79.00", "2.00", "3.00"]
    # The FLOPs' sequence length is named when given (train counts at data.max_length, search at --seq-len).
    labelled = format_eval_table(rows, kind=TASK_KINDS["regression"], num_labels=1, seq_len=64).splitlines()
    assert labelled[0].split()[-2:] == ["GFLOPs", "s64"] and labelled[2].split()[-1] == "3.00"
    assert metric_label("pearson") == "pearson (x100)" and metric_label("accuracy") == "accuracy (%)"
    result = SubnetResult(
        subnet=SubnetConfig(),
        name="w1.00-d1.00",
        accuracy=0.5,
        latency_ms=1.0,
        predicted_ms=None,
        params=1,
        flops=1,
        metric="pearson",
    )
    assert result.to_json()["pearson"] == 0.5 and SubnetResult.from_json(result.to_json()) == result
    assert format_table([result]).splitlines()[0].split()[:3] == ["subnet", "pearson", "x100"]
    assert format_table([result], seq_len=128).splitlines()[0].split()[-3:] == ["GFLOPs", "s128", "pareto"]


def test_multiclass_table_shows_macro_f1() -> None:
    from supernet.tasks import TASK_KINDS

    rows = [
        {
            "subnet": "w1.00-d1.00",
            "accuracy": 0.5,
            "macro_f1": 0.4567,
            "test_accuracy": 0.25,
            "test_macro_f1": 0.2,
            "params": 1_000_000,
            "flops": 1e9,
        }
    ]
    table = format_eval_table(rows, kind=TASK_KINDS["classification"], num_labels=5).splitlines()
    assert table[0].split()[:6] == ["subnet", "dev", "acc", "%", "dev", "macro-F1"]
    assert table[2].split() == ["w1.00-d1.00", "50.00", "0.457", "25.00", "1.00", "1.00"]


def test_plot_axis_names_the_metric(tmp_path: Path, monkeypatch) -> None:
    from matplotlib.axes import Axes

    from supernet.search import plot_pareto

    labels: list[str] = []
    real = Axes.set_ylabel
    monkeypatch.setattr(
        Axes, "set_ylabel", lambda self, text, *a, **k: labels.append(text) or real(self, text, *a, **k)
    )
    results = [
        SubnetResult(
            subnet=SubnetConfig(width_mult=w),
            name=SubnetConfig(width_mult=w).name,
            accuracy=score,
            latency_ms=ms,
            predicted_ms=None,
            params=1,
            flops=1,
            metric="pearson",
        )
        for w, score, ms in ((1.0, 0.8, 2.0), (0.5, 0.7, 1.0))
    ]
    plot_pareto(results, None, tmp_path / "pareto.png", title="t")
    assert labels == ["dev pearson (x100)"]
    assert (tmp_path / "pareto.png").stat().st_size > 0


@pytest.mark.slow
def test_int8_search_scores_the_int8_graphs(regression_run, tmp_path: Path, capsys, monkeypatch) -> None:
    """search.py --int8 ranks by each int8 graph's own score: the figure export.py --int8 prints for
    the model it writes; a second search takes them from search/accuracy-int8.json."""
    import onnxruntime

    import supernet.search_cli as search_cli
    from supernet.export import INT8_GRAPH_REVISION, ONNX_GRAPH_REVISION

    run, _ = regression_run
    out = tmp_path / "s8"
    argv = ["--run", str(run), "--backend", "onnxruntime", "--int8", "--latency-budget-ms", "1000"]
    assert search_main([*argv, "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert (
        "dev pearson is the int8 graph's (model.int8.onnx, as export.py --int8 writes it), scored with onnxruntime"
        in printed
    )
    assert next(line for line in printed if "latency ms" in line).split()[:3] == ["subnet", "int8", "pearson"]
    assert any(
        line.startswith("chosen under 1000.00 ms: ") and " (dev int8 pearson " in line for line in printed
    )
    # The int8 choice is cut with --int8 (the graph it was ranked by), from the --out folder.
    assert printed[-1] == f"next: python export.py --run {run} --search {out} --subnet best --int8"
    results = read_results(out / "results.jsonl")
    assert [r.precision for r in results] == ["int8"] * 4 and {r.metric for r in results} == {"pearson"}
    csv_rows = (out / "pareto.csv").read_text().splitlines()
    assert {row["precision"] for row in csv.DictReader(csv_rows)} == {"int8"}
    cache = json.loads((run / "search" / "accuracy-int8.json").read_text())
    assert cache["onnxruntime"] == onnxruntime.__version__ and cache["onnx_graph"] == ONNX_GRAPH_REVISION
    assert cache["int8_graph"] == INT8_GRAPH_REVISION
    assert cache["scores"] == {r.name: r.accuracy for r in results}
    fp32 = {json.loads(line)["subnet"]: json.loads(line)["pearson"] for line in (run / "eval.jsonl").open()}
    assert {r.name: r.accuracy for r in results} != fp32  # quantisation moves the scores

    # export.py --int8 of the choice scores the same graph on the same dev split: the same figure.
    chosen = json.loads((out / "chosen.json").read_text())
    assert chosen["precision"] == "int8"
    exported = tmp_path / "exp"
    export = [
        "--run",
        str(run),
        "--search",
        str(out),
        "--out",
        str(exported),
        "--onnx",
        "--int8",
        "--no-progress",
    ]
    assert export_main(export) == 0
    assert json.loads((exported / "summary.json").read_text())["accuracy"]["int8"] == chosen["pearson"]
    # Without --int8, export.py says that search chose the int8 model.
    capsys.readouterr()
    assert export_main([*export[:-2], "--overwrite", "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert (
        f"note: search chose {chosen['name']} by its int8 graph's latency and dev score: pass --int8 to "
        "write model.int8.onnx, the model it chose"
    ) in printed
    # It times what it wrote, FP32, and says so (the label said int8, with no int8 figure).
    assert any(
        line.startswith("  latency (cpu, batch 1, 128 tokens, 1 thread): torch ") for line in printed
    ), printed
    assert json.loads((exported / "summary.json").read_text())["setting"]["int8"] is False

    # Scored once: a second search reads them back.
    def never(*args, **kwargs):
        raise AssertionError("scored again")

    real_score = search_cli.score
    monkeypatch.setattr(search_cli, "score", never)
    capsys.readouterr()
    assert search_main([*argv, "--out", str(tmp_path / "again"), *FAST]) == 0
    # ... and says whose scores the column holds (the line was left out where none was scored now).
    assert (
        "dev pearson is the int8 graph's (model.int8.onnx, as export.py --int8 writes it), scored with "
        "onnxruntime; earlier searches' scores of 4 subnets read from search/accuracy-int8.json"
    ) in capsys.readouterr().out.splitlines()
    again = read_results(tmp_path / "again" / "results.jsonl")
    assert {r.name: r.accuracy for r in again} == cache["scores"]
    # Scores of another graph form (an older export: FP32 graph, or int8 graph before its revision) are
    # taken again.
    scored: list[int] = []
    monkeypatch.setattr(search_cli, "score", lambda *a, **k: scored.append(1) or real_score(*a, **k))
    before_int8_revision = {key: value for key, value in cache.items() if key != "int8_graph"}
    for i, stale in enumerate([{**cache, "onnx_graph": ONNX_GRAPH_REVISION - 1}, before_int8_revision]):
        (run / "search" / "accuracy-int8.json").write_text(json.dumps(stale))
        scored.clear()
        assert search_main([*argv, "--out", str(tmp_path / f"stale{i}"), *FAST]) == 0
        assert len(scored) == 4
        rescored = json.loads((run / "search" / "accuracy-int8.json").read_text())
        assert (rescored["onnx_graph"], rescored["int8_graph"]) == (ONNX_GRAPH_REVISION, INT8_GRAPH_REVISION)
        assert rescored["scores"] == pytest.approx(cache["scores"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("int8", [False, True])
def test_table_search_names_the_metric(regression_run, tmp_path: Path, int8: bool, capsys) -> None:
    """A search from a device table ranks a regression run by Pearson, every row saying so (the grid's
    rows were labelled "accuracy" before); from an int8 kit's table, by the int8 graphs' scores."""
    from test_profile_kit import fake_table

    from supernet.profile_kit import run_identity
    from supernet.subnet import SearchSpace

    run, _ = regression_run
    space = SearchSpace(width_mults=(1.0, 0.5), depth_mults=(1.0, 0.5))
    table = fake_table(
        tmp_path / "t.json", load_supernet(run / "supernet"), run=run_identity(run), space=space, int8=int8
    )
    out = tmp_path / "s"
    argv = [
        "--run",
        str(run),
        "--latency-table",
        str(table),
        "--latency-budget-ms",
        "1000",
        "--out",
        str(out),
    ]
    assert search_main([*argv, "--no-progress"]) == 0
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(line["metric"], "pearson" in line, line.get("precision")) for line in lines] == [
        ("pearson", True, "int8" if int8 else None)
    ] * 4
    if int8:
        scores = json.loads((run / "search" / "accuracy-int8.json").read_text())["scores"]
        assert {line["name"]: line["pearson"] for line in lines} == scores
        # The export says the device's figure is the int8 model's.
        capsys.readouterr()
        argv = [
            "--run",
            str(run),
            "--search",
            str(out),
            "--out",
            str(tmp_path / "e"),
            "--no-onnx",
            "--no-progress",
        ]
        assert export_main(argv) == 0
        assert any(
            line.startswith("  on the profiled device (Test CPU): ")
            and " ms predicted for model.int8.onnx by " in line
            for line in capsys.readouterr().out.splitlines()
        )


@pytest.mark.slow
def test_int8_per_layer_search_ranks_candidates_in_fp32(regression_run, tmp_path: Path, monkeypatch) -> None:
    """--int8 --per-layer scores only what it keeps on int8 graphs (the grid and the verified
    subnets); candidates are ranked in FP32, even on the whole dev split (--accuracy-subset 0)."""
    import supernet.search_cli as search_cli

    run, _ = regression_run
    graphed: list[str] = []
    real = search_cli.SearchRun.graph

    def counting(self, cfg):
        graphed.append(cfg.name)
        return real(self, cfg)

    monkeypatch.setattr(search_cli.SearchRun, "graph", counting)
    argv = [
        "--run",
        str(run),
        "--backend",
        "onnxruntime",
        "--int8",
        "--per-layer",
        "--out",
        str(tmp_path / "s"),
    ]
    more = ["--population", "4", "--generations", "1", "--accuracy-subset", "0", "--verify-top", "2"]
    assert search_main([*argv, *more, *FAST]) == 0
    results = read_results(tmp_path / "s" / "results.jsonl")
    assert any(not r.subnet.is_uniform for r in results)
    assert {r.precision for r in results} == {"int8"}
    # Only kept subnets get a graph (the grid's may come from an earlier search's caches).
    assert {r.name for r in results if not r.subnet.is_uniform} <= set(graphed) <= {r.name for r in results}
