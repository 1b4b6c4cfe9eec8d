"""The GPU path, checked in one go: CUDA latency, bf16 training steps, export parity, onnxruntime-gpu.

Run by bench/gpu_check.sh on a fresh GPU machine (it installs what this needs);
`--device cpu --tiny` runs the same code on a tiny model, which is what the tests do.

Parts, each recorded in the JSON (a part that fails records its error and the
others still run):

latency     `supernet.latency.measure_subnets` over the whole width x depth grid of a
            random-weight BERT-base-shaped supernet (CUDA events and medians on a
            GPU, perf_counter on CPU), b1 s128 by default;
latency_bf16 the same grid in bfloat16 (`search.py --dtype bfloat16`: a copy of the
            supernet cast, LatencySetting.dtype), what a GPU user serves in;
train       ten distillation steps at configs/bert-base-sst2-gpu.yaml's shapes
            (batch_size, data.max_length, learning rate, widths x depths, loss
            weights) on random token ids, under bf16 autocast: per step the teacher
            (the full net) runs once without gradients and every grid subnet runs
            forward + `supernet.distill.distill_loss` + backward, then AdamW steps;
            steps/s and peak memory (torch.cuda.max_memory_allocated);
export      a grid subnet and a per-layer subnet: the dense model from
            `get_active_subnet` against the supernet on the device (max abs
            difference), then `export_subnet` (ONNX + its parity check);
onnxruntime latency of the exported ONNX files with onnxruntime's CUDA provider
            (onnxruntime-gpu) when it is available, else with the CPU provider.

    python bench/gpu_check.py --device cuda --out gpu_check.json
    python bench/gpu_check.py --device cpu --tiny --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supernet import SearchSpace, SubnetConfig, active_layers, set_active_subnet, to_supernet  # noqa: E402
from supernet.cli import OneLineParser, at_least, output_file, quiet_libraries, write_figures  # noqa: E402
from supernet.distill import LossWeights, distill_loss, teacher_hidden_targets  # noqa: E402
from supernet.export import export_subnet, get_active_subnet  # noqa: E402
from supernet.latency import LatencySetting, measure_onnx, measure_subnets  # noqa: E402

GPU_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "bert-base-sst2-gpu.yaml"
PARITY_TOL = 1e-4
"""FP32 parity bound, as in export.py's parity check."""


def preset_shapes(path: Path, tiny: bool) -> dict[str, Any]:
    """The training shapes of the GPU preset (batch, length, lr, grid, loss weights); smaller with tiny."""
    cfg = yaml.safe_load(path.read_text())
    distill = cfg.get("distill", {})
    shapes = {
        "config": path.name,
        "batch_size": int(cfg["batch_size"]),
        "seq_len": int(cfg["data"]["max_length"]),
        "learning_rate": float(cfg["learning_rate"]),
        "mixed_precision": cfg.get("mixed_precision", "no"),
        "width_mults": [float(w) for w in cfg["width_mults"]],
        "depth_mults": [float(d) for d in cfg["depth_mults"]],
        "lambda_logit": float(distill.get("lambda_logit", 1.0)),
        "lambda_hidden": float(distill.get("lambda_hidden", 0.1)),
        "temperature": float(distill.get("temperature", 1.0)),
    }
    if tiny:
        shapes.update(batch_size=4, seq_len=16)
    return shapes


def make_supernet(tiny: bool, device: str) -> torch.nn.Module:
    """A random-weight BERT-base-shaped classifier (or a tiny one), converted, on `device`."""
    quiet_libraries()  # load reports of fresh heads, transformers' and datasets' bars
    torch.manual_seed(0)
    if tiny:
        config = transformers.BertConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=4,
            intermediate_size=48,
            max_position_embeddings=64,
            num_labels=2,
        )
    else:
        config = transformers.BertConfig(num_labels=2)  # 12 layers, 768 hidden, 12 heads, FFN 3072
    model = transformers.AutoModelForSequenceClassification.from_config(config)
    return to_supernet(model.eval()).to(device)


