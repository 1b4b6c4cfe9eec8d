"""bench/gpu_check.py's CPU-safe parts on a tiny model: the script that checks the GPU path works."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import load_bench

from supernet import SearchSpace

ROOT = Path(__file__).resolve().parents[1]
gpu_check = load_bench("gpu_check")


def test_preset_shapes_come_from_the_gpu_config() -> None:
    shapes = gpu_check.preset_shapes(ROOT / "configs" / "bert-base-sst2-gpu.yaml", tiny=False)
    assert shapes == {
        "config": "bert-base-sst2-gpu.yaml",
        "batch_size": 32,
        "seq_len": 128,
        "learning_rate": 2e-5,
        "mixed_precision": "bf16",
        "width_mults": [1.0, 0.75, 0.5, 0.25],
        "depth_mults": [1.0, 0.75, 0.5],
        "lambda_logit": 1.0,
        "lambda_hidden": 0.1,
        "temperature": 1.0,
    }


def test_cuda_without_a_gpu_is_refused(capsys) -> None:
    if gpu_check.torch.cuda.is_available():  # pragma: no cover - CI has no GPU
        pytest.skip("a GPU is present")
    assert gpu_check.main(["--device", "cuda", "--out", "/nonexistent/x.json"]) == 2
    assert capsys.readouterr().err == (
        "error: --device cuda but torch sees no GPU (torch.cuda.is_available() is False)\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "gpu"], "--device gpu: pass cpu, cuda or cuda:N"),
        (["--device", "cpu", "--out", "{tmp}"], "--out {tmp} is a folder: pass a file path"),
        (
            ["--device", "cpu", "--out", "{tmp}/no/x.json"],
            "--out {tmp}/no/x.json: folder {tmp}/no does not exist",
        ),
    ],
)
def test_bad_device_or_out_is_refused_before_any_part(argv, message, tmp_path, capsys) -> None:
    """--out naming a folder failed only after every part had run (minutes of a lent GPU)."""
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert gpu_check.main([*argv, "--tiny"]) == 2
    assert capsys.readouterr().err == f"error: {message.format(tmp=tmp_path)}\n"
    assert list(tmp_path.iterdir()) == []


def test_shell_script_is_valid_bash() -> None:
    for script in ("gpu_check.sh", "gpu_wheels.sh"):
        assert subprocess.run(["bash", "-n", str(ROOT / "bench" / script)]).returncode == 0


def _script_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # The interpreter running the tests stands for the GPU machine's python3 (which has torch).
    env = {**os.environ, "PYTHON": sys.executable, "DEVICE": "cpu", "OUT": str(tmp_path / "out")}
    return {**env, "WHEELS": str(tmp_path / "no-wheels"), **extra}


@pytest.mark.slow
def test_shell_script_runs_offline_with_the_python_it_finds(tmp_path) -> None:
    """The lent GPU machines reach no network and their python3 has torch: the script must use that
    python as it is (no venv, no pip download) and put this checkout on its path. .whl holds the GPU
    machine's wheels (its Python's); a CPU-safe run here with an interpreter that has everything
    failed installing them ("not a supported wheel on this platform"). One run checks both."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "multiprocess-0.70.19-py399-none-any.whl").write_text("not a wheel for this python")
    env = _script_env(
        tmp_path,
        WHEELS=str(wheels),
        EXTRA="--tiny --steps 1 --repeats 2 --warmup 0",
        VENV=str(tmp_path / "venv"),
    )
    proc = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{sys.executable} has torch {torch.__version__}: using it, nothing downloaded" in proc.stdout
    assert "installing" not in proc.stdout and "wheels from" not in proc.stdout
    assert not (tmp_path / "venv").exists()
    data = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert data["ok"] is True and data["device"] == "cpu" and len(data["export"]) == 2


def test_shell_script_names_a_module_it_cannot_import(tmp_path) -> None:
    poison = tmp_path / "poison"
    poison.mkdir()
    (poison / "datasets.py").write_text("raise ImportError('not on this machine')\n")
    env = _script_env(tmp_path, PYTHONPATH=str(poison))
    proc = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {sys.executable} cannot import datasets (ImportError: not on this machine); where PyPI is "
        "reachable, 'bash bench/gpu_wheels.sh' writes wheels for what is missing to .whl "
        "(PACKAGES='name==version ...' for other versions): bring that folder along"
    )
    assert not (tmp_path / "out" / "gpu_check.json").exists()


