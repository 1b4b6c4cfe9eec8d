"""Measured latency of subnets, an on-disk cache of it, and a lookup-table predictor.

Measuring
    `measure_latency` times any zero-argument callable: `warmup` untimed calls,
    then `repeats` timed ones (`time.perf_counter_ns`, or CUDA events on a
    CUDA device), with torch's intra-op thread count pinned for the duration.
    `measure_subnet` / `measure_model` build a dummy batch of token ids
    ([batch, seq_len], attention mask all ones) and time one forward pass under
    `torch.inference_mode()` in eval mode; with `backend="onnxruntime"` they
    time an exported ONNX file instead (`measure_onnx`).

Load
    Every measurement also records how busy the machine was while it ran
    (`MachineLoad`: the 1-minute load average and the CPU time other processes
    took, in cores) and its spread ((p90 - p10) / median). A result whose
    other-process CPU exceeds `LOAD_BOUND_CORES` or whose spread exceeds
    `SPREAD_BOUND` carries a flag (`LatencyResult.flags`), and the measuring
    functions emit one `LatencyWarning` line per call naming what was flagged:
    such a figure may carry time lost to other work rather than the model.

Caching
    `LatencyCache` keeps one JSON file per setting at
    `<run_dir>/latency/<device>-<backend>[-int8|-bf16|-fp16]-b<B>-s<S>-t<threads>.json`
    (`LatencySetting.key`), mapping subnet names to their spec and result. A
    file timed on another machine, runtime or graph revision is a miss
    (`stale_reason`), because latency depends strongly on them.

Predicting
    `LatencyPredictor` is a lookup table in the style of HAT (Wang et al.,
    2020, "HAT: Hardware-Aware Transformers", Sec. 3.3) and Once-for-All (Cai
    et al., 2020, Sec. 3.2): latency = fixed + sum over the layers that run of
    table[(heads_i, ffn_i)], then a linear calibration fitted on a few measured
    whole subnets. How the table is measured is documented on `build`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import itertools
import json
import math
import numbers
import os
import random
import statistics
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from supernet.config import DEVICE_PATTERN, DTYPE_NAMES
from supernet.convert import Arch, supernet_state
from supernet.data import positions_problem
from supernet.elastic.depth import kept_layers
from supernet.io import atomic_write_text
from supernet.profile_kit_script import (
    LOAD_BOUND_CORES,
    SPREAD_BOUND,
    cores_text,
    cpu_seconds,
    flag_warning,
    load_average,
    other_cpu_cores,
    result_flags,
    some_names,
    too_many_threads,
)
from supernet.profile_kit_script import spread as relative_spread
from supernet.progress import progress_bar
from supernet.subnet import MAX_NET, SearchSpace, SubnetConfig, resolve_subnet, set_active_subnet

__all__ = [
    "BACKENDS",
    "LAYER_MODELS",
    "LOAD_BOUND_CORES",
    "SPREAD_BOUND",
    "STATISTICS",
    "LatencyCache",
    "LatencyPredictor",
    "LatencyResult",
    "LatencySetting",
    "LatencyWarning",
    "MachineLoad",
    "MeasureFn",
    "dummy_batch",
    "graph_change_of",
    "graph_stamp",
    "is_stale",
    "stale_reason",
    "measuring_machine",
    "load_warning",
    "measure_interleaved",
    "measure_latency",
    "measure_model",
    "measure_models",
    "measure_onnx",
    "measure_onnx_files",
    "measure_subnet",
    "measure_subnets",
    "monitor_load",
    "predictor_subnets",
    "unavailable",
]

BACKENDS = ("torch", "onnxruntime")
DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
"""The weight types the torch backend times (`LatencySetting.dtype`) and their torch dtypes."""
_DTYPE_TAGS = {"bfloat16": "bf16", "float16": "fp16"}
LAYER_MODELS = ("additive", "table")
STATISTICS = ("median_ms", "p10_ms", "mean_ms")
"""LatencyResult fields a predictor can be built for."""
_CACHE_FORMAT = 1
_PREDICTOR_FORMAT = 1


def graph_stamp(setting: LatencySetting) -> dict[str, int]:
    """The graph revisions a figure of `setting` belongs to (`supernet.export.graph_revisions`; none
    for torch, whose graph is the model)."""
    if setting.backend != "onnxruntime":
        return {}
    from supernet.export import graph_revisions as revisions

    return revisions(int8=setting.int8)


def graph_change_of(recorded: Mapping[str, object], setting: LatencySetting) -> str | None:
    """How the graphs a record of `setting`'s figures (a cache, a predictor, a search's choice) was
    taken on differ from those `export.py` writes now (`supernet.export.graph_change`), or None;
    always None for torch, whose graph is the model."""
    if setting.backend != "onnxruntime":
        return None
    from supernet.export import graph_change

    return graph_change(recorded, int8=setting.int8)


@functools.cache
def _processor(device: str) -> str:
    """The CPU's or GPU's name (read once per process: every cache read compares it)."""
    if device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        return torch.cuda.get_device_name(index) if torch.cuda.is_available() else "cuda (unavailable)"
    from supernet.profile_kit_script import cpu_description

    return cpu_description()


def measuring_machine(setting: LatencySetting) -> dict[str, object]:
    """What a figure of `setting` also depends on: the processor, the threads timing uses, the runtime.

    The setting's key names the thread count it asks for, not the one a default resolves to (torch's
    follows OMP_NUM_THREADS and the core count), nor the machine: a run folder moved to another
    device, or timed under another OMP_NUM_THREADS, must not reuse the figures.
    """
    processor = _processor(setting.device)
    if setting.backend == "torch":
        runtime, threads = f"torch {torch.__version__}", setting.num_threads or torch.get_num_threads()
    else:
        import onnxruntime

        runtime, threads = f"onnxruntime {onnxruntime.__version__}", setting.num_threads or "default"
    return {"processor": processor, "cpu_count": os.cpu_count(), "threads": threads, "runtime": runtime}


def _describe_machine(machine: object) -> str:
    if not isinstance(machine, Mapping):
        return "an unrecorded machine"
    return (
        f"{machine.get('processor')} ({machine.get('cpu_count')} cores, {machine.get('threads')} threads, "
        f"{machine.get('runtime')})"
    )


def _revision_stamp(setting: LatencySetting) -> dict[str, object]:
    """What a cache or predictor file records of where its figures come from: the machine, and the
    ONNX graph revisions (none for torch, whose graph is the model)."""
    return {"machine": measuring_machine(setting)} | graph_stamp(setting)


def stale_reason(data: Mapping[str, object], setting: LatencySetting) -> str | None:
    """Why cached figures (a latency cache or predictor file) do not hold for `setting` here, or None.

    They timed a graph `export.py` no longer writes (files written before revisions were recorded
    hold revision 1), or another machine, thread count or runtime (files written before machines
    were recorded count as another machine).
    """
    change = graph_change_of(data, setting)
    if change is not None:
        return change
    here = measuring_machine(setting)
    if data.get("machine") != here:
        return f"measured on {_describe_machine(data.get('machine'))}, this is {_describe_machine(here)}"
    return None


def is_stale(data: Mapping[str, object], setting: LatencySetting) -> bool:
    """Whether cached figures (a latency cache or predictor file) do not hold here (`stale_reason`)."""
    return stale_reason(data, setting) is not None


def _check_int(name: str, value: object, low: int) -> None:
    # bool is an int subclass; True as a batch size is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class LatencySetting:
    """Where and how latency is measured.

    Raises:
        ValueError: naming the invalid field.
    """

    device: str = "cpu"
    """"cpu", "cuda" or "cuda:<index>"."""
    backend: str = "torch"
    """"torch" (eager PyTorch) or "onnxruntime" (an exported ONNX file)."""
    batch_size: int = 1
    """Sequences per forward pass."""
    seq_len: int = 128
    """Tokens per sequence."""
    num_threads: int | None = None
    """Intra-op threads while timing; None keeps torch's (or onnxruntime's) default."""
    warmup: int = 10
    """Untimed calls before timing (allocator, caches, lazy init)."""
    repeats: int = 50
    """Timed calls; the statistics are over these."""
    int8: bool = False
    """onnxruntime only: time the dynamically quantized graph (`export.py --int8`'s model.int8.onnx)."""
    dtype: str = "float32"
    """torch only: the type of the weights and activations timed ("float32", "bfloat16", "float16"),
    the one the model will be served in. On an H200 the full BERT-base took 19.6 ms in float32 and
    6.6 ms in bfloat16 at b32 (BENCHMARKS.md, "The GPU path"). The model is cast by the caller;
    measuring a model of another type is refused."""

    def __post_init__(self) -> None:
        if not isinstance(self.device, str) or not DEVICE_PATTERN.match(self.device):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:<index>', got {self.device!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        for name in ("batch_size", "seq_len", "num_threads", "warmup", "repeats"):
            value = getattr(self, name)
            # numpy's integers (a seq_len from an array) are ints here, as SubnetConfig takes them.
            if isinstance(value, numbers.Integral) and not isinstance(value, (bool, int)):
                object.__setattr__(self, name, int(value))
        _check_int("batch_size", self.batch_size, 1)
        _check_int("seq_len", self.seq_len, 1)
        if self.num_threads is not None:
            _check_int("num_threads", self.num_threads, 1)
        _check_int("warmup", self.warmup, 0)
        _check_int("repeats", self.repeats, 1)
        if not isinstance(self.int8, bool):
            raise ValueError(f"int8 must be True or False, got {self.int8!r}")
        if self.int8 and self.backend != "onnxruntime":
            raise ValueError(
                f"int8 needs backend='onnxruntime' (an int8 ONNX graph), got backend={self.backend!r}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}")
        if self.dtype != "float32" and self.backend != "torch":
            raise ValueError(
                f"dtype {self.dtype!r} needs backend='torch' (the ONNX graphs are float32, or int8 with "
                f"int8=True), got backend={self.backend!r}"
            )

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def device_index(self) -> int:
        """The device number: N of "cuda:N", 0 for "cuda" and "cpu"."""
        return torch.device(self.device).index or 0

    @property
    def torch_dtype(self) -> torch.dtype:
        """`dtype` as a torch dtype (what the timed model is cast to)."""
        return DTYPES[self.dtype]

    @property
    def cache_stem(self) -> str:
        """`<device>-<backend>[-int8|-bf16|-fp16]-b<B>-s<S>`: the setting without its thread count."""
        # "cuda:1" -> "cuda1": a colon is not portable in file names.
        backend = f"{self.backend}-int8" if self.int8 else self.backend
        if self.dtype != "float32":
            backend = f"{backend}-{_DTYPE_TAGS[self.dtype]}"
        return f"{self.device.replace(':', '')}-{backend}-b{self.batch_size}-s{self.seq_len}"

    @property
    def key(self) -> str:
        """Identity of the setting, e.g. `cpu-torch-b1-s128-t1` (`-tdefault` when threads are unset)."""
        threads = "default" if self.num_threads is None else str(self.num_threads)
        return f"{self.cache_stem}-t{threads}"

    @property
    def conditions(self) -> str:
        """The setting in words without backend or type, e.g. "cpu, batch 1, 128 tokens, 1 thread": what
        figures of several backends timed alike share (export.py's torch, onnxruntime and int8)."""
        threads = (
            "default threads"
            if self.num_threads is None
            else f"{self.num_threads} thread{'s' if self.num_threads > 1 else ''}"
        )
        return f"{self.device}, batch {self.batch_size}, {self.seq_len} tokens, {threads}"

    @property
    def words(self) -> str:
        """The whole setting in words, e.g. "onnxruntime int8, cpu, batch 1, 128 tokens, 1 thread" (the
        plot's title; `key` is the same for file names)."""
        kind = " int8" if self.int8 else "" if self.dtype == "float32" else f" {self.dtype}"
        return f"{self.backend}{kind}, {self.conditions}"

    def to_dict(self) -> dict[str, object]:
        """All fields as a JSON-able dict; `dtype` only when not float32, so that caches, chosen.json
        files and latency tables written before it existed still name the same setting."""
        data = dataclasses.asdict(self)
        if self.dtype == "float32":
            del data["dtype"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LatencySetting:
        """Inverse of `to_dict`; unknown keys are an error."""
        allowed = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown latency setting field(s) {unknown}; allowed: {sorted(allowed)}")
        return cls(**data)  # type: ignore[arg-type]


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default method), q in [0, 1]."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class LatencyWarning(UserWarning):
    """A latency figure measured under load from other processes, or with a wide spread."""


@dataclass(frozen=True, kw_only=True)
class MachineLoad:
    """How busy the machine was during one measurement."""

    load_avg: float | None
    """1-minute load average at the end (None where the OS has none); it counts this process too."""
    other_cpu: float | None
    """Mean CPU other processes took during the measurement, in cores (None without /proc/stat)."""
    wall_s: float
    """Length of the measurement, in seconds."""

    @property
    def loaded(self) -> bool:
        """Other processes took more than `LOAD_BOUND_CORES` during the measurement."""
        return "load" in result_flags(self.other_cpu, 0.0)

    def to_dict(self) -> dict[str, object]:
        """The fields, plus `loaded`, for a bench script's JSON."""
        return {**dataclasses.asdict(self), "loaded": self.loaded}


@dataclass(frozen=True)
class LatencyResult:
    """Statistics of repeated timings, in milliseconds, and the machine's load while they ran."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    """Population standard deviation (0 for a single repeat)."""
    repeats: int
    load_avg: float | None = None
    """1-minute load average after the measurement (`MachineLoad.load_avg`), None if not recorded."""
    other_cpu: float | None = None
    """CPU other processes took during the measurement, in cores (`MachineLoad.other_cpu`)."""

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], load: MachineLoad | None = None) -> LatencyResult:
        """Summarise raw per-call timings.

        Args:
            samples_ms: one duration per timed call, in ms (at least one).
            load: the machine's load during the calls, if it was monitored.
        """
        if not samples_ms:
            raise ValueError("samples_ms must hold at least one timing")
        ordered = sorted(float(v) for v in samples_ms)
        return cls(
            median_ms=statistics.median(ordered),
            p10_ms=_percentile(ordered, 0.10),
            p90_ms=_percentile(ordered, 0.90),
            mean_ms=statistics.fmean(ordered),
            std_ms=statistics.pstdev(ordered),
            repeats=len(ordered),
            load_avg=None if load is None else load.load_avg,
            other_cpu=None if load is None else load.other_cpu,
        )

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: the relative width of the middle 80% of the calls."""
        return relative_spread(self.p10_ms, self.p90_ms, self.median_ms)

    @property
    def flags(self) -> tuple[str, ...]:
        """ "load" when other processes took more than `LOAD_BOUND_CORES`, "spread" when
        `spread` exceeds `SPREAD_BOUND`; empty for a clean measurement."""
        return result_flags(self.other_cpu, self.spread)

    def to_dict(self) -> dict[str, object]:
        """All fields, plus the derived `flags` (for readers of the JSON; ignored by `from_dict`)."""
        return {**dataclasses.asdict(self), "flags": list(self.flags)}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LatencyResult:
        """Inverse of `to_dict`; a missing timing key or an unknown key is an error.

        The load fields may be absent (results written before they were recorded).
        """
        names = [f.name for f in dataclasses.fields(cls)]
        optional = {"load_avg", "other_cpu", "flags"}
        missing = [n for n in names if n not in data and n not in optional]
        unknown = sorted(set(data) - set(names) - optional)
        if missing or unknown:
            required = [n for n in names if n not in optional]
            raise ValueError(
                f"latency result needs exactly the keys {required} (optional: {sorted(optional)}), got {sorted(data)}"
            )
        values: dict[str, object] = {}
        for n in names:
            if n == "repeats":
                values[n] = int(data[n])  # type: ignore[call-overload]
            elif n in optional:
                v = data.get(n)
                values[n] = None if v is None else float(v)  # type: ignore[arg-type]
            else:
                values[n] = float(data[n])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]


