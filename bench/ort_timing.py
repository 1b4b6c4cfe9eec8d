"""One-thread onnxruntime sessions and median call times, shared by the kernel benches
(`layer_norm_kernels.py`, `int8_anatomy.py`); not a script of its own."""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnxruntime as ort


def session(model: bytes | str, profile_prefix: str | None = None) -> ort.InferenceSession:
    """A CPU session on one thread; with `profile_prefix`, onnxruntime's profiler records every call."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def time_us(sess: ort.InferenceSession, feeds: dict[str, np.ndarray], calls: int) -> float:
    """Median microseconds of `calls` calls, after max(10, calls / 10) untimed ones."""
    for _ in range(max(10, calls // 10)):
        sess.run(None, feeds)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        sess.run(None, feeds)
        samples.append(time.perf_counter() - start)
    return 1e6 * statistics.median(samples)
