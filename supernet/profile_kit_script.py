"""Measure a supernet profile kit on this device; writes latency-table.json.

This file is copied as `profile.py` into every kit that `export.py --profile-kit`
writes. It runs on the target device with nothing but Python 3.9+, numpy and
onnxruntime installed: it imports neither torch, transformers nor the
`supernet` package.

    python profile.py --threads 4 --batch-size 1 --seq-len 128

What it does, for every ONNX file listed in the kit's `kit.json`:

* open an onnxruntime session (the CPU execution provider, or `--provider`'s with
  the CPU one for the operators it lacks; `--threads` intra-op
  threads, one inter-op thread, sequential execution, every graph
  optimisation), the same options `supernet.latency.measure_onnx` uses;
* feed a fixed batch of the requested shape (token ids below 100, attention
  mask all ones, token types zeros);
* run `--warmup` untimed calls, then time calls with `time.perf_counter_ns`
  while Python's garbage collector is paused.

The `--repeats` timed calls of every file are split over `--rounds` passes over
all files (a fresh seeded order each pass after the first), so a burst of load
from another process hits one block of many files rather than all calls of
one; each file's median, p10 and p90 are over its pooled calls. Only one
session is open at a time, so memory stays at one model's size.

The table records the setting (threads, batch size, sequence length, backend),
the device (platform and CPU), the onnxruntime version, the time, and per file
its median / p10 / p90 / mean / standard deviation in milliseconds, the CPU other
processes took over the whole run (`other_cpu`, in cores, from /proc/stat where
there is one) and the load average (`load_avg`), and its flags: "load" when
others took more than LOAD_BOUND_CORES, "spread" when its p10-p90 spread exceeds
SPREAD_BOUND of its median; one `warning:` line names the flagged files. Copy it
back to the training machine and pass it to `search.py --latency-table`.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

KIT_FORMAT = 1
TABLE_FORMAT = 1
USER_ERROR_EXIT = 2


class KitError(Exception):
    """A bad argument or a broken kit: reported as one line, exit status 2."""


REMOTE_PROVIDERS = ("AzureExecutionProvider",)
"""onnxruntime execution providers that run nothing on the device itself."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose error is one line: argparse prints its whole usage block before the
    error, and the error is what the user needs (the usage is a --help away). Here because this
    script runs on a device without the package; the package's commands use it too (`supernet.cli`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USER_ERROR_EXIT, f"{self.prog}: error: {message} (usage: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="profile.py",
        allow_abbrev=False,
        description="Time the ONNX files of a supernet profile kit on this device and write "
        "latency-table.json (needs only numpy and onnxruntime).",
        epilog="Then, on the training machine: search.py --run RUN --latency-table latency-table.json "
        "--latency-budget-ms MS",
    )
    p.add_argument("--threads", type=int, required=True, help="onnxruntime intra-op threads (pinned)")
    p.add_argument("--batch-size", type=int, default=1, help="sequences per call (default 1)")
    p.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (default 128)")
    p.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="untimed calls before each timed block (default 5; a fresh session's first call is never timed, so 0 "
        "times as 1 does)",
    )
    p.add_argument("--repeats", type=int, default=30, help="timed calls per file (default 30)")
    p.add_argument(
        "--rounds", type=int, default=3, help="passes over all files the repeats are split over (default 3)"
    )
    p.add_argument(
        "--kit", type=Path, default=None, help="the kit folder (default: the folder holding this script)"
    )
    p.add_argument("--out", type=Path, default=None, help="output file (default: KIT/latency-table.json)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier latency table at --out (never another file)",
    )
    p.add_argument(
        "--provider",
        default="CPUExecutionProvider",
        help="onnxruntime execution provider to time with, e.g. CUDAExecutionProvider on a Jetson or "
        "OpenVINOExecutionProvider (default CPUExecutionProvider; it must be in this onnxruntime build)",
    )
    p.add_argument("--quiet", action="store_true", help="print only the output path")
    return p