def environment(device: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "cuda_available": torch.cuda.is_available(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        out.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            compute_capability=f"{props.major}.{props.minor}",
        )
    try:
        import onnxruntime as ort

        out.update(onnxruntime=ort.__version__, onnxruntime_providers=ort.get_available_providers())
    except ImportError as err:
        out.update(onnxruntime=None, onnxruntime_error=str(err))
    return out


def check_latency(model: torch.nn.Module, space: SearchSpace, setting: LatencySetting) -> dict[str, Any]:
    grid = space.grid()
    t0 = time.perf_counter()
    results = measure_subnets(model, grid, setting, progress=True)
    return {
        "setting": setting.to_dict(),
        "timing": "cuda events" if setting.is_cuda else "perf_counter",
        "seconds": time.perf_counter() - t0,
        "subnets": {cfg.name: r.to_dict() for cfg, r in zip(grid, results, strict=True)},
    }


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def check_training(model: torch.nn.Module, shapes: dict[str, Any], device: str, steps: int) -> dict[str, Any]:
    """`steps` timed distillation steps over the preset's grid, after one untimed warm-up step."""
    student = copy.deepcopy(model).train()
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    space = SearchSpace(width_mults=tuple(shapes["width_mults"]), depth_mults=tuple(shapes["depth_mults"]))
    grid = space.grid()
    weights = LossWeights(
        logit=shapes["lambda_logit"], hidden=shapes["lambda_hidden"], temperature=shapes["temperature"]
    )
    bf16 = shapes["mixed_precision"] == "bf16"
    dtype = torch.bfloat16 if bf16 else torch.float32
    device_type = torch.device(device).type
    optimizer = torch.optim.AdamW(student.parameters(), lr=shapes["learning_rate"])
    g = torch.Generator().manual_seed(0)
    vocab = student.config.vocab_size
    b, s = shapes["batch_size"], shapes["seq_len"]
    batch = {
        "input_ids": torch.randint(0, vocab, (b, s), generator=g).to(device),
        "attention_mask": torch.ones(b, s, dtype=torch.long, device=device),
    }
    losses: list[float] = []

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=dtype, enabled=bf16), torch.no_grad():
            t_out = teacher(**batch, output_hidden_states=True)
        total = 0.0
        for cfg in grid:  # the teacher's outputs are shared by every subnet of the step
            set_active_subnet(student, cfg)
            with torch.autocast(device_type, dtype=dtype, enabled=bf16):
                out = student(**batch, output_hidden_states=True)
                kept = active_layers(student)
                t_hidden = teacher_hidden_targets(t_out.hidden_states, kept)  # the default pairing
                parts = distill_loss(
                    out.logits,
                    out.hidden_states,
                    t_out.logits,
                    t_hidden,
                    None,
                    batch["attention_mask"],
                    weights,
                )
            parts.total.backward()
            total += float(parts.total.detach())
        optimizer.step()
        losses.append(total / len(grid))

    step()  # warm-up: allocator, kernels, autotuning
    start = [p.detach().clone() for p in student.parameters()]
    if device_type == "cuda":
        torch.cuda.reset_peak_memory_stats(torch.device(device))
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    elapsed = time.perf_counter() - t0
    return {
        "shapes": shapes,
        "steps": steps,
        "subnets_per_step": len(grid),
        "seconds": elapsed,
        "steps_per_s": steps / elapsed,
        "peak_memory_gib": (
            torch.cuda.max_memory_allocated(torch.device(device)) / 2**30 if device_type == "cuda" else None
        ),
        "mean_loss_per_step": losses[1:],
        "losses_finite": all(math.isfinite(v) for v in losses),
        # That the optimizer did update the student over the timed steps (largest change of a weight).
        "max_weight_change": max(
            float((p.detach() - p0).abs().max()) for p, p0 in zip(student.parameters(), start, strict=True)
        ),
    }