class _LoadProbe:
    """Filled in when a `monitor_load` block ends."""

    load: MachineLoad | None = None


@contextlib.contextmanager
def monitor_load() -> Iterator[_LoadProbe]:
    """Measure how much CPU other processes take while the block runs.

    The machine's busy CPU time (/proc/stat) minus this process's own
    (`os.times`, all its threads) over the block, divided by its wall time,
    is the CPU others took, in cores. Both counters tick in clock ticks
    (usually 10 ms), so a tick for each core that was busy (and one for this
    process) is subtracted first: a short, idle measurement does not read as
    load (`other_cpu_cores`). Where /proc/stat is absent (macOS,
    Windows) `other_cpu` is None; where `os.getloadavg` is absent, `load_avg`.

    Yields:
        An object whose `load` (`MachineLoad`) is set when the block ends.
    """
    probe = _LoadProbe()
    start = cpu_seconds()
    t0 = time.perf_counter()
    try:
        yield probe
    finally:
        end = cpu_seconds()
        wall = max(time.perf_counter() - t0, 1e-9)
        other = other_cpu_cores(start, end, wall)
        load_avg = load_average()
        probe.load = MachineLoad(load_avg=load_avg, other_cpu=other, wall_s=wall)


def load_report(loads: Mapping[str, MachineLoad]) -> tuple[str, str | None]:
    """What a bench script says about the machine's load over its timed parts.

    Args:
        loads: name -> the `monitor_load` reading of one timed part.

    Returns:
        A summary line (the most CPU other processes took, the range of the load average) and a
        warning line naming the parts during which other processes took more than
        `LOAD_BOUND_CORES`, or None when none did.
    """
    others = [load.other_cpu for load in loads.values() if load.other_cpu is not None]
    averages = [load.load_avg for load in loads.values() if load.load_avg is not None]
    if others:
        summary = (
            f"other processes took at most {cores_text(max(others))} cores (bound {LOAD_BOUND_CORES:.2f})"
        )
    else:
        summary = "other processes' CPU time unknown (no /proc/stat)"
    if averages:
        summary += f", 1-min load average {min(averages):.2f}-{max(averages):.2f}"
    loaded = [name for name, load in loads.items() if load.loaded]
    if not loaded:
        return f"load while timing: {summary}", None
    worst = max(loads[name].other_cpu or 0.0 for name in loaded)
    return f"load while timing: {summary}", (
        f"{some_names(loaded)} ran while other processes took up to {cores_text(worst)} cores "
        f"(bound {LOAD_BOUND_CORES:.2f}): remeasure on an idle machine"
    )


