"""Timing calls, and the worker process that times items in fresh sessions (no torch for ORT).

How one item is timed (every LUT entry and every end-to-end network time):

1. **Fixed threads and no denormals.** ONNX Runtime sessions get ``intra_op_num_threads =
   threads``, one inter-op thread, sequential execution, and flush denormal floats to zero
   (``session.set_denormal_as_zero``); torch does the same through
   :class:`hwnas.cost.engines.TorchEngine`. Activations of randomly initialised deep networks
   decay towards the denormal range, where x86 arithmetic is many times slower, which would make
   a network's time depend on its random weights rather than on its shape.
2. **Warm-up.** ``warmup`` untimed calls first (allocations, lazy kernel selection, caches).
3. **Repeats.** ``repeats`` calls, each timed alone with ``time.perf_counter_ns`` while Python's
   garbage collector is paused; batch size, input tensor and memory layout stay fixed.
4. **Statistics.** Median, 10th and 90th percentile and the number of calls
   (:class:`TimingStats`); the median is the session's latency.

Why every item is timed in many fresh sessions over several worker processes
(:mod:`hwnas.cost.worker`, run by :mod:`hwnas.cost.sessions`): every session and every process
carries its own speed offset, and the machine itself changes speed for seconds at a time
(docs/reference.md section 5), so one session per item, however many calls it times, leaves an
error the calls cannot average out. This module imports neither torch nor ONNX Runtime at load.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from hwnas.errors import HwnasError


@dataclass(frozen=True)
class TimingStats:
    """Summary of one timed run: median / p10 / p90 in milliseconds and the number of calls."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"median_ms": self.median_ms, "p10_ms": self.p10_ms, "p90_ms": self.p90_ms,
                "count": self.count}

    @classmethod
    def from_dict(cls, data: Any) -> TimingStats:
        names = ("median_ms", "p10_ms", "p90_ms", "count")
        if not isinstance(data, dict) or not set(names) <= set(data):
            raise HwnasError(f"timing stats: expected fields {names}, got {data!r:.200}")
        for name in names:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                np.isfinite(value) and value >= 0
            ):
                raise HwnasError(f"timing stats: field {name!r} must be a number >= 0, "
                                 f"got {value!r}")
        if not isinstance(data["count"], int) or data["count"] < 1:
            raise HwnasError(f"timing stats: count must be a positive integer, "
                             f"got {data['count']!r}")
        return cls(float(data["median_ms"]), float(data["p10_ms"]), float(data["p90_ms"]),
                   data["count"])


def summarize(samples_ms: Sequence[float]) -> TimingStats:
    """Median, p10, p90 and count of per-call times in milliseconds."""
    values = np.asarray(samples_ms, dtype=float)
    if values.size == 0:
        raise HwnasError("cannot summarize an empty list of timings")
    p10, median, p90 = np.percentile(values, [10, 50, 90])
    return TimingStats(float(median), float(p10), float(p90), int(values.size))


def combine_rounds(rounds: Sequence[TimingStats]) -> TimingStats:
    """One summary of several runs: median of the medians (and of the p10s/p90s); count is the
    total number of timed calls (how tables of format 1 combined their rounds)."""
    if not rounds:
        raise HwnasError("cannot combine zero timing rounds")
    return TimingStats(
        float(np.median([r.median_ms for r in rounds])),
        float(np.median([r.p10_ms for r in rounds])),
        float(np.median([r.p90_ms for r in rounds])),
        int(sum(r.count for r in rounds)),
    )


def check_count(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HwnasError(f"{name} must be an integer >= {minimum}, got {value!r}")


def time_calls(run: Callable[[], Any], *, warmup: int, repeats: int) -> TimingStats:
    """Time ``run()``: ``warmup`` untimed calls, then ``repeats`` calls timed one by one."""
    check_count("warmup", warmup, 0)
    check_count("repeats", repeats, 1)
    for _ in range(warmup):
        run()
    samples = np.empty(repeats, dtype=np.int64)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection inside a timed call would be charged to that call
    try:
        for index in range(repeats):
            start = time.perf_counter_ns()
            run()
            samples[index] = time.perf_counter_ns() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return summarize(samples / 1e6)


def fixed_input(shape: Sequence[int]) -> np.ndarray:
    """The input every timing feeds (seeded: latency must not depend on it)."""
    return np.random.default_rng(0).standard_normal(tuple(shape)).astype(np.float32)


def ort_runner(model: bytes | str, threads: int, input_shape: Sequence[int]
               ) -> Callable[[], Any]:
    """A callable running an ONNX graph (bytes or a file path) once in a new session."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    if threads > 1:
        # Spinning worker threads make multi-thread timings bimodal from session to session
        # (benchmarks/RESULTS.md, "LUT fidelity"); without spinning they are stable.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: fixed_input(input_shape)}

    def run() -> Any:
        return session.run(None, feed)

    return run