def check_export(model: torch.nn.Module, device: str, out_dir: Path) -> dict[str, Any]:
    """Dense-vs-supernet parity on the device, then export_subnet (ONNX + parity) for two subnets."""
    num_layers = len(active_layers(model))
    heads = model.config.num_attention_heads
    ffn = model.config.intermediate_size
    per_layer = SubnetConfig(
        heads=tuple(heads if i % 2 else max(1, heads // 2) for i in range(num_layers)),
        ffn=tuple(ffn // 4 if i % 3 else ffn for i in range(num_layers)),
        layers=tuple(i for i in range(num_layers) if i != 1),
    )
    g = torch.Generator().manual_seed(1)
    batch = {
        "input_ids": torch.randint(0, model.config.vocab_size, (2, 16), generator=g).to(device),
        "attention_mask": torch.ones(2, 16, dtype=torch.long, device=device),
    }
    out: dict[str, Any] = {}
    for cfg in (SubnetConfig(width_mult=0.5, depth_mult=0.75), per_layer):
        row: dict[str, Any] = {}
        set_active_subnet(model, cfg)
        with torch.no_grad():
            dense = get_active_subnet(model).eval()
            diff = (dense(**batch).logits.float() - model(**batch).logits.float()).abs().max().item()
        row["torch_dense_vs_supernet_on_device"] = diff
        row["torch_parity_ok"] = diff <= PARITY_TOL
        t0 = time.perf_counter()
        try:
            report = export_subnet(model, cfg, out_dir / cfg.name, onnx=True)
            row.update(
                export_seconds=time.perf_counter() - t0,
                onnx_path=str(report.onnx_path),
                onnx_exporter=report.onnx_exporter,
                max_abs_diff_torch_vs_supernet=report.max_abs_diff_torch_vs_supernet,
                max_abs_diff_onnx_vs_torch=report.max_abs_diff_onnx_vs_torch,
                parity_ok=report.parity_ok,
            )
        except Exception as err:  # noqa: BLE001 - recorded: the point is to learn what fails on a GPU
            row.update(export_error=f"{type(err).__name__}: {err}"[:500], parity_ok=False)
        out[cfg.name] = row
    set_active_subnet(model, SubnetConfig(width_mult=1.0, depth_mult=1.0))
    return out


def check_onnxruntime(export: dict[str, Any], torch_setting: LatencySetting) -> dict[str, Any]:
    """Time each exported graph with onnxruntime, at the torch latency part's batch, length and repeats."""
    import onnxruntime as ort

    device = torch_setting.device
    cuda = device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers()
    setting = dataclasses.replace(
        torch_setting, device="cuda" if cuda else "cpu", backend="onnxruntime", num_threads=None
    )
    out: dict[str, Any] = {"provider": "CUDAExecutionProvider" if cuda else "CPUExecutionProvider"}
    if device.startswith("cuda") and not cuda:
        out["note"] = (
            "onnxruntime has no CUDAExecutionProvider here (onnxruntime-gpu not installed or not usable)"
        )
    for name, row in export.items():
        if row.get("onnx_path"):
            out[name] = measure_onnx(row["onnx_path"], setting).to_dict()
    return out


def run_part(results: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    """Run one part; record its figures, or its error (the other parts still run)."""
    t0 = time.perf_counter()
    print(f"== {name} ...", flush=True)
    try:
        results[name] = fn()
    except Exception as err:  # noqa: BLE001 - one failing part must not hide the others
        traceback.print_exc()
        results[name] = {"error": f"{type(err).__name__}: {err}"[:1000]}
    print(f"   {name} done in {time.perf_counter() - t0:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(
        allow_abbrev=False, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    p.add_argument("--tiny", action="store_true", help="a tiny random model and batch (for tests)")
    p.add_argument("--out", type=Path, default=None, help="JSON output (default: $OUT/gpu_check.json)")
    p.add_argument("--steps", type=at_least(1), default=10, help="timed training steps (default 10)")
    p.add_argument("--batch-size", type=at_least(1), default=1, help="latency batch size (default 1)")
    p.add_argument(
        "--seq-len",
        type=at_least(1),
        default=None,
        help="latency sequence length (default 128; 16 with --tiny)",
    )
    p.add_argument("--repeats", type=at_least(1), default=50, help="timed calls per subnet (default 50)")
    p.add_argument("--warmup", type=at_least(0), default=10)
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "error: --device cuda but torch sees no GPU (torch.cuda.is_available() is False)", file=sys.stderr
        )
        return 2
    out = args.out or Path(os.environ.get("OUT", ".")) / "gpu_check.json"
    # Checked before any part runs: on a lent GPU machine every minute counts.
    problem = (
        None
        if re.fullmatch(r"cpu|cuda(:\d+)?", args.device)
        else f"--device {args.device}: pass cpu, cuda or cuda:N"
    )
    if problem is None:
        try:
            out = output_file(
                str(out), __file__
            )  # ~ expanded; a folder, an unwritable one, a file no bench wrote
        except argparse.ArgumentTypeError as err:
            problem = f"--out {err}" if str(err).startswith(str(out)) else f"--out {out}: {err}"
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    seq_len = args.seq_len or (16 if args.tiny else 128)
    shapes = preset_shapes(GPU_CONFIG, args.tiny)
    space = SearchSpace(width_mults=tuple(shapes["width_mults"]), depth_mults=tuple(shapes["depth_mults"]))
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "device": args.device,
        "tiny": args.tiny,
        "environment": environment(args.device),
    }
    model = make_supernet(args.tiny, args.device)
    setting = LatencySetting(
        device=args.device,
        batch_size=args.batch_size,
        seq_len=seq_len,
        warmup=args.warmup,
        repeats=args.repeats,
    )
    run_part(results, "latency", lambda: check_latency(model, space, setting))
    bf16 = dataclasses.replace(setting, dtype="bfloat16")
    run_part(
        results, "latency_bf16", lambda: check_latency(copy.deepcopy(model).to(torch.bfloat16), space, bf16)
    )
    run_part(results, "train", lambda: check_training(model, shapes, args.device, args.steps))
    with tempfile.TemporaryDirectory() as tmp:
        run_part(results, "export", lambda: check_export(model, args.device, Path(tmp)))
        export = results["export"] if "error" not in results["export"] else {}
        run_part(results, "onnxruntime", lambda: check_onnxruntime(export, setting))
        for row in export.values():
            row.pop("onnx_path", None)  # a temporary path, gone after this block
    results["seconds"] = time.perf_counter() - t0
    failed = [
        k for k in ("latency", "latency_bf16", "train", "export", "onnxruntime") if "error" in results[k]
    ]
    parity = all(row.get("parity_ok") and row.get("torch_parity_ok") for row in export.values())
    results["ok"] = not failed and parity and bool(export) and results["train"]["losses_finite"]
    print(json.dumps(results, indent=1))
    write_figures(out, results, script=__file__)
    print(f"wrote {out}")
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    from supernet.cli import script_exit

    sys.exit(script_exit(main))
