"""README's commands, run as written: the quickstart and "Cut a model for your device"."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from conftest import copy_run

from supernet.export import load_exported

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def test_readme_has_exactly_two_setup_commands() -> None:
    quick = _section("Quick start")
    commands = [
        line.split("#")[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
        for line in block.splitlines()
        if line.strip()
    ]
    assert commands == ["make quickstart", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^quickstart:", makefile, flags=re.M) and re.search(r"^test:", makefile, flags=re.M)
    # CI calls the same test command, then checks the main command end to end.
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'make test VENV="$VENV"' in ci and 'make test-quickstart VENV="$VENV"' in ci


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_trained_run) -> Path:
    return copy_run(tiny_trained_run, tmp_path_factory.mktemp("readme") / "runs" / "quickstart")


@pytest.mark.slow
def test_cut_a_model_for_your_device_commands(tiny_run: Path, tmp_path: Path) -> None:
    section = _section("Cut a model for your device")
    bash = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0]
    out_dir = tmp_path / "my-model"
    for line in bash.strip().splitlines():
        # The README's commands, pointed at a tiny finished run; a generous budget so it is attainable.
        line = line.replace("runs/quickstart", str(tiny_run)).replace("my-model", str(out_dir))
        line = re.sub(r"--latency-budget-ms \S+", "--latency-budget-ms 10000", line)
        args = shlex.split(line)
        assert args[0] == "python"
        extra = ["--repeats", "3", "--warmup", "1", "--no-progress"] if args[1] == "search.py" else []
        proc = subprocess.run(
            [sys.executable, *args[1:], *extra], cwd=ROOT, env=_env(), capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert {
        "config.json",
        "model.safetensors",
        "model.onnx",
        "model.int8.onnx",
        "parity.json",
        "summary.json",
        "modeling_supernet_export.py",
    } <= {p.name for p in out_dir.iterdir()}
    assert (tiny_run / "search" / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    parity = json.loads((out_dir / "parity.json").read_text())
    assert parity["parity_ok"] is True

    # The README's Python snippet for using the export, run where `supernet` is never imported.
    snippet = next(b for b in _blocks("python") if "trust_remote_code" in b).replace(
        '"my-model', f'"{out_dir}'
    )
    sentence = "a gorgeous, witty, seductive movie"
    script = (
        "import json, sys\n"
        + snippet
        + f"\n[said] = clf({sentence!r})\n"
        + f"feeds = dict(tokenizer({sentence!r}, return_tensors='np'))\n"
        + "names = [i.name for i in session.get_inputs()]\n"
        + "onnx_logits = session.run(None, {n: feeds[n] for n in names})[0][0].tolist()\n"
        + "print(json.dumps({'said': said, 'inputs': names, 'onnx_logits': onnx_logits}))\n"
        + "assert 'supernet' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**_env(), "PYTHONPATH": ""},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    # What the snippet's pipeline and ONNX session say is what the exported model, loaded here, computes.
    dense = load_exported(out_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out_dir)
    with torch.no_grad():
        logits = dense(**tokenizer(sentence, return_tensors="pt")).logits[0]
    probs = logits.softmax(-1)
    assert printed["said"]["label"] == dense.config.id2label[int(probs.argmax())]
    assert printed["said"]["score"] == pytest.approx(float(probs.max()), abs=1e-6)
    assert printed["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert printed["onnx_logits"] == pytest.approx(logits.tolist(), abs=1e-4)


@pytest.mark.slow
@pytest.mark.quickstart
def test_make_quickstart_runs_end_to_end(tmp_path: Path) -> None:
    """The README's main command, unchanged, on the packaged model and data (a few minutes)."""
    venv = Path(sys.prefix)
    marker = venv / "bin" / ".installed"
    if not marker.exists():
        pytest.skip(f"{venv} was not made by `make` (no {marker}); CI's environment is")
    run = tmp_path / "quickstart"
    # As README runs it from a shell: torch's default thread count, not the suite's one thread, and
    # not as a sub-make (under `make test-quickstart`, MAKELEVEL made it print "make[1]: Leaving
    # directory ..." after the export's summary).
    inherited = {"OMP_NUM_THREADS", "MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"}
    env = {k: v for k, v in _env().items() if k not in inherited}
    proc = subprocess.run(
        ["make", "quickstart", f"VENV={venv}", f"RUN={run}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    exported = [i for i, line in enumerate(lines) if line.startswith("exported w")]
    assert len(exported) == 1 and str(run / "export") in lines[exported[0]], lines[-12:]
    # The export's summary ends the job: its indented lines and warnings, nothing else after it (a
    # fixed last-8-lines window missed it when the search comparison's line and warning came too).
    tail = lines[exported[0] :]
    assert all(line.startswith(("  ", "warning: ")) for line in tail[1:]), "\n".join(tail)
    assert any(line.strip().startswith("dev accuracy: ") for line in tail)
    assert any(line.strip().startswith("latency (") for line in tail)
    summary = json.loads(next((run / "export").glob("*/summary.json")).read_text())
    chosen = json.loads((run / "search" / "chosen.json").read_text())
    assert summary["subnet"] == chosen["name"]
    assert chosen["latency_ms"] <= chosen["budget_ms"]
    # The first supernet a new user sees: every one of the 12 grid subnets at >= 70% dev accuracy
    # on the 2-class task (issue 10's floor; chance is 50%).
    rows = [json.loads(line) for line in (run / "eval.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    assert {r["subnet"]: round(r["accuracy"], 3) for r in rows if r["accuracy"] < 0.70} == {}


def test_python_api_snippet_runs_as_written(minilm_dir: Path) -> None:
    """README's Python API block, executed on the packaged MiniLM with `path` and `dev_batches` filled in."""
    import torch
    import transformers
    from conftest import REAL_SENTENCES

    import supernet as sn

    (code,) = re.findall(r"```python\n(.*?)```", _section("Python API"), flags=re.S)
    tok = transformers.AutoTokenizer.from_pretrained(minilm_dir)
    batch = dict(tok(REAL_SENTENCES, padding=True, return_tensors="pt"), labels=torch.tensor([1, 0, 1, 1]))
    torch.manual_seed(0)  # the classifier is new: the same seed gives the snippet's model the same one
    stock = transformers.AutoModelForSequenceClassification.from_pretrained(minilm_dir).eval()
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        before = stock(**inputs).logits
    ns: dict[str, object] = {"path": str(minilm_dir), "dev_batches": [batch]}
    torch.manual_seed(0)
    exec(compile(code, "README.md (Python API)", "exec"), ns)
    model = ns["model"]
    sn.set_max_net(model)
    model.eval()
    with torch.no_grad():
        after = model(**inputs).logits
    # The reorder permutes heads and neurons: the full model computes the same logits (to float error).
    assert (after - before).abs().max().item() < 1e-5
    assert isinstance(ns["scores"], sn.ImportanceScores) and tuple(ns["scores"].head.shape) == (6, 12)
    assert ns["cfg"].name == "w0.25-d0.50"  # the grid loop ends at the smallest subnet
    half = sn.SubnetConfig(width_mult=0.5)
    sn.set_active_subnet(model, half)
    dense = ns["get_active_subnet"](model)
    assert sn.count_params(model, half) == sum(p.numel() for p in dense.parameters())
    resolved = sn.set_active_subnet(model, ns["per_layer"])
    assert resolved.heads == (12, 6, 6, 3, 3, 3) and resolved.layers == (0, 1, 2, 4)
