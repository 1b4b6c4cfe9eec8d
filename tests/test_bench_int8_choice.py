"""bench/int8_choice.py: the int8 graphs' scores and latency, and the two rankings' budgeted choices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import TINY_RUN, load_bench, save_tiny_model_dir

from supernet.cli import train_main

int8_choice = load_bench("int8_choice")
PRESET = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


@pytest.mark.slow
def test_choices_follow_each_ranking_and_leave_the_run_alone(tmp_path: Path, minilm_dir, capsys) -> None:
    model = save_tiny_model_dir(tmp_path / "model", minilm_dir)
    run = tmp_path / "run"
    argv = ["--config", str(PRESET), "--no-progress", f"model={model}", f"output_dir={run}", *TINY_RUN]
    assert train_main([*argv, "width_mults=[1.0, 0.5]", "depth_mults=[1.0, 0.5]"]) == 0
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    out = tmp_path / "int8.json"
    bench = [
        "--run",
        str(run),
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--no-progress",
        "--work",
        str(tmp_path / "w"),
    ]
    assert int8_choice.main([*bench, "--json", str(out)]) == 0
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # caches went to --work

    (result,) = json.loads(out.read_text())["runs"]
    subnets = {s["subnet"]: s for s in result["subnets"]}
    assert sorted(subnets) == ["w0.50-d0.50", "w0.50-d1.00", "w1.00-d0.50", "w1.00-d1.00"]
    trained = {json.loads(line)["subnet"]: json.loads(line) for line in (run / "eval.jsonl").open()}
    (copy,) = (tmp_path / "w").iterdir()
    cached = json.loads((copy / "search" / "accuracy-int8.json").read_text())
    for name, s in subnets.items():
        assert (s["fp32_dev"], s["fp32_test"]) == (trained[name]["accuracy"], trained[name]["test_accuracy"])
        assert s["int8_dev"] == cached["scores"][name]  # search.py --int8's own scores
    assert [c["budget_ms"] for c in result["choices"]] == sorted(s["int8_ms"] for s in subnets.values())
    for c in result["choices"]:
        fitting = [s for s in subnets.values() if s["int8_ms"] <= c["budget_ms"]]
        old, new = subnets[c["fp32_ranked"]], subnets[c["int8_ranked"]]
        assert old in fitting and new in fitting
        assert old["fp32_dev"] == max(s["fp32_dev"] for s in fitting)
        assert new["int8_dev"] == max(s["int8_dev"] for s in fitting)
        assert c["dev_gain"] == new["int8_dev"] - old["int8_dev"] >= 0
        assert c["test_gain"] == new["int8_test"] - old["int8_test"]
    assert (
        capsys.readouterr()
        .out.splitlines()[-1]
        .startswith("all runs (cpu-onnxruntime-int8-b1-s128-t1): the ")
    )


def test_scratch_copies_of_runs_with_the_same_folder_names_are_apart(tmp_path: Path) -> None:
    """trec/seed-42/single-stage and rt-sentences/seed-42/single-stage shared one scratch copy (and
    so one run's cached scores and latencies) before."""
    copies = []
    for task in ("trec", "rt-sentences"):
        run = tmp_path / task / "seed-42" / "single-stage"
        (run / "supernet").mkdir(parents=True)
        (run / "config.yaml").write_text(f"task: {task}\n")
        (run / "eval.jsonl").write_text("")
        copies.append(int8_choice.scratch_copy(run, tmp_path / "work"))
        assert (copies[-1] / "supernet").resolve() == (run / "supernet").resolve()
        assert (copies[-1] / "config.yaml").read_text() == f"task: {task}\n"
    assert copies[0] != copies[1]


def test_a_scratch_copy_is_split_as_its_run(tmp_path: Path) -> None:
    """Without the run's inputs.json the copy (it has eval.jsonl) was taken for a run started before
    2026-12-01 and split by the old rule: its int8 test scores came from other rows."""
    from supernet.io import RunDir
    from supernet.trainer import _groups_repeats

    run = tmp_path / "run"
    (run / "supernet").mkdir(parents=True)
    (run / "config.yaml").write_text("task: data.csv\n")
    (run / "eval.jsonl").write_text("")
    (run / "inputs.json").write_text('{"paths": {}, "split_sha256": {}, "group_repeats": true}')
    copy = int8_choice.scratch_copy(run, tmp_path / "work")
    assert (copy / "inputs.json").read_bytes() == (run / "inputs.json").read_bytes()
    assert _groups_repeats(RunDir(copy)) is True
    (run / "inputs.json").unlink()  # a run from before: its copy is one too
    copy = int8_choice.scratch_copy(run, tmp_path / "work2")
    assert not (copy / "inputs.json").exists() and _groups_repeats(RunDir(copy)) is False


def test_a_damaged_eval_line_is_named_before_any_work(tmp_path: Path, capsys, as_script) -> None:
    """The bench skipped any line it could not read, then found the subnets of that line missing; the
    other benches stopped with a JSON traceback. All read eval.jsonl through `supernet.io.read_jsonl`
    (a last line cut short is left out, any other damaged line named)."""
    run = tmp_path / "run"
    (run / "supernet").mkdir(parents=True)
    (run / "config.yaml").write_text("task: data.csv\n")
    (run / "eval.jsonl").write_text(
        '{"subnet": "w1.00-d1.00"}\n\n{"subnet": "w1.00-d0.\n{"subnet": "w0.50-d1.00"}\n'
    )
    as_script("int8_choice")
    # Several runs after one --run (as the shell expands `seed-{42,43,44}`) are each checked.
    with pytest.raises(SystemExit) as info:
        int8_choice.main(["--run", str(tmp_path / "none"), str(run), "--no-progress"])
    assert capsys.readouterr().err == (
        f"int8_choice.py: error: --run {tmp_path / 'none'}: not a trained run (no supernet/ or eval.jsonl) "
        "(usage: int8_choice.py --help)\n"
    )
    with pytest.raises(SystemExit) as info:
        int8_choice.main(["--run", str(tmp_path), "--run", str(run), "--no-progress"])
    assert capsys.readouterr().err == (
        f"int8_choice.py: error: --run {tmp_path}: not a trained run (no supernet/ or eval.jsonl) "
        "(usage: int8_choice.py --help)\n"
    )
    with pytest.raises(SystemExit) as info:
        int8_choice.main(["--run", str(run), "--no-progress"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        f"int8_choice.py: error: --run {run}: {run / 'eval.jsonl'} line 3 is not a JSON object: score the run "
        "again with train.py resume=true (usage: int8_choice.py --help)\n"
    )