def print_load_report(loads: Mapping[str, MachineLoad]) -> str | None:
    """Print `load_report`'s summary and, prefixed "warning: ", its warning; returns the warning."""
    summary, warning = load_report(loads)
    print(summary)
    if warning is not None:
        print(f"warning: {warning}")
    return warning


def load_warning(results: Mapping[str, LatencyResult]) -> str | None:
    """One line naming the flagged results, or None when none is flagged (`flag_warning`).

    Args:
        results: name -> result of one measurement run.
    """
    return flag_warning({name: (r.flags, r.other_cpu, r.spread) for name, r in results.items()})


def _warn_flagged(results: Mapping[str, LatencyResult]) -> None:
    line = load_warning(results)
    if line is not None:
        warnings.warn(line, LatencyWarning, stacklevel=3)


def _check_threads(setting: LatencySetting) -> None:
    why = None if setting.is_cuda else too_many_threads(setting.num_threads, flag="num_threads=")
    if why is not None:
        # Threads beyond the cores wait for each other: the figure would time that, not the model.
        raise ValueError(why)


@contextlib.contextmanager
def _timing_session(setting: LatencySetting) -> Iterator[None]:
    """Pin torch's intra-op threads and pause garbage collection for the block; restore both after.

    Raises:
        ValueError: on a CPU, more threads than the cores this process may run on (the CLIs' --threads
            refuses them too).
    """
    _check_threads(setting)
    previous = torch.get_num_threads()
    if setting.num_threads is not None:
        torch.set_num_threads(setting.num_threads)
    # A collection landing inside one timed call is an outlier unrelated to the model.
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        torch.set_num_threads(previous)


def _timed_calls(
    fn: Callable[[], object],
    setting: LatencySetting,
    *,
    warmup: int,
    repeats: int,
    torch_call: bool | None = None,
) -> list[float]:
    """`warmup` untimed calls, then one duration in ms per each of `repeats` calls.

    `torch_call`: whether `fn` runs torch (timed with CUDA events on a CUDA device) rather than an
    onnxruntime session (synchronous: host clock); None = what `setting.backend` says.
    """
    samples: list[float] = []
    for _ in range(warmup):
        fn()
    if torch_call is None:
        torch_call = setting.backend == "torch"
    if setting.is_cuda and torch_call:  # pragma: no cover - no GPU in CI
        # Kernel launches are asynchronous: host clocks would time the launch, not the work.
        torch.cuda.synchronize(torch.device(setting.device))
        for _ in range(repeats):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(float(start.elapsed_time(end)))
    else:
        for _ in range(repeats):
            t0 = time.perf_counter_ns()
            fn()
            t1 = time.perf_counter_ns()
            samples.append((t1 - t0) / 1e6)
    return samples


def measure_latency(fn: Callable[[], object], setting: LatencySetting) -> LatencyResult:
    """Time `fn` under `setting`.

    Calls `fn` `setting.warmup` times untimed, then `setting.repeats` times
    timed, one timing per call. On CPU (and for the onnxruntime backend, whose
    `run` returns host arrays and so is synchronous) each call is bracketed by
    two `time.perf_counter_ns()` reads. With the torch backend on a CUDA device
    the device is synchronised after warm-up and each call is timed with a pair
    of CUDA events. torch's intra-op thread count is pinned to
    `setting.num_threads` for the duration and restored after; garbage
    collection is paused while timing.

    Args:
        fn: the work to time (its result is ignored).
        setting: device, thread count, warm-up and repeat counts.

    The machine's load over the timed calls is recorded (`monitor_load`); a
    flagged result (see `LatencyResult.flags`) also raises a `LatencyWarning`.

    Returns:
        Median, p10, p90, mean and standard deviation over the repeats, in ms,
        with the load they ran under.
    """
    with _timing_session(setting):
        for _ in range(setting.warmup):
            fn()
        with monitor_load() as probe:
            samples = _timed_calls(fn, setting, warmup=0, repeats=setting.repeats)
    result = LatencyResult.from_samples(samples, probe.load)
    _warn_flagged({"the measured call": result})
    return result


def dummy_batch(config: object, setting: LatencySetting) -> dict[str, torch.Tensor]:
    """A fixed batch of random token ids, [batch_size, seq_len], attention mask all ones.

    Args:
        config: a transformers config (for `vocab_size` and `max_position_embeddings`).
        setting: batch size, sequence length and device.

    Raises:
        ValueError: seq_len exceeds the model's position embeddings.
    """
    vocab = int(getattr(config, "vocab_size", 2))
    problem = positions_problem(config, setting.seq_len, "seq_len")
    if problem is not None:
        raise ValueError(problem)
    # Values do not change the cost of a dense forward pass; a seeded generator
    # keeps runs identical anyway.
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (setting.batch_size, setting.seq_len), generator=g)
    attention_mask = torch.ones_like(input_ids)
    return {"input_ids": input_ids.to(setting.device), "attention_mask": attention_mask.to(setting.device)}


def _check_device(model: nn.Module, setting: LatencySetting) -> None:
    """Refuse, in one line each, what the dummy batch cannot drive (not a model, no transformers
    config, 3-D multiple-choice inputs) and a model on another device or of another type."""
    kind = type(model).__name__
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"expected a loaded model (a torch.nn.Module), got {kind}: load a folder with transformers' "
            "from_pretrained first, or time an exported .onnx file with backend='onnxruntime'"
        )
    if getattr(model, "config", None) is None:
        raise ValueError(
            f"{kind} has no transformers config to shape a dummy batch from: "
            "time it with measure_latency(lambda: model(inputs), setting)"
        )
    if kind.endswith("ForMultipleChoice"):
        raise ValueError(
            f"{kind} takes inputs of [batch, choices, sequence], the dummy batch is [batch, sequence]: "
            "time it with measure_latency(lambda: model(**inputs), setting) and inputs of your own"
        )
    param = next(model.parameters(), None)
    if param is not None and param.device != torch.device(setting.device):
        if not (setting.device == "cuda" and param.device.type == "cuda"):
            raise ValueError(
                f"model is on {param.device} but setting.device is {setting.device!r}: move the model first"
            )
    floating = next((p for p in model.parameters() if p.is_floating_point()), None)
    if floating is not None and floating.dtype != setting.torch_dtype:
        # A float32 figure filed under bfloat16 (or the reverse) would pass for the other silently.
        raise ValueError(
            f"model is in {str(floating.dtype).removeprefix('torch.')} but setting.dtype is "
            f"{setting.dtype!r}: cast the model first (model.to({setting.torch_dtype}))"
        )


def _measure_torch(model: nn.Module, setting: LatencySetting) -> LatencyResult:
    _check_device(model, setting)
    batch = dummy_batch(model.config, setting)  # type: ignore[attr-defined]
    with _eval_mode(model), torch.inference_mode():
        return measure_latency(lambda: model(**batch), setting)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def unavailable(setting: LatencySetting, *, onnx: bool | None = None) -> str | None:
    """Why this machine cannot measure `setting`, in a few words; None when it can.

    A CUDA setting needs a torch that sees that device, and for ONNX graphs (`onnx`, default: the
    setting's backend is onnxruntime) onnxruntime's CUDA provider: without it onnxruntime runs the
    graph on the CPU, and the figure would be labelled with the GPU's name.
    """
    if not setting.is_cuda:
        return None
    if not torch.cuda.is_available():
        return f"this torch ({torch.__version__}) sees no CUDA device"
    count, index = torch.cuda.device_count(), setting.device_index
    if index >= count:
        return f"this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
    needs_onnx = setting.backend == "onnxruntime" if onnx is None else onnx
    if needs_onnx:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return f"onnxruntime {ort.__version__} here has no CUDA provider (install onnxruntime-gpu)"
    return None