def test_wheel_script_names_a_package_it_does_not_know(tmp_path) -> None:
    """A misspelled package in PACKAGES was a Python traceback (PackageNotFoundError)."""
    env = {**os.environ, "PY": sys.executable, "DEST": str(tmp_path / "whl"), "PACKAGES": "datasetz"}
    proc = subprocess.run(["bash", "bench/gpu_wheels.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: datasetz is not installed in {sys.executable}: name its version, datasetz==VERSION, in PACKAGES"
    )
    assert list((tmp_path / "whl").iterdir()) == []


@pytest.mark.slow
def test_cpu_run_of_every_part(tmp_path, capsys) -> None:
    out = tmp_path / "gpu_check.json"
    code = gpu_check.main(["--device", "cpu", "--tiny", "--out", str(out), "--repeats", "3", "--warmup", "1"])
    data = json.loads(out.read_text())
    assert code == 0 and data["ok"] is True
    assert data["device"] == "cpu" and data["environment"]["cuda_available"] is False
    grid = [c.name for c in SearchSpace().grid()]
    assert list(data["latency"]["subnets"]) == grid
    assert data["latency"]["timing"] == "perf_counter"
    assert list(data["latency_bf16"]["subnets"]) == grid
    assert (
        data["latency_bf16"]["setting"]["dtype"] == "bfloat16" and "dtype" not in data["latency"]["setting"]
    )
    for r in data["latency"]["subnets"].values():
        assert r["repeats"] == 3 and 0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
    train = data["train"]
    assert train["steps"] == 10 and train["subnets_per_step"] == 12 and len(train["mean_loss_per_step"]) == 10
    assert train["shapes"]["mixed_precision"] == "bf16" and train["shapes"]["batch_size"] == 4
    assert train["losses_finite"] and train["steps_per_s"] > 0 and train["peak_memory_gib"] is None
    # The steps do update the student: AdamW's normalised step moves a weight by about the learning
    # rate, so ten steps move the most-moved weight by about 10 lr (2.03e-4 at lr 2e-5 when written).
    lr = train["shapes"]["learning_rate"]
    assert 5 * lr < train["max_weight_change"] < 20 * lr
    assert len(data["export"]) == 2
    for row in data["export"].values():
        assert row["torch_dense_vs_supernet_on_device"] <= 1e-4 and row["max_abs_diff_onnx_vs_torch"] <= 1e-4
        assert row["parity_ok"] and "onnx_path" not in row
    assert data["onnxruntime"]["provider"] == "CPUExecutionProvider"
    assert set(data["onnxruntime"]) == {"provider", *data["export"]}
    # onnxruntime is timed like torch: the same --repeats (it had a fixed 30).
    assert [data["onnxruntime"][name]["repeats"] for name in data["export"]] == [3, 3]
    # What the file holds is also printed (the device tool shows the output).
    assert f"wrote {out}" in capsys.readouterr().out


gpu_latency_probe = load_bench("gpu_latency_probe")


def test_latency_probe_refuses_a_machine_without_a_gpu(capsys, tmp_path) -> None:
    if torch.cuda.is_available():  # pragma: no cover - CI has no GPU
        pytest.skip("a GPU is present")
    assert gpu_latency_probe.main(["--out", str(tmp_path / "p.json")]) == 2
    assert capsys.readouterr().err == (
        "error: this probe needs a CUDA GPU (torch.cuda.is_available() is False)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_latency_probe_out_replaces_only_its_own_figures(capsys, tmp_path, as_script) -> None:
    """--out replaced any file (a user's notes), and failed only after the passes on a missing folder."""
    notes = tmp_path / "notes.md"
    notes.write_text("mine")
    as_script("gpu_latency_probe")
    for out, message in (
        (
            notes,
            f"{notes} exists and is not a figures file of this version's bench scripts (they mark theirs "
            "with a 'bench' key): pass a new path, or move it away",
        ),
        (tmp_path / "no" / "p.json", f"folder {tmp_path / 'no'} does not exist"),
    ):
        with pytest.raises(SystemExit) as info:
            gpu_latency_probe.main(["--out", str(out)])
        assert info.value.code == 2
        assert capsys.readouterr().err == (
            f"gpu_latency_probe.py: error: argument --out: {message} (usage: gpu_latency_probe.py --help)\n"
        )
    assert notes.read_text() == "mine"


def test_latency_probe_pass_reports_every_grid_subnet(monkeypatch) -> None:
    """One pass, on CPU and a tiny model: [median, p10, p90] per grid subnet, the GPU read before and after."""
    states = iter(["before", "after"])
    monkeypatch.setattr(gpu_latency_probe, "gpu_state", lambda: next(states))
    model = gpu_check.make_supernet(True, "cpu")
    row = gpu_latency_probe.one_pass(model, "cpu", batch_size=2, seq_len=8, warmup=1, repeats=3)
    assert row["clocks_before"] == "before" and row["clocks_after"] == "after"
    assert list(row["subnets"]) == [cfg.name for cfg in gpu_latency_probe.GRID.grid()]
    for median, p10, p90 in row["subnets"].values():
        assert 0 < p10 <= median <= p90


def test_latency_probe_passes_name_the_type_they_time(monkeypatch, tmp_path) -> None:
    """Its bfloat16 passes time a bfloat16 model under a bfloat16 setting (a float32 setting is refused
    for such a model, and the probe died at its 7th pass on the GPU, its JSON unwritten)."""
    seen: list[tuple[str, torch.dtype]] = []

    def fake_pass(model, device="cuda", **setting):
        seen.append((setting.get("dtype", "float32"), next(model.parameters()).dtype))
        return {
            "clocks_before": "",
            "clocks_after": "",
            "seconds": 0.0,
            "subnets": {"w1.00-d1.00": [1, 1, 1]},
        }

    make, real_pass = gpu_latency_probe.gpu_check.make_supernet, gpu_latency_probe.one_pass
    monkeypatch.setattr(gpu_latency_probe.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu_latency_probe.gpu_check, "make_supernet", lambda tiny, device: make(True, "cpu"))
    monkeypatch.setattr(gpu_latency_probe, "one_pass", fake_pass)
    monkeypatch.setattr(gpu_latency_probe, "gpu_state", lambda: "")
    assert gpu_latency_probe.main(["--out", str(tmp_path / "p.json")]) == 0
    assert seen == [("float32", torch.float32)] * 6 + [("bfloat16", torch.bfloat16)] * 2
    # and such a pass runs (on CPU here)
    model = make(True, "cpu").to(torch.bfloat16)
    row = real_pass(model, "cpu", batch_size=2, seq_len=8, warmup=1, repeats=3, dtype="bfloat16")
    assert list(row["subnets"]) == [cfg.name for cfg in gpu_latency_probe.GRID.grid()]