def cpu_quota(cgroup: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPUs a cgroup quota allows this process (docker --cpus, a Kubernetes CPU limit), or None
    where there is none or it cannot be read: cgroup v2's cpu.max ("200000 100000" is 2 CPUs, "max"
    none), else v1's cpu.cfs_quota_us / cpu.cfs_period_us (a quota of -1 is none)."""
    try:
        fields = (cgroup / "cpu.max").read_text().split()
        if len(fields) == 2:
            return None if fields[0] == "max" else int(fields[0]) / int(fields[1])
    except (OSError, ValueError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (taskset, a container's cpuset), and no
    more than a cgroup CPU quota allows (`cpu_quota`, whole CPUs, at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    return cores if quota is None else max(1, min(cores, int(quota)))


def too_many_threads(threads: int | None, *, flag: str = "--threads ") -> str | None:
    """Why `threads` cannot be timed here (more than `usable_cores`), or None; `flag` names the value
    as the caller takes it ("--threads ", or "num_threads=" in the Python API). Threads beyond the
    cores wait for each other: a probe timed 747 ms for a 6 ms subnet with 64 threads on 2 cores."""
    cores = usable_cores()
    if threads is None or threads <= cores:
        return None
    return (
        f"{flag}{threads} is more than the {cores} core{'s' if cores > 1 else ''} this process may run on: "
        f"the extra threads would wait for each other, not time the model; pass {flag}{cores} or fewer"
    )


def _check_args(args: argparse.Namespace) -> None:
    for name, low in (("threads", 1), ("batch_size", 1), ("seq_len", 1), ("warmup", 0), ("repeats", 1)):
        value = getattr(args, name)
        if value < low:
            raise KitError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    why = too_many_threads(args.threads) if args.provider == "CPUExecutionProvider" else None
    if why is not None:
        raise KitError(why)
    if not 1 <= args.rounds <= args.repeats:
        raise KitError(f"--rounds must be in [1, --repeats={args.repeats}], got {args.rounds}")


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before anything is measured, an --out that would destroy a file the user has.

    An earlier latency table is replaced only with --overwrite (its setting is named, so a table of
    another thread count is not lost by accident); any other file or a folder is never replaced.
    """
    if out.is_dir():
        raise KitError(f"--out {out} is a folder: pass a file path")
    if not out.exists():
        return
    try:
        earlier = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        earlier = None
    if not (isinstance(earlier, dict) and earlier.get("format") == TABLE_FORMAT and "results" in earlier):
        raise KitError(
            f"{out} exists and is not a latency table: refusing to overwrite it; pass another --out"
        )
    if not overwrite:
        st = earlier.get("setting") or {}
        raise KitError(
            f"{out} already holds a latency table (threads {st.get('num_threads')}, batch {st.get('batch_size')}, "
            f"seq len {st.get('seq_len')}): pass --overwrite to replace it, or another --out"
        )


def load_kit(kit_dir: Path) -> dict[str, Any]:
    """The kit's manifest, checked: format, and every listed file present."""
    manifest = kit_dir / "kit.json"
    if not manifest.is_file():
        raise KitError(f"'{kit_dir}' is not a profile kit (no kit.json): pass --kit KIT_DIR")
    try:
        kit = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise KitError(f"{manifest} is not valid JSON ({err}): copy the kit again") from err
    if not isinstance(kit, dict) or kit.get("format") != KIT_FORMAT:
        found = kit.get("format") if isinstance(kit, dict) else None
        raise KitError(
            f"{manifest} has format {found!r}, this script reads {KIT_FORMAT}: use the kit's own profile.py"
        )
    if not isinstance(kit.get("entries"), list) or not isinstance(kit.get("run"), dict):
        raise KitError(f"{manifest} lacks its entries or run: copy the kit again")
    for entry in kit["entries"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("file"), str) and entry["file"]):
            raise KitError(f"{manifest} has an entry without a file name ({entry!r}): copy the kit again")
        if entry.get("bytes") is not None and not _is_count(entry["bytes"]):
            raise KitError(
                f"{manifest} gives {entry['file']} a size of {entry['bytes']!r}: copy the kit again"
            )
    for key in ("max_seq_len", "max_position_embeddings", "vocab_size"):
        if kit.get(key) is not None and not _is_count(kit[key]):
            raise KitError(f"{manifest} has {key} {kit[key]!r}, not a count: copy the kit again")
    missing = [e["file"] for e in kit["entries"] if not (kit_dir / e["file"]).is_file()]
    if missing:
        raise KitError(f"kit '{kit_dir}' lacks {len(missing)} file(s), e.g. {missing[0]}: copy the kit again")
    # Sizes recorded since 2026-12-01: a cut or damaged file is found before minutes of timing.
    resized = [
        e["file"]
        for e in kit["entries"]
        if e.get("bytes") is not None and (kit_dir / e["file"]).stat().st_size != e["bytes"]
    ]
    if resized:
        raise KitError(
            f"kit '{kit_dir}': {len(resized)} ONNX file(s) are not the size kit.json records, e.g. "
            f"{resized[0]}: copy the kit again"
        )
    weights = kit.get("weights")  # the weights the ONNX files share (kits written since 2026-11-30)
    if isinstance(weights, dict):
        if not _is_count(weights.get("bytes")):
            raise KitError(
                f"{manifest} gives the shared weights a size of {weights.get('bytes')!r}: copy the kit again"
            )
        path = kit_dir / str(weights.get("file"))
        size = path.stat().st_size if path.is_file() else None
        if size != weights["bytes"]:
            found = "is missing" if size is None else f"has {size} bytes, not {weights['bytes']}"
            raise KitError(
                f"kit '{kit_dir}': {path.name} (the weights its ONNX files share) {found}: copy the kit again"
            )
    # Digests recorded since 2026-12-02: bytes damaged in a copy, the size kept, failed a file's load
    # after the files before it had been timed.
    digested = [*kit["entries"], *([weights] if isinstance(weights, dict) else [])]
    try:
        changed = [
            e["file"]
            for e in digested
            if "sha256" in e and file_sha256(kit_dir / str(e["file"])) != e["sha256"]
        ]
    except OSError as err:  # a kit copied as another user, say
        raise KitError(
            f"kit '{kit_dir}': {err.filename} cannot be read ({err.strerror}): copy the kit again"
        ) from err
    if changed:
        raise KitError(
            f"kit '{kit_dir}': {len(changed)} file(s) differ from what kit.json records (sha256), e.g. "
            f"{changed[0]}: copy the kit again"
        )
    return kit


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at `path`, in hex, read in blocks (a kit's weights are tens of MiB)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def cpu_description() -> str:
    """The CPU model name as the OS reports it (falls back to platform.processor())."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            # x86: "model name"; many ARM kernels: "Hardware" or "Model".
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Model") and value.strip():
                return value.strip()
    if sys.platform == "darwin":
        import subprocess

        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, check=True
            )
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


# /proc/cpuinfo flag -> name of an instruction set with 8-bit integer dot products, fastest first.
# onnxruntime's int8 MatMul kernels use them when present; without any, int8 runs on AVX2 or NEON
# multiply-adds and gains far less over float32.
_INT8_DOT_PRODUCT = {
    "amx_int8": "AMX-INT8",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "i8mm": "ARM i8mm",
    "asimddp": "ARM dotprod",
}


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo ("flags" on x86, "Features" on ARM); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def int8_dot_product(flags: set[str] | None = None) -> str:
    """The CPU's 8-bit dot-product instruction sets, e.g. "AVX512-VNNI", or "none (AVX2)" / "unknown"."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return "unknown"
    found = [name for flag, name in _INT8_DOT_PRODUCT.items() if flag in flags]
    if found:
        return ", ".join(found)
    base = "AVX2" if "avx2" in flags else ("NEON" if "asimd" in flags else "no SIMD found")
    return f"none ({base})"


def device_description() -> dict[str, Any]:
    return {
        "cpu": cpu_description(),
        "int8_dot_product": int8_dot_product(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
        "python": platform.python_version(),
    }


def slow_layer_norm_note(version: str) -> str | None:
    """A warning for onnxruntime releases whose CPU LayerNormalization kernel is slow, else None.

    onnxruntime 1.27-1.29 take ~247 us for one [1, 128, 384] LayerNormalization on one thread,
    1.30 and later ~29 us (BENCHMARKS.md "Exported models"); the kit's graphs have one per
    LayerNorm, so a table measured there is that release's, not the device's best.
    """
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return None
    if major == 1 and 27 <= minor <= 29:
        return (
            f"warning: onnxruntime {version} runs LayerNormalization ~8x slower on CPU than 1.30 and "
            "later: this table times that install (pip install 'onnxruntime>=1.30' for faster models)"
        )
    return None


LOAD_BOUND_CORES = 0.10
"""Other processes may take at most this much CPU (in cores: 0.10 = 10% of one core) during a
measurement before its result is flagged "load"."""
SPREAD_BOUND = 0.10
"""(p90 - p10) / median above this flags a result "spread": its calls did not take a steady time."""
_CLOCK_TICKS = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


def _busy_ticks(fields: list[str]) -> int:
    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
    # already inside user, idle and iowait are not work.
    ticks = [int(v) for v in fields[1:9]]
    return ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]


def cpu_seconds() -> tuple[float | None, float, tuple[int, ...] | None]:
    """(busy CPU seconds of the whole machine since boot, or None without /proc/stat; this
    process's CPU seconds; each core's busy ticks, or None)."""
    own = os.times()
    mine = own.user + own.system
    try:
        with open("/proc/stat", encoding="ascii") as f:
            lines = [line.split() for line in f.read().splitlines()]
    except OSError:
        return None, mine, None
    fields = lines[0] if lines else []
    if not fields or fields[0] != "cpu" or len(fields) < 9:  # kernels before 2.6.11 had no steal field
        return None, mine, None
    cores = tuple(
        _busy_ticks(line)
        for line in lines[1:]
        if line and line[0].startswith("cpu") and line[0][3:].isdigit() and len(line) >= 9
    )
    return _busy_ticks(fields) / _CLOCK_TICKS, mine, cores or None


def other_cpu_cores(
    start: tuple[float | None, float, tuple[int, ...] | None],
    end: tuple[float | None, float, tuple[int, ...] | None],
    wall_s: float,
) -> float | None:
    """The CPU other processes took between two `cpu_seconds` readings `wall_s` apart, in cores.

    The machine's busy time minus this process's own (all its threads), over the wall time. Both
    counters tick in clock ticks (usually 10 ms): each core that was busy at all in between may be
    counted up to a tick off, and this process's own time too, so that many ticks are subtracted
    first: a short, idle measurement does not read as load. (One tick for every core of the machine,
    what is left where /proc/stat has no per-core lines, hid a whole core of load over a half-second
    measurement on a 64-core machine.) None without /proc/stat (macOS, Windows).
    """
    busy0, mine0, cores0 = start
    busy1, mine1, cores1 = end
    if busy0 is None or busy1 is None:
        return None
    busy = busy1 - busy0
    if cores0 is not None and cores1 is not None and len(cores0) == len(cores1):
        moved = [cores1[i] - cores0[i] for i in range(len(cores0))]  # no zip(strict): Python 3.9
        # The per-core lines' sum, not the "cpu" line: the kernel rounds that one from the cores'
        # nanoseconds, up to a tick per core off their sum, which the allowance would not cover.
        busy = sum(moved) / _CLOCK_TICKS
        resolution = (sum(1 for m in moved if m) + 1) / _CLOCK_TICKS
    else:  # no per-core counts: any core may have been busy
        resolution = (os.cpu_count() or 1) / _CLOCK_TICKS
    return max(0.0, busy - (mine1 - mine0) - resolution) / max(wall_s, 1e-9)


def load_average() -> float | None:
    """The 1-minute load average (it counts this process too), or None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def cores_text(cores: float) -> str:
    """`cores` (CPU other processes took) to two decimals, three where two would round a figure
    above `LOAD_BOUND_CORES` onto it ("0.10 cores (bound 0.10)" for a flagged 0.1021)."""
    digits = 3 if cores > LOAD_BOUND_CORES and round(cores, 2) <= LOAD_BOUND_CORES else 2
    return f"{cores:.{digits}f}"


def result_flags(other_cpu: float | None, spread: float) -> tuple[str, ...]:
    """ "load" when other processes took more than `LOAD_BOUND_CORES`, "spread" when the
    (p90 - p10) / median `spread` exceeds `SPREAD_BOUND`; empty for a clean measurement."""
    flags = []
    if other_cpu is not None and other_cpu > LOAD_BOUND_CORES:
        flags.append("load")
    if spread > SPREAD_BOUND:
        flags.append("spread")
    return tuple(flags)


def some_names(names: Iterable[str], key: Callable[[str], Any] | None = None) -> str:
    """The first four names, sorted (by `key` if given), and how many more there are."""
    ordered = sorted(names, key=key)
    return ", ".join(ordered[:4]) + (f" and {len(ordered) - 4} more" if len(ordered) > 4 else "")


def flag_warning(results: Mapping[str, tuple[tuple[str, ...], float | None, float]]) -> str | None:
    """One line naming the flagged results, or None when none is flagged.

    Args:
        results: name -> (its `result_flags`, the CPU other processes took in cores or None, its spread).
    """
    flagged = {name: r for name, r in results.items() if r[0]}
    if not flagged:
        return None
    loaded = [other for flags, other, _ in flagged.values() if "load" in flags and other is not None]
    spreads = [width for flags, _, width in flagged.values() if "spread" in flags]
    parts = []
    if loaded:
        parts.append(
            f"other processes took up to {cores_text(max(loaded))} cores (bound {LOAD_BOUND_CORES:.2f})"
        )
    if spreads:
        # One decimal where a whole number would round down onto the bound ("10% (bound 10%)").
        digits = 1 if round(100 * max(spreads)) <= round(100 * SPREAD_BOUND) else 0
        parts.append(
            f"p10-p90 spread up to {100 * max(spreads):.{digits}f}% of the median "
            f"(bound {100 * SPREAD_BOUND:.0f}%)"
        )
    shown = some_names(flagged)
    if not loaded and all(other is not None for _, other, _ in flagged.values()):
        # Measured quiet: "an idle machine" would send the user looking for a load that was not
        # there. On an idle H200 every subnet of a BERT-base grid at batch 8 spread 25-96% with
        # 10 warm-up calls, and 2-15% with 300 (BENCHMARKS.md, "The GPU path").
        return (
            f"latency of {shown} varied while no other process took the cores: {'; '.join(parts)}; "
            "remeasure, with more warm-up calls if it persists"
        )
    return (
        f"latency of {shown} may not be the model's alone: {'; '.join(parts)}; remeasure on an idle machine"
    )


def summarise(samples_ms: list[float]) -> dict[str, float | int]:
    """Median, p10, p90 (linear interpolation), mean and population std, like supernet.latency."""
    import numpy as np

    a = np.asarray(samples_ms, dtype=np.float64)
    return {
        "median_ms": float(np.median(a)),
        "p10_ms": float(np.percentile(a, 10)),
        "p90_ms": float(np.percentile(a, 90)),
        "mean_ms": float(a.mean()),
        "std_ms": float(a.std()),
        "repeats": int(a.size),
    }


def _session(path: Path, threads: int, provider: str = "CPUExecutionProvider") -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Operators the provider lacks run on the CPU, as they would in the deployed model.
    providers = [provider] + (["CPUExecutionProvider"] if provider != "CPUExecutionProvider" else [])
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    if session.get_providers()[0] != provider:
        raise KitError(
            f"onnxruntime could not start {provider} on this device (it ran {session.get_providers()[0]}): "
            "check its drivers, or time with --provider CPUExecutionProvider"
        )
    return session


def _feeds(session: Any, batch_size: int, seq_len: int, vocab_size: int) -> dict[str, Any]:
    import numpy as np

    shape = (batch_size, seq_len)
    rng = np.random.default_rng(0)
    feeds: dict[str, Any] = {}
    for inp in session.get_inputs():
        dtype = np.int32 if inp.type == "tensor(int32)" else np.int64
        if inp.name == "input_ids":
            # Values do not change a dense model's cost; any id of the vocabulary will do.
            feeds[inp.name] = rng.integers(0, min(100, vocab_size), size=shape).astype(dtype)
        elif inp.name == "attention_mask":
            feeds[inp.name] = np.ones(shape, dtype=dtype)
        elif inp.name == "token_type_ids":
            feeds[inp.name] = np.zeros(shape, dtype=dtype)
        else:
            raise KitError(f"ONNX input '{inp.name}' is not input_ids, attention_mask or token_type_ids")
    return feeds


def _onnxruntime_failure(err: Exception) -> str:
    """onnxruntime's own message, on one line and without its "[ONNXRuntimeError] : 7 :" prefix."""
    text = " ".join(str(err).split())
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : ", "", text)[:300]


def _time_block(path: Path, args: argparse.Namespace, n: int, vocab_size: int) -> list[float]:
    """A fresh session on `path`: `--warmup` untimed calls, then `n` timed ones (ms each)."""
    try:
        session = _session(path, args.threads, args.provider)
    except KitError:
        raise
    except Exception as err:  # onnxruntime's exceptions share no base class of their own
        raise KitError(
            f"onnxruntime cannot load {path.name} ({_onnxruntime_failure(err)}): copy the kit again"
        ) from err
    feeds = _feeds(session, args.batch_size, args.seq_len, vocab_size)
    try:
        session.run(None, feeds)  # a fresh session's first call sets it up: never timed (--warmup 0 too)
    except Exception as err:
        raise KitError(
            f"onnxruntime failed to run {path.name} at batch {args.batch_size}, seq len {args.seq_len} "
            f"({_onnxruntime_failure(err)}): lower --batch-size or --seq-len"
        ) from err
    for _ in range(args.warmup - 1):
        session.run(None, feeds)
    samples = []
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # a collection inside one timed call is an outlier unrelated to the model
    try:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            session.run(None, feeds)
            samples.append((time.perf_counter_ns() - t0) / 1e6)
    finally:
        if was_enabled:
            gc.enable()
    return samples


def measure_kit(kit_dir: Path, kit: dict[str, Any], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Per-file statistics, measured interleaved over `args.rounds` passes, each with the machine's
    load over the whole run (every file's calls are spread over it) and its flags."""
    files = [e["file"] for e in kit["entries"]]
    samples: dict[str, list[float]] = {f: [] for f in files}
    total = len(files) * args.rounds
    done = 0
    start = time.monotonic()
    cpu_start = cpu_seconds()
    for r in range(args.rounds):
        # The first (repeats % rounds) passes take one call more, so the total is exactly --repeats.
        n = args.repeats // args.rounds + (1 if r < args.repeats % args.rounds else 0)
        order = list(files)
        if r > 0:
            random.Random(r).shuffle(order)  # no file always follows the same neighbour
        for f in order:
            block = _time_block(kit_dir / f, args, n, int(kit.get("vocab_size") or 100))
            samples[f] += block
            done += 1
            if not args.quiet:
                block.sort()
                elapsed = time.monotonic() - start
                # Every pass times every file, so the blocks done so far price the ones left.
                left = f", about {elapsed / done * (total - done):.0f} s left" if done < total else ""
                print(
                    f"[{done:>{len(str(total))}}/{total}] round {r + 1}/{args.rounds} {f}: "
                    f"median {block[len(block) // 2]:.3f} ms over {n} calls "
                    f"({elapsed:.0f} s elapsed{left})",
                    flush=True,
                )
    load = {
        "other_cpu": other_cpu_cores(cpu_start, cpu_seconds(), time.monotonic() - start),
        "load_avg": load_average(),
    }
    results = {f: {**summarise(s), **load} for f, s in samples.items()}
    for result in results.values():
        result["flags"] = list(result_flags(result["other_cpu"], _spread(result)))
    return results


def spread(p10_ms: float, p90_ms: float, median_ms: float) -> float:
    """(p90 - p10) / median: the relative width of the middle 80% of the calls."""
    return (p90_ms - p10_ms) / median_ms if median_ms > 0 else 0.0


def _spread(result: Mapping[str, Any]) -> float:
    """`spread` of one file's `summarise` figures."""
    return spread(result["p10_ms"], result["p90_ms"], result["median_ms"])


def timing_setting(args: argparse.Namespace) -> dict[str, int]:
    """How a table was timed, as its "setting" records it (beside the backend and the provider)."""
    return {
        "num_threads": args.threads,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "rounds": args.rounds,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_args(args)
        kit_dir = (args.kit or Path(__file__).resolve().parent).resolve()
        kit = load_kit(kit_dir)
        # max_seq_len: the positions a sequence may use (RoBERTa-style models lose two to their
        # padding offset); kits written before it was recorded carry only max_position_embeddings.
        limit = kit.get("max_seq_len", kit.get("max_position_embeddings"))
        if limit is not None and args.seq_len > int(limit):
            raise KitError(f"--seq-len {args.seq_len} exceeds the {limit} positions the model has")
        try:
            import numpy  # noqa: F401
            import onnxruntime
        except ImportError as err:
            raise KitError(f"{err}: install them with 'pip install numpy onnxruntime'") from err
        out = args.out or kit_dir / "latency-table.json"
        if not out.parent.is_dir():
            raise KitError(f"--out {out}: folder {out.parent} does not exist")
        check_out(out, args.overwrite)
        try:  # the table is written after minutes of timing: find out now whether it can be
            tempfile.TemporaryFile(dir=out.parent).close()
        except OSError as err:
            raise KitError(
                f"--out {out}: cannot write in {out.parent} ({err.strerror}): pass another --out"
            ) from err
        available = onnxruntime.get_available_providers()
        if args.provider in REMOTE_PROVIDERS:
            # Listed by every PyPI build; the session runs each node on the CPU, so the table would be
            # CPU timings under its name.
            raise KitError(
                f"--provider {args.provider} calls a remote endpoint and runs no operator on this device: time "
                "with CPUExecutionProvider or the provider of the device's accelerator"
            )
        if args.provider not in available:
            raise KitError(
                f"--provider {args.provider} is not in this onnxruntime build (it has {', '.join(available)}): "
                "install the onnxruntime package that has it"
            )
        note = slow_layer_norm_note(onnxruntime.__version__)
        if note:
            print(note, file=sys.stderr)
        if not args.quiet:
            print(
                f"profiling {len(kit['entries'])} {'int8 ' if kit.get('int8') else ''}ONNX files of "
                f"{kit['run']['name']} "
                f"({'' if args.provider == 'CPUExecutionProvider' else args.provider + ', '}"
                f"threads {args.threads}, batch {args.batch_size}, seq len {args.seq_len}, "
                f"{args.repeats} calls each over {args.rounds} rounds) ...",
                flush=True,
            )
        results = measure_kit(kit_dir, kit, args)
        warning = flag_warning(
            {f: (tuple(r["flags"]), r["other_cpu"], _spread(r)) for f, r in results.items()}
        )
        if warning is not None:
            print(f"warning: {warning}", file=sys.stderr)
    except KitError as err:
        print(f"error: {err}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("interrupted: no table written; run profile.py again to time the kit", file=sys.stderr)
        return 130
    table = {
        "format": TABLE_FORMAT,
        "setting": {"backend": "onnxruntime", "provider": args.provider, **timing_setting(args)},
        "device": device_description(),
        "onnxruntime_version": onnxruntime.__version__,
        "numpy_version": numpy.__version__,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kit": kit,
        "results": results,
    }
    # Written whole, then renamed: a reader never sees half a table.
    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(table, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