def _onnx_session(onnx_path: str | os.PathLike[str], setting: LatencySetting) -> tuple[Any, dict[str, Any]]:
    """An onnxruntime session configured for timing, and a dummy feed of the setting's shape."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 0 if setting.num_threads is None else setting.num_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers: list[Any] = ["CPUExecutionProvider"]
    if setting.is_cuda:
        providers = [("CUDAExecutionProvider", {"device_id": setting.device_index})]
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=providers)

    shape = (setting.batch_size, setting.seq_len)
    rng = np.random.default_rng(0)
    feeds: dict[str, Any] = {}
    for inp in session.get_inputs():
        for axis, dim, want in zip(("batch", "sequence"), inp.shape, shape, strict=False):
            if isinstance(dim, int) and dim != want:
                raise ValueError(
                    f"'{onnx_path}' has a fixed {axis} axis of {dim} on input '{inp.name}', "
                    f"the setting asks for {want}: export it with dynamic axes or measure at {dim}"
                )
        dtype = np.int32 if inp.type == "tensor(int32)" else np.int64
        if inp.name == "input_ids":
            # Ids below 100 exist in every vocabulary; the graph has no vocab size to ask.
            feeds[inp.name] = rng.integers(0, 100, size=shape).astype(dtype)
        elif inp.name == "attention_mask":
            feeds[inp.name] = np.ones(shape, dtype=dtype)
        elif inp.name == "token_type_ids":
            feeds[inp.name] = np.zeros(shape, dtype=dtype)
        else:
            raise ValueError(
                f"ONNX input '{inp.name}' is not one of input_ids, attention_mask, token_type_ids"
            )
    return session, feeds


def measure_onnx(onnx_path: str | os.PathLike[str], setting: LatencySetting) -> LatencyResult:
    """Time an exported ONNX model with onnxruntime.

    The session uses `intra_op_num_threads = setting.num_threads` (0, i.e.
    onnxruntime's default, when None), one inter-op thread, sequential
    execution and every graph optimisation. Inputs named `input_ids`,
    `attention_mask` and `token_type_ids` are fed a dummy batch (ids in
    [0, 100), mask ones, token types zeros) of the setting's shape.

    Args:
        onnx_path: the .onnx file (with dynamic or matching batch/sequence axes).
        setting: batch size, sequence length, threads, repeats.

    Raises:
        ValueError: a setting of another backend; the graph has an input this function cannot fill,
            a fixed batch or sequence axis of another size than the setting's, or (known from the
            config.json beside it) fewer positions than `setting.seq_len`.
        FileNotFoundError: no file at `onnx_path`.
    """
    if setting.backend != "onnxruntime":  # a torch setting's figure would be filed as torch's
        raise ValueError("measure_onnx times an ONNX graph: use backend='onnxruntime'")
    if not Path(onnx_path).is_file():
        raise FileNotFoundError(f"no ONNX graph at '{onnx_path}'")
    _check_graph_positions(onnx_path, setting)
    session, feeds = _onnx_session(onnx_path, setting)
    return measure_latency(lambda: session.run(None, feeds), setting)


def _check_graph_positions(onnx_path: str | os.PathLike[str], setting: LatencySetting) -> None:
    """Fail in one line when the graph's model has fewer positions than `setting.seq_len`.

    The model is known from the config.json an export writes beside its graphs (taken to be the
    graph's model); a graph without one, or with one this cannot read, is not checked (onnxruntime
    then fails at the first call, naming the node). A graph's fixed axes are compared with the
    setting when its session opens (`_onnx_session`): in an interleaved run, at its first block.

    Raises:
        ValueError: naming the graph, the sequence length and the model's positions.
    """
    config = Path(onnx_path).parent / "config.json"
    try:
        fields = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(fields, dict):
        return
    try:
        problem = positions_problem(SimpleNamespace(**fields), setting.seq_len, "seq_len")
    except (TypeError, ValueError):  # not a model config this can read: left to onnxruntime
        return
    if problem is not None:
        raise ValueError(f"'{onnx_path}': {problem}")


def _block_bar(total: int, enabled: bool) -> tqdm:
    """The progress bar of an interleaved measurement: one step per timed block, the item as postfix.

    It is drawn between blocks, never inside the timed calls, and at most every 0.5 s, so the terminal
    costs the figures nothing measurable.
    """
    return progress_bar(total=total, desc="latency", unit="block", disable=not enabled, mininterval=0.5)


def measure_onnx_files(
    paths: Mapping[str, str | os.PathLike[str]],
    setting: LatencySetting,
    *,
    rounds: int = 5,
    progress: bool = False,
) -> dict[str, LatencyResult]:
    """Latency of several ONNX graphs, interleaved like `measure_models` (see `measure_interleaved`).

    Each pass opens one graph at a time (so memory holds one session), sessions set up as in
    `measure_onnx`.

    Args:
        paths: name -> .onnx file.
        setting: what to measure (onnxruntime backend).
        rounds: passes over the graphs, 1..repeats.
        progress: show a progress bar over the timed blocks.

    Returns:
        name -> result, in the order of `paths`.
    """
    if setting.backend != "onnxruntime":
        raise ValueError("measure_onnx_files times ONNX graphs: use backend='onnxruntime'")
    return measure_interleaved(paths, setting, rounds=rounds, progress=progress)


def measure_interleaved(
    items: Mapping[str, nn.Module | str | os.PathLike[str]],
    setting: LatencySetting,
    *,
    rounds: int = 5,
    progress: bool = False,
) -> dict[str, LatencyResult]:
    """Latency of torch models and ONNX graphs side by side, their calls interleaved in rounds.

    The `setting.repeats` timed calls of each item are split over `rounds` passes; the first pass
    visits the items in the given order, later ones in a seeded random order, so no item always
    follows the same neighbour. Before an item's first block run `setting.warmup` untimed calls,
    before its later blocks 2 (at most `setting.warmup`; an ONNX graph's freshly opened session
    always gets at least 1). A torch model (already on `setting.device`, run in eval mode under
    `torch.inference_mode` and restored after) gets a dummy batch of its own config's shape
    (`dummy_batch`); an ONNX graph is opened in a fresh onnxruntime session for each of its blocks
    (one session in memory at a time, options as in `measure_onnx`). Everything runs inside one
    timing session (torch threads pinned to `setting.num_threads`, garbage collection paused).

    Why interleave: on a shared or virtualised machine the speed drifts over seconds (on the 2-core
    VM of BENCHMARKS.md, one session's 200-call medians moved by up to 17% from one block to the
    next, idle): figures taken one after another compare different moments, figures whose calls are
    interleaved see the same mix of moments.

    Args:
        items: name -> torch model, or path of an .onnx file.
        setting: batch, sequence length, threads, warm-up, repeats (its backend is not used: each
            item's kind decides, the clock too: CUDA events for a torch model on a CUDA device).
        rounds: passes over the items, 1..repeats.
        progress: show a progress bar over the timed blocks (rounds x items; see `_block_bar`).

    Returns:
        name -> result, in the order of `items`; all carry the load of the whole run
        (`monitor_load`), and flagged ones raise one `LatencyWarning`.
    """
    _check_int("rounds", rounds, 1)
    rounds = min(rounds, setting.repeats)
    names = list(items)
    modules = {name: m for name, m in items.items() if isinstance(m, nn.Module)}
    for model in modules.values():
        _check_device(model, setting)
    for name, item in items.items():
        if name not in modules:
            if not Path(item).is_file():  # type: ignore[arg-type]
                raise FileNotFoundError(f"no ONNX graph at '{item}' (item '{name}')")
            _check_graph_positions(item, setting)  # type: ignore[arg-type]
    batches = {name: dummy_batch(m.config, setting) for name, m in modules.items()}  # type: ignore[attr-defined]
    was_training = {name: m.training for name, m in modules.items()}

    def opened(name: str) -> Callable[[], object]:
        if name in modules:
            model, batch = modules[name], batches[name]
            return lambda: model(**batch)
        session, feeds = _onnx_session(items[name], setting)  # type: ignore[arg-type]
        return lambda: session.run(None, feeds)

    samples: dict[str, list[float]] = {name: [] for name in names}
    try:
        for model in modules.values():
            model.eval()
        with (
            torch.inference_mode(),
            _timing_session(setting),
            monitor_load() as probe,
            _block_bar(rounds * len(names), progress) as bar,
        ):
            for r in range(rounds):
                # Spread repeats evenly: the first (repeats % rounds) rounds take one more.
                n = setting.repeats // rounds + (1 if r < setting.repeats % rounds else 0)
                warmup = setting.warmup if r == 0 else min(setting.warmup, 2)
                order = list(range(len(names)))
                if r > 0:
                    random.Random(r).shuffle(order)
                for i in order:
                    bar.set_postfix_str(names[i], refresh=False)
                    call = opened(names[i])
                    is_torch = names[i] in modules
                    samples[names[i]] += _timed_calls(
                        call,
                        setting,
                        # A session opened for this block: its first call sets it up, never timed.
                        warmup=warmup if is_torch else max(warmup, 1),
                        repeats=n,
                        torch_call=is_torch,
                    )
                    del call  # an onnxruntime session is released before the next one opens
                    bar.update()
    finally:
        for name, model in modules.items():
            model.train(was_training[name])
    results = {name: LatencyResult.from_samples(samples[name], probe.load) for name in names}
    _warn_flagged(results)
    return results


def measure_model(
    model: nn.Module | None,
    setting: LatencySetting,
    *,
    onnx_path: str | os.PathLike[str] | None = None,
) -> LatencyResult:
    """Latency of a plain transformers model (stock, exported dense, or a supernet as it is set).

    Args:
        model: the model, already on `setting.device` (unused for onnxruntime).
        setting: what to measure.
        onnx_path: the exported model, required when `setting.backend == "onnxruntime"`.

    Raises:
        ValueError: onnxruntime without `onnx_path`; a model on another device or of another type,
            without a transformers config, or of multiple choice; more threads than cores.
        TypeError: `model` is not a torch module (a path, say).
    """
    if setting.backend == "onnxruntime":
        if onnx_path is None:
            raise ValueError("onnx_path is required when backend='onnxruntime'")
        return measure_onnx(onnx_path, setting)
    if model is None:
        raise ValueError("model is required when backend='torch'")
    return _measure_torch(model, setting)


def measure_subnet(
    model: nn.Module | None,
    cfg: SubnetConfig,
    setting: LatencySetting,
    *,
    onnx_path: str | os.PathLike[str] | None = None,
) -> LatencyResult:
    """Latency of the subnet `cfg` of a converted model.

    With the torch backend the subnet is activated on `model` for the
    measurement and the previously active subnet (and train/eval mode) is
    restored after. With onnxruntime, `onnx_path` must be `cfg` exported; the
    model is not used.

    Args:
        model: a model converted by `to_supernet`, on `setting.device`.
        cfg: the subnet.
        setting: what to measure.
        onnx_path: the exported subnet, required when `setting.backend == "onnxruntime"`.
    """
    if setting.backend == "onnxruntime":
        return measure_model(None, setting, onnx_path=onnx_path)
    if model is None:
        raise ValueError("model is required when backend='torch'")
    state = supernet_state(model)
    previous = MAX_NET if state.active is None else state.active
    set_active_subnet(model, cfg)
    try:
        return _measure_torch(model, setting)
    finally:
        set_active_subnet(model, previous)


def measure_subnets(
    model: nn.Module,
    subnets: Sequence[SubnetConfig],
    setting: LatencySetting,
    *,
    rounds: int | None = None,
    progress: bool = False,
) -> list[LatencyResult]:
    """Latency of several subnets, measured interleaved so that load changes hit them alike.

    The `setting.repeats` timed calls of each subnet are split over `rounds`
    passes (default: as many as repeats, i.e. one timed call per subnet per
    pass); each pass visits every subnet, the first in the given order, the
    others in a seeded random order. On a shared machine the
    load from other processes changes within seconds; interleaving spreads
    every subnet's calls over the whole measurement, so all see the same mix
    of quiet and busy moments and their medians stay comparable, where
    measuring one subnet after another would compare a quiet minute with a
    busy one. Before a subnet's first block run `setting.warmup` untimed
    calls; before its later blocks, one untimed call on a one-token batch,
    which rebuilds per-subnet state (`ElasticLinear`'s inference copy of the
    active weights) at negligible cost. The previously active subnet is
    restored after.

    Args:
        model: a converted model on `setting.device` (torch backend).
        subnets: the subnets, measured in this order within each pass.
        setting: what to measure.
        rounds: passes over the subnets, 1..repeats (default repeats).
        progress: show a progress bar over the timed blocks (rounds x subnets; see `_block_bar`).

    Returns:
        One result per subnet, in order; all carry the load of the whole run
        (`monitor_load`), and flagged ones raise one `LatencyWarning`.
    """
    if setting.backend != "torch":
        raise ValueError("measure_subnets times torch subnets: use backend='torch'")
    rounds = setting.repeats if rounds is None else rounds
    _check_int("rounds", rounds, 1)
    rounds = min(rounds, setting.repeats)
    _check_device(model, setting)
    state = supernet_state(model)
    previous = MAX_NET if state.active is None else state.active
    config = model.config  # type: ignore[attr-defined]
    batch = dummy_batch(config, setting)
    token = dummy_batch(config, dataclasses.replace(setting, batch_size=1, seq_len=1))
    samples: list[list[float]] = [[] for _ in subnets]
    try:
        # One load record for the whole interleaved run: every subnet's calls are spread over it.
        with (
            _eval_mode(model),
            torch.inference_mode(),
            _timing_session(setting),
            monitor_load() as probe,
            _block_bar(rounds * len(subnets), progress) as bar,
        ):
            for r in range(rounds):
                # Spread repeats evenly: the first (repeats % rounds) rounds take one more.
                n = setting.repeats // rounds + (1 if r < setting.repeats % rounds else 0)
                order = list(range(len(subnets)))
                if r > 0:
                    # A fresh (seeded) order each pass: no subnet always follows
                    # the same neighbour or sits at the same point of the pass.
                    random.Random(r).shuffle(order)
                for i in order:
                    cfg = subnets[i]
                    bar.set_postfix_str(cfg.name, refresh=False)
                    set_active_subnet(model, cfg)
                    if r > 0:
                        model(**token)
                    warmup = setting.warmup if r == 0 else 0
                    samples[i] += _timed_calls(lambda: model(**batch), setting, warmup=warmup, repeats=n)
                    bar.update()
    finally:
        set_active_subnet(model, previous)
    results = [LatencyResult.from_samples(s, probe.load) for s in samples]
    _warn_flagged({cfg.name: r for cfg, r in zip(subnets, results, strict=True)})
    return results


def measure_models(
    models: Mapping[str, nn.Module], setting: LatencySetting, *, rounds: int = 5, progress: bool = False
) -> dict[str, LatencyResult]:
    """Latency of several distinct torch models, interleaved in rounds (see `measure_interleaved`).

    Each model gets a dummy batch of its own config's shape (`dummy_batch`: random ids, mask all
    ones). A burst of load from another process thus touches one block of many models, and the
    median over the pooled calls ignores it.

    Args:
        models: name -> model (stock or dense export), already on `setting.device`.
        setting: what to measure (torch backend).
        rounds: passes over the models, 1..repeats.
        progress: show a progress bar over the timed blocks.

    Returns:
        name -> result, in the order of `models`; all carry the load of the whole
        run (`monitor_load`), and flagged ones raise one `LatencyWarning`.
    """
    if setting.backend != "torch":
        raise ValueError("measure_models times torch models: use backend='torch'")
    return measure_interleaved(models, setting, rounds=rounds, progress=progress)


MeasureFn = Callable[[nn.Module, Sequence[SubnetConfig], LatencySetting], Sequence[LatencyResult]]
"""Measures several subnets of a model, one result per subnet, like `measure_subnets`."""


# ---------------------------------------------------------------- cache


def _atomic_write_json(path: Path, data: object) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never half of one."""
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on `folder` (POSIX `flock` on the folder itself: no lock file is left
    in the user's run); where the platform has no `flock` (Windows), no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            # NFS without lockd, Lustre mounted noflock, some FUSE mounts (ENOLCK, ENOSYS, ...): the
            # cache is written unlocked there, as before the lock, not refused.
            pass
        yield
    finally:
        os.close(fd)  # closing releases the lock


class LatencyCache:
    """Measured latencies of subnets for one setting, in one JSON file.

    The file is `<run_dir>/latency/<device>-<backend>[-int8|-bf16|-fp16]-b<B>-s<S>-t<threads>.json`
    (`setting.key`),
    one per thread count, so searches with different --threads keep each other's figures:

        {"format": 1, "setting": {...}, "num_threads": 1,
         "entries": {"<subnet name>": {"spec": {...}, "result": {...}}}}

    Figures timed with other warm-up or repeat counts are not reused, so a search asking for more
    repeats gets them (and its chosen.json says how its figures were taken); nor are they lost: where
    the file holds another timing, this one's figures go to `<key>.w<warmup>-r<repeats>.json` beside
    it (`path` names the file in use).

    Every `get` and `put` rereads the file, so several processes can share it: a `put` holds a lock
    on the folder while it rereads, adds its entry and replaces the file (writes are atomic).

    Args:
        run_dir: the run's folder.
        setting: the measurement setting this cache holds.
    """

    def __init__(self, run_dir: str | os.PathLike[str], setting: LatencySetting) -> None:
        self.setting = setting
        self.main = Path(run_dir) / "latency" / f"{setting.key}.json"
        self.beside = self.main.with_name(f"{setting.key}.w{setting.warmup}-r{setting.repeats}.json")
        self._warned = False

    def _read(self, path: Path) -> tuple[dict[str, object] | None, bool]:
        """(the file's content when it holds this setting's figures, else None; whether it is a
        readable file of this setting timed with other warm-up or repeat counts)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, False
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            problem: str | None = f"not valid JSON: {err}"
        else:
            fields = isinstance(data, dict) and data.get("format") == _CACHE_FORMAT
            shaped = (
                fields and isinstance(data.get("entries"), dict) and isinstance(data.get("setting"), dict)
            )
            problem = None if shaped else "unknown format"
        if problem is not None:
            # A damaged cache is only a cache: measure again (the next `put` replaces the file).
            self._warn(
                f"latency cache {path} cannot be read ({problem}): its subnets are measured again and the file replaced"
            )
            return None, False
        # Another thread count is another measurement (a file renamed by hand is not taken for
        # another setting), and another ONNX graph revision timed graphs export.py no longer
        # writes: the whole file is a miss (the next `put` replaces it).
        timed = data["setting"]
        if data.get("num_threads") != self.setting.num_threads:
            return None, False
        stale = stale_reason(data, self.setting)
        if stale is not None:
            self._warn(f"latency cache {path} does not hold here ({stale}): its subnets are measured again")
            return None, False
        if (timed.get("warmup"), timed.get("repeats")) != (self.setting.warmup, self.setting.repeats):
            return None, True
        return data, False

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(message, LatencyWarning, stacklevel=4)

    def _load(self) -> tuple[dict[str, object] | None, Path]:
        """This setting's figures (or None) and the file that holds them, or would."""
        data, other_timing = self._read(self.main)
        if data is not None:
            return data, self.main
        beside = self._read(self.beside)[0] if self.beside.exists() else None
        if beside is not None:  # also when the main file has gone or gone stale since
            return beside, self.beside
        return None, self.beside if other_timing else self.main

    def other_timing(self) -> tuple[object, object] | None:
        """(warm-up, repeats) of the figures the cache file holds for this setting when they were timed
        with other counts than `setting`'s (so not reused here), else None."""
        if not self._read(self.main)[1]:
            return None
        timed = json.loads(self.main.read_text(encoding="utf-8"))["setting"]
        return timed.get("warmup"), timed.get("repeats")

    @property
    def path(self) -> Path:
        """The file that holds (or will hold) this setting's figures."""
        return self._load()[1]

    def entries(self) -> dict[str, dict[str, object]]:
        """All entries (subnet name -> {"spec", "result"}) valid for this setting."""
        data = self._load()[0]
        return {} if data is None else dict(data["entries"])  # type: ignore[call-overload]

    def get(self, cfg: SubnetConfig) -> LatencyResult | None:
        """The cached result for `cfg`, or None (absent, other spec under the name, or other thread count)."""
        entry = self.entries().get(cfg.name)
        if entry is None:
            return None
        try:
            if entry.get("spec") != cfg.to_dict():
                return None
            return LatencyResult.from_dict(entry["result"])
        except (AttributeError, KeyError, TypeError, ValueError):
            # A damaged entry is a miss too: measured again, and the next `put` replaces it.
            self._warn(
                f"latency cache {self.path} holds a damaged entry for {cfg.name}: it is measured again"
            )
            return None

    def put(self, cfg: SubnetConfig, result: LatencyResult) -> None:
        """Store `result` for `cfg` (replacing a damaged or stale file; one of another timing is kept)."""
        self.main.parent.mkdir(parents=True, exist_ok=True)
        with _folder_lock(self.main.parent):
            data, path = self._load()
            if data is None:
                data = {
                    "format": _CACHE_FORMAT,
                    "setting": self.setting.to_dict(),
                    "num_threads": self.setting.num_threads,
                    "entries": {},
                } | _revision_stamp(self.setting)
            data["entries"][cfg.name] = {"spec": cfg.to_dict(), "result": result.to_dict()}  # type: ignore[index]
            _atomic_write_json(path, data)

    def __contains__(self, cfg: object) -> bool:
        return isinstance(cfg, SubnetConfig) and self.get(cfg) is not None

    def __len__(self) -> int:
        return len(self.entries())


# ---------------------------------------------------------------- predictor


def _default_choices(total: int, space: SearchSpace) -> tuple[int, ...]:
    # The counts `resolve_subnet` and `sample_active_subnet` produce for the space.
    return tuple(sorted({max(1, round(total * w)) for w in space.width_mults}))


def _check_choices(name: str, values: Sequence[int], top: int) -> tuple[int, ...]:
    out = tuple(sorted(set(int(v) for v in values)))
    if not out:
        raise ValueError(f"{name} must not be empty")
    for v in out:
        if not 1 <= v <= top:
            raise ValueError(f"{name} values must be in [1, {top}], got {v}")
    return out


def _bracket(choices: Sequence[int], x: float) -> tuple[int, float]:
    """Index i and weight t with x = (1-t)*choices[i] + t*choices[i+1]; t outside [0, 1] extrapolates."""
    if len(choices) == 1:
        return 0, 0.0
    i = 0
    while i < len(choices) - 2 and x > choices[i + 1]:
        i += 1
    return i, (x - choices[i]) / (choices[i + 1] - choices[i])


def _lstsq(rows: Sequence[Sequence[float]], targets: Sequence[float]) -> list[float]:
    solution = torch.linalg.lstsq(
        torch.tensor(rows, dtype=torch.float64),
        torch.tensor(targets, dtype=torch.float64).unsqueeze(1),
        driver="gelsd",
    ).solution
    return [float(v) for v in solution.squeeze(1)]


class LatencyPredictor:
    """Predicts a subnet's latency from a per-layer lookup table.

    prediction(cfg) = alpha * (fixed_ms + sum over kept layers i of
    layer_ms(heads_i, ffn_i)) + beta.

    `layer_ms` reads the table for measured (heads, ffn) pairs and
    interpolates bilinearly between the measured counts otherwise (linearly
    extrapolating past the smallest or largest count). Build one with `build`
    or `load`.

    Args:
        arch: the supernet's architecture (to resolve subnets).
        setting: the setting the table was measured under.
        head_choices: measured head counts, ascending.
        ffn_choices: measured FFN neuron counts, ascending.
        table: ms per layer for every (heads, ffn) in the product of the choices.
        fixed_ms: cost outside the encoder layers (embeddings, mask, pooler, head, Python).
        alpha: calibration scale.
        beta: calibration offset, ms.
        calibration: the (subnet, measured ms) pairs alpha and beta were fitted on.
        statistic: the LatencyResult field predicted ("median_ms" by default).
        calibration_model: which calibration alpha and beta come from (see `calibrate`).
    """

    def __init__(
        self,
        *,
        arch: Arch,
        setting: LatencySetting,
        head_choices: Sequence[int],
        ffn_choices: Sequence[int],
        table: Mapping[tuple[int, int], float],
        fixed_ms: float,
        alpha: float = 1.0,
        beta: float = 0.0,
        calibration: Sequence[tuple[SubnetConfig, float]] = (),
        statistic: str = "median_ms",
        calibration_model: str = "affine",
    ) -> None:
        self.arch = arch
        self.setting = setting
        self.head_choices = _check_choices("head_choices", head_choices, arch.num_heads)
        self.ffn_choices = _check_choices("ffn_choices", ffn_choices, arch.ffn_dim)
        missing = [c for c in itertools.product(self.head_choices, self.ffn_choices) if c not in table]
        if missing:
            raise ValueError(f"table lacks (heads, ffn) entries {missing}")
        self.table = {(int(h), int(f)): float(v) for (h, f), v in table.items()}
        self.fixed_ms = float(fixed_ms)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.calibration = [(cfg, float(ms)) for cfg, ms in calibration]
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {list(STATISTICS)}, got {statistic!r}")
        self.statistic = statistic
        self.calibration_model = calibration_model
        """Which calibration `calibrate` chose: "identity", "scale" or "affine"."""
        self._said_extrapolation = False

    # -------------------------------------------------------- building

    @classmethod
    def build(
        cls,
        model: nn.Module,
        setting: LatencySetting,
        *,
        space: SearchSpace | None = None,
        head_choices: Sequence[int] | None = None,
        ffn_choices: Sequence[int] | None = None,
        calibration_subnets: Sequence[SubnetConfig] | None = None,
        table_depth: int | None = None,
        layer_model: str = "additive",
        statistic: str = "median_ms",
        rounds: int | None = None,
        measure: MeasureFn | None = None,
        log: Callable[[str], None] | None = None,
    ) -> LatencyPredictor:
        """Measure the lookup table and calibrate it.

        Method. Every measurement is of the whole supernet (a subnet keeps at
        least one layer, and timing one `BertLayer` alone would miss what the
        encoder adds around it: mask handling, hooks, weights leaving the cache
        between layers); the table is solved from them by least squares:

        * for each (heads, ffn) pair, the supernet running its first
          `table_depth` layers (default all L), each with that pair:
          t = fixed + depth * layer(heads, ffn);
        * for the largest and the smallest pair, also two other depths among
          1, L // 2 and L: latency against depth is a line whose intercept is
          `fixed`.

        With `layer_model="table"` that is one unknown per pair plus `fixed`,
        exactly determined by the probes. The default, "additive", models a
        layer as attention(heads) + ffn(neurons): the two blocks run one after
        the other on separate weights, so their costs add (cost.py's FLOP
        formula has no cross term either). That has |heads| + |ffn| unknowns
        instead of |heads| * |ffn|, so each is fitted from several probes and
        timing noise averages out (tests/test_latency.py checks this on
        synthetic noise; on real runs the two were within about a point of
        MAPE of each other, bench/latency_predictor.py prints both). The
        table still holds every pair (the sums), so prediction is the same
        lookup either way. Both are solved with `torch.linalg.lstsq`; with
        L == 1 there is no sweep and `fixed` is folded into the table.

        Full-depth probes time each layer the way deep subnets run it and
        divide the noise of `fixed` by L (on MiniLM under load, held-out MAPE
        3.6% against 7.7% with `table_depth=1`, which is cheaper). All probes
        and calibration subnets are measured in one interleaved batch
        (`measure_subnets`), so load changes on a shared machine hit them
        alike.

        Calibration: the whole `calibration_subnets` are measured and
        measured ≈ alpha * predicted + beta is fitted by least squares on
        relative errors (rows divided by the measured value, so small and
        large subnets weigh the same, matching the MAPE objective); see
        `calibrate` for how it guards against fitting noise.

        Args:
            model: a converted model (its active subnet is restored after).
            setting: what to measure (torch backend unless `measure` is given).
            space: the search space whose width multipliers give the default
                choices (default `SearchSpace()`).
            head_choices: head counts to tabulate (default round(H*w) per width w).
            ffn_choices: FFN neuron counts to tabulate (default round(F*w)).
            calibration_subnets: whole subnets for the calibration fit (default:
                the space's largest and smallest grid points and four random
                per-layer subnets drawn with a fixed seed).
            table_depth: layers per table probe, 1..L (default L).
            layer_model: how the table is solved from the probes: "additive"
                (default) or "table" (see above).
            statistic: which LatencyResult field to model: "median_ms"
                (default), "p10_ms" (on a machine shared with other jobs it
                tracks the uncontended latency, where the median includes
                time lost to them) or "mean_ms".
            rounds: interleaved rounds of the default measuring function
                (see `measure_subnets`).
            measure: the measuring function, called once with every probe and
                calibration subnet (default `measure_subnets` with `rounds`);
                tests inject a fake one.
            log: called with one line per measured subnet.

        Raises:
            ValueError: a choice or depth out of range, or onnxruntime without `measure`.
        """
        space = SearchSpace() if space is None else space
        if measure is None:
            if setting.backend != "torch":
                raise ValueError("building a predictor measures torch subnets: use backend='torch'")

            def measure(
                m: nn.Module, cfgs: Sequence[SubnetConfig], st: LatencySetting
            ) -> list[LatencyResult]:
                return measure_subnets(m, cfgs, st, rounds=rounds)

        state = supernet_state(model)
        arch = state.arch
        L = arch.num_layers
        hc = _check_choices(
            "head_choices",
            _default_choices(arch.num_heads, space) if head_choices is None else head_choices,
            arch.num_heads,
        )
        fc = _check_choices(
            "ffn_choices",
            _default_choices(arch.ffn_dim, space) if ffn_choices is None else ffn_choices,
            arch.ffn_dim,
        )
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {list(STATISTICS)}, got {statistic!r}")
        if layer_model not in LAYER_MODELS:
            raise ValueError(f"layer_model must be one of {list(LAYER_MODELS)}, got {layer_model!r}")
        depth = L if table_depth is None else table_depth
        _check_int("table_depth", depth, 1)
        if depth > L:
            raise ValueError(f"table_depth must be in [1, {L}], got {depth}")

        previous = MAX_NET if state.active is None else state.active
        pairs = list(itertools.product(hc, fc))

        def probe(pair: tuple[int, int], k: int) -> SubnetConfig:
            h, f = pair
            return SubnetConfig(heads=(h,) * L, ffn=(f,) * L, layers=tuple(range(k)))

        probes = [(pair, depth) for pair in pairs]
        # Two other depths (when L allows) give the intercept of latency vs depth.
        sweep_depths = sorted({1, max(1, L // 2), L} - {depth})[:2]
        sweep_pairs = [pairs[-1], pairs[0]] if len(pairs) > 1 else pairs
        probes += [(pair, k) for pair in sweep_pairs for k in sweep_depths]

        if calibration_subnets is None:
            rng = random.Random(20240611)
            calibration_subnets = [space.largest, space.smallest]
            calibration_subnets += [_random_per_layer_subnet(arch, space, rng) for _ in range(4)]
        calibration_subnets = list(calibration_subnets)
        to_measure = [probe(pair, k) for pair, k in probes] + calibration_subnets
        try:
            # One call for everything, so table and calibration see the same conditions.
            results = list(measure(model, to_measure, setting))
        finally:
            set_active_subnet(model, previous)
        if len(results) != len(to_measure):
            raise ValueError(f"measure returned {len(results)} results for {len(to_measure)} subnets")
        times = [float(getattr(r, statistic)) for r in results]
        if log is not None:
            for (pair, k), ms in zip(probes, times, strict=False):
                log(f"table: heads={pair[0]} ffn={pair[1]} layers={k}: {ms:.3f} ms")
            for cfg, ms in zip(calibration_subnets, times[len(probes) :], strict=True):
                log(f"calibration: {cfg.name}: {ms:.3f} ms")

        if layer_model == "table":
            # One unknown per (heads, ffn) pair; column 0 is `fixed`.
            columns = {pair: (1 + i,) for i, pair in enumerate(pairs)}
            width = 1 + len(pairs)
        else:
            # additive: one unknown per head count and one per FFN count.
            columns = {(h, f): (1 + hc.index(h), 1 + len(hc) + fc.index(f)) for h, f in pairs}
            width = 1 + len(hc) + len(fc)
        rows: list[list[float]] = []
        for pair, k in probes:
            row = [0.0] * width
            # Without a depth sweep (L == 1) fixed and per-layer costs cannot be
            # told apart: the fixed column stays 0 and the table absorbs it.
            row[0] = 1.0 if sweep_depths else 0.0
            for c in columns[pair]:
                row[c] = float(k)
            rows.append(row)
        # The additive system has one free direction (attn + c, ffn - c);
        # the minimum-norm solution picks one, and only the sums are used.
        solution = _lstsq(rows, times[: len(probes)])
        predictor = cls(
            arch=arch,
            setting=setting,
            head_choices=hc,
            ffn_choices=fc,
            table={pair: sum(solution[c] for c in columns[pair]) for pair in pairs},
            fixed_ms=solution[0],
            statistic=statistic,
        )
        predictor.calibrate(list(zip(calibration_subnets, times[len(probes) :], strict=True)))
        return predictor

    @classmethod
    def from_measurements(
        cls,
        model: nn.Module,
        setting: LatencySetting,
        measured: Mapping[SubnetConfig, LatencyResult],
        *,
        space: SearchSpace | None = None,
        head_choices: Sequence[int] | None = None,
        ffn_choices: Sequence[int] | None = None,
        calibration_subnets: Sequence[SubnetConfig] | None = None,
        table_depth: int | None = None,
        layer_model: str = "additive",
        statistic: str = "median_ms",
        log: Callable[[str], None] | None = None,
    ) -> LatencyPredictor:
        """The predictor `build` would make, from latencies measured elsewhere.

        For a device that cannot run the package (see `supernet.profile_kit`):
        `measured` holds a result for every subnet `predictor_subnets` lists
        for the same arguments, timed on that device; the table is solved and
        calibrated exactly as `build` does, nothing is measured here.

        Args:
            model: a converted model (for its architecture).
            setting: the setting the results were measured under (recorded in the predictor).
            measured: subnet -> its measured result.
            space, head_choices, ffn_choices, calibration_subnets, table_depth,
            layer_model, statistic, log: as for `build`.

        Raises:
            ValueError: `measured` lacks a subnet the predictor needs (named).
        """

        def lookup(m: nn.Module, cfgs: Sequence[SubnetConfig], st: LatencySetting) -> list[LatencyResult]:
            missing = [c.name for c in cfgs if c not in measured]
            if missing:
                raise ValueError(
                    f"no measured latency for {len(missing)} subnet(s) the predictor needs, e.g. {missing[0]}"
                )
            return [measured[c] for c in cfgs]

        return cls.build(
            model,
            setting,
            space=space,
            head_choices=head_choices,
            ffn_choices=ffn_choices,
            calibration_subnets=calibration_subnets,
            table_depth=table_depth,
            layer_model=layer_model,
            statistic=statistic,
            measure=lookup,
            log=log,
        )

    def calibrate(self, measured: Sequence[tuple[SubnetConfig, float]]) -> None:
        """Fit alpha and beta (see `build`) to measured whole subnets.

        Three calibrations compete: none (alpha=1, beta=0), a scale (beta=0)
        and scale plus offset, each fitted by least squares on relative
        errors. The one with the lowest leave-one-out relative error on the
        measured subnets wins, the simpler on ties: a handful of noisy
        measurements would otherwise bend a sound table (on a shared 2-core
        machine the two-parameter fit alone raised held-out MAPE from 2.8% to
        5.5%). With one subnet the scale is fitted; with none, nothing is.
        The choice is kept in `calibration_model`.

        Args:
            measured: (subnet, measured ms) pairs, in the predictor's statistic.
        """
        raw = [(self.predict_uncalibrated(cfg), float(ms)) for cfg, ms in measured]
        self.calibration = [(cfg, float(ms)) for cfg, ms in measured]
        for _, ms in raw:
            if not ms > 0:
                raise ValueError(f"measured latencies must be > 0, got {ms}")
        if not raw:
            self.alpha, self.beta, self.calibration_model = 1.0, 0.0, "identity"
            return
        if len(raw) == 1:
            self.alpha, self.beta, self.calibration_model = (*_fit_calibration("scale", raw), "scale")
            return
        best, best_err = "identity", _loo_error("identity", raw)
        for kind in ("scale", "affine"):
            if kind == "affine" and len(raw) < 3:
                continue  # leave-one-out needs two points to fit an offset
            err = _loo_error(kind, raw)
            if err < best_err - 1e-12:
                best, best_err = kind, err
        self.alpha, self.beta = _fit_calibration(best, raw)
        self.calibration_model = best

    # -------------------------------------------------------- predicting

    def layer_ms(self, heads: int, ffn: int) -> float:
        """Per-layer cost: the table entry, or a bilinear interpolation of the nearest entries.

        Counts outside the table's are extrapolated linearly (a `LatencyWarning`, once per
        predictor), never below 0 ms: a line through two measured counts can cross zero before
        the smallest count.
        """
        exact = self.table.get((heads, ffn))
        if exact is not None:
            return exact
        outside = not (
            self.head_choices[0] <= heads <= self.head_choices[-1]
            and self.ffn_choices[0] <= ffn <= self.ffn_choices[-1]
        )
        if outside and not self._said_extrapolation:
            self._said_extrapolation = True
            warnings.warn(
                f"latency predictor: {heads} heads / {ffn} FFN neurons lie outside its table (heads "
                f"{list(self.head_choices)}, FFN {list(self.ffn_choices)}): that layer's cost is "
                "extrapolated",
                LatencyWarning,
                stacklevel=3,
            )
        i, t = _bracket(self.head_choices, heads)
        j, u = _bracket(self.ffn_choices, ffn)
        h0, h1 = self.head_choices[i], self.head_choices[min(i + 1, len(self.head_choices) - 1)]
        f0, f1 = self.ffn_choices[j], self.ffn_choices[min(j + 1, len(self.ffn_choices) - 1)]
        return max(
            0.0,
            (1 - t) * (1 - u) * self.table[(h0, f0)]
            + t * (1 - u) * self.table[(h1, f0)]
            + (1 - t) * u * self.table[(h0, f1)]
            + t * u * self.table[(h1, f1)],
        )

    def predict_uncalibrated(self, cfg: SubnetConfig) -> float:
        """fixed + the per-layer costs of the layers `cfg` runs, in ms."""
        resolved = resolve_subnet(self.arch, cfg)
        return self.fixed_ms + sum(self.layer_ms(resolved.heads[i], resolved.ffn[i]) for i in resolved.layers)

    def lowest_ms(self, space: SearchSpace) -> float:
        """A lower bound of what it predicts for the subnets of `space`, uniform or per layer (where
        any layer may take any table entry): at or below 0 only where the figures it was solved from
        do not fit its additive model."""
        cells = list(self.table.values())
        depths = [
            len(resolve_subnet(self.arch, SubnetConfig(depth_mult=d)).layers) for d in space.depth_mults
        ]
        raw = [
            self.fixed_ms + n * cell for n in (min(depths), max(depths)) for cell in (min(cells), max(cells))
        ]
        return min(self.alpha * r + self.beta for r in raw)

    def predict(self, cfg: SubnetConfig) -> float:
        """Predicted latency of `cfg` (its `statistic`, the median by default), in ms.

        Args:
            cfg: a subnet of the architecture the predictor was built for.
        """
        return self.alpha * self.predict_uncalibrated(cfg) + self.beta

    def mape(self, subnets: Sequence[SubnetConfig], measured: Sequence[float | LatencyResult]) -> float:
        """Mean absolute percentage error of the predictions, in percent (3.0 means 3%).

        Args:
            subnets: the subnets.
            measured: their measured latencies (ms, or results whose `statistic` field is used).
        """
        if len(subnets) != len(measured):
            raise ValueError(f"got {len(subnets)} subnets but {len(measured)} measurements")
        if not subnets:
            raise ValueError("mape needs at least one subnet")
        errors = []
        for cfg, m in zip(subnets, measured, strict=True):
            ms = float(getattr(m, self.statistic)) if isinstance(m, LatencyResult) else float(m)
            if not ms > 0:
                raise ValueError(f"measured latencies must be > 0, got {ms}")
            errors.append(abs(self.predict(cfg) - ms) / ms)
        return 100.0 * statistics.fmean(errors)

    # -------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, object]:
        """Everything needed to predict, as a JSON-able dict."""
        return {
            "format": _PREDICTOR_FORMAT,
            "setting": self.setting.to_dict(),
            "arch": dataclasses.asdict(self.arch),
            "head_choices": list(self.head_choices),
            "ffn_choices": list(self.ffn_choices),
            "table": [[h, f, ms] for (h, f), ms in sorted(self.table.items())],
            "fixed_ms": self.fixed_ms,
            "alpha": self.alpha,
            "beta": self.beta,
            "calibration": [{"spec": cfg.to_dict(), "measured_ms": ms} for cfg, ms in self.calibration],
            "statistic": self.statistic,
            "calibration_model": self.calibration_model,
        } | _revision_stamp(self.setting)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> LatencyPredictor:
        """Inverse of `to_dict`."""
        if data.get("format") != _PREDICTOR_FORMAT:
            raise ValueError(f"unknown latency predictor format {data.get('format')!r}")
        return cls(
            arch=Arch(**data["arch"]),  # type: ignore[arg-type]
            setting=LatencySetting.from_dict(data["setting"]),  # type: ignore[arg-type]
            head_choices=data["head_choices"],  # type: ignore[arg-type]
            ffn_choices=data["ffn_choices"],  # type: ignore[arg-type]
            table={(int(h), int(f)): float(ms) for h, f, ms in data["table"]},  # type: ignore[attr-defined]
            fixed_ms=float(data["fixed_ms"]),  # type: ignore[arg-type]
            alpha=float(data["alpha"]),  # type: ignore[arg-type]
            beta=float(data["beta"]),  # type: ignore[arg-type]
            calibration=[
                (SubnetConfig.from_dict(c["spec"]), float(c["measured_ms"]))
                for c in data.get("calibration", [])  # type: ignore[attr-defined]
            ],
            statistic=str(data.get("statistic", "median_ms")),
            calibration_model=str(data.get("calibration_model", "affine")),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the predictor as JSON (atomically).

        Args:
            path: the destination file.
        """
        _atomic_write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LatencyPredictor:
        """Read a predictor written by `save`.

        Args:
            path: the JSON file.
        """
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def _fit_calibration(kind: str, points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(alpha, beta) minimising sum(((alpha * p + beta) - m) / m)^2 over (predicted p, measured m)."""
    if kind == "identity":
        return 1.0, 0.0
    if kind == "affine" and len({round(p, 9) for p, _ in points}) > 1:
        alpha, beta = _lstsq([[p / m, 1.0 / m] for p, m in points], [1.0] * len(points))
        if alpha > 0:
            return alpha, beta
    # Scale only (also the fallback when an offset is not identifiable or comes out absurd).
    num = sum(p / m for p, m in points)
    den = sum((p / m) ** 2 for p, m in points)
    return (num / den if den > 0 else 1.0), 0.0


def _loo_error(kind: str, points: Sequence[tuple[float, float]]) -> float:
    """Mean relative error of `kind` on each point when fitted on the others."""
    errors = []
    for i, (p, m) in enumerate(points):
        alpha, beta = _fit_calibration(kind, [*points[:i], *points[i + 1 :]])
        errors.append(abs(alpha * p + beta - m) / m)
    return statistics.fmean(errors)


def _random_per_layer_subnet(arch: Arch, space: SearchSpace, rng: random.Random) -> SubnetConfig:
    """A random per-layer subnet drawn like `sample_active_subnet(per_layer=True)`, without activating it."""
    depth = rng.choice(space.depth_mults)
    heads = tuple(round(arch.num_heads * rng.choice(space.width_mults)) for _ in range(arch.num_layers))
    ffn = tuple(round(arch.ffn_dim * rng.choice(space.width_mults)) for _ in range(arch.num_layers))
    return SubnetConfig(heads=heads, ffn=ffn, layers=tuple(kept_layers(arch.num_layers, depth)))


class _Listed(Exception):
    """Carries the subnets `build` asked to measure out of it (see `predictor_subnets`)."""

    def __init__(self, subnets: Sequence[SubnetConfig]) -> None:
        super().__init__("subnets listed")
        self.subnets = list(subnets)


def predictor_subnets(
    model: nn.Module,
    *,
    space: SearchSpace | None = None,
    head_choices: Sequence[int] | None = None,
    ffn_choices: Sequence[int] | None = None,
    calibration_subnets: Sequence[SubnetConfig] | None = None,
    table_depth: int | None = None,
) -> tuple[list[SubnetConfig], list[SubnetConfig]]:
    """The subnets `LatencyPredictor.build` measures for these arguments: (probes, calibration).

    Probes are the table's: every (heads, ffn) pair at `table_depth` layers,
    then the depth sweep; calibration subnets are whole subnets. `build`
    measures probes + calibration in one call, in this order. The lists are
    taken from `build` itself (its `measure` function records them and stops),
    so they cannot drift from what `build` and `from_measurements` need.

    Args:
        model: a converted model.
        space, head_choices, ffn_choices, calibration_subnets, table_depth: as for `build`.
    """

    def listed(calibration: Sequence[SubnetConfig] | None) -> list[SubnetConfig]:
        def record(m: nn.Module, cfgs: Sequence[SubnetConfig], st: LatencySetting) -> list[LatencyResult]:
            raise _Listed(cfgs)

        try:
            LatencyPredictor.build(
                model,
                LatencySetting(),
                space=space,
                head_choices=head_choices,
                ffn_choices=ffn_choices,
                calibration_subnets=calibration,
                table_depth=table_depth,
                measure=record,
            )
        except _Listed as got:
            return got.subnets
        raise AssertionError("LatencyPredictor.build did not call its measure function")  # pragma: no cover

    # Probes do not depend on the calibration subnets: asking with none gives the probes alone.
    probes = listed([])
    return probes, listed(calibration_subnets)[len(probes) :]
