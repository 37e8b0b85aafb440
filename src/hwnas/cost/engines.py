"""Measurement engines (PyTorch eager, ONNX Runtime on CPU) and the timing method.

Timing method (used for every number in a latency table and for every end-to-end network time):

1. **Fixed threads.** Torch runs with ``torch.set_num_threads(threads)``; ONNX Runtime sessions
   get ``intra_op_num_threads = threads``, one inter-op thread, sequential execution.
   Denormal floats are flushed to zero in both (``torch.set_flush_denormal``, ORT's
   ``session.set_denormal_as_zero``): activations of randomly initialised deep networks decay
   towards the denormal range, where x86 arithmetic is many times slower, which would make a
   network's time depend on its random weights rather than on its shape.
2. **Warm-up.** ``warmup`` untimed calls first (allocations, lazy kernel selection, caches).
3. **Repeats.** ``repeats`` calls, each timed alone with ``time.perf_counter_ns`` while Python's
   garbage collector is paused; batch size, input tensor and memory layout stay fixed.
4. **Statistics.** Per run: median, 10th and 90th percentile, and the number of calls
   (:class:`TimingStats`). The median is the latency: single slow calls (interrupts, other
   processes) move the mean but not the median.
5. **Rounds.** Measurements are repeated in ``rounds`` interleaved rounds (every operator or
   network once per round, then the next round) and the reported latency is the median of the
   round medians (:func:`combine_rounds`). Slow episodes of the machine last seconds
   (10-18 % for seconds, docs/reference.md section 5), so one run per item lets an episode bias a
   whole run of items; rounds spread each item over the session.

An engine's :meth:`Engine.metadata` says what the numbers belong to: engine name and version,
threads, memory layout, batch size, dtype, CPU model. Latency tables store it, and a table is only
used with the engine it was measured with.
"""

from __future__ import annotations

import gc
import platform
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from hwnas.arch.build import LayerShape, build_layer, build_model
from hwnas.arch.spec import ArchSpec
from hwnas.cost.lut_config import ENGINE_NAMES, LAYOUTS, TimingSettings, check_count
from hwnas.errors import HwnasError

#: metadata fields that must agree before a table is extended, validated or compared
IDENTITY_FIELDS = ("name", "version", "threads", "layout", "batch_size", "dtype", "cpu")


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
        if not isinstance(data, dict) or set(data) != set(names):
            raise HwnasError(f"timing stats: expected fields {names}, got {data!r}")
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
    """One summary of several rounds: median of the round medians (and of the p10s/p90s);
    count is the total number of timed calls."""
    if not rounds:
        raise HwnasError("cannot combine zero timing rounds")
    return TimingStats(
        float(np.median([r.median_ms for r in rounds])),
        float(np.median([r.p10_ms for r in rounds])),
        float(np.median([r.p90_ms for r in rounds])),
        int(sum(r.count for r in rounds)),
    )


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


def time_interleaved(
    runs: Sequence[Callable[[], Any]], settings: TimingSettings,
    on_round: Callable[[int], None] | None = None,
) -> list[TimingStats]:
    """Time several callables in ``settings.rounds`` interleaved rounds (each warmed up again in
    every round, since the others evicted its caches); one :func:`combine_rounds` each."""
    per_item: list[list[TimingStats]] = [[] for _ in runs]
    for round_index in range(settings.rounds):
        for item, run in enumerate(runs):
            per_item[item].append(
                time_calls(run, warmup=settings.warmup, repeats=settings.repeats)
            )
        if on_round is not None:
            on_round(round_index)
    return [combine_rounds(stats) for stats in per_item]


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what ``platform`` reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


class Engine(ABC):
    """Runs one layer or one whole network on CPU; ``runner`` returns a no-argument callable."""

    name: str = ""

    def __init__(self, *, threads: int = 1, layout: str = "contiguous",
                 batch_size: int = 1) -> None:
        check_count("threads", threads, 1)
        check_count("batch_size", batch_size, 1)
        if layout not in LAYOUTS:
            raise HwnasError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.threads = threads
        self.layout = layout
        self.batch_size = batch_size

    @property
    @abstractmethod
    def version(self) -> str:
        """Version string of the runtime that executes the graph."""

    def metadata(self) -> dict[str, Any]:
        """What the numbers belong to (stored in every LUT and validation result)."""
        return {
            "name": self.name, "version": self.version, "threads": self.threads,
            "layout": self.layout, "batch_size": self.batch_size, "dtype": "float32",
            "cpu": cpu_model(), "machine": platform.machine(), "torch": torch.__version__,
        }

    @property
    def label(self) -> str:
        """Short name such as ``ort-1t`` or ``torch-1t-channels_last``."""
        short = "ort" if self.name == "onnxruntime" else self.name
        suffix = "-channels_last" if self.layout == "channels_last" else ""
        return f"{short}-{self.threads}t{suffix}"

    def _input(self, channels: int, size: int) -> np.ndarray:
        generator = np.random.default_rng(0)  # fixed input: latency must not depend on it
        shape = (self.batch_size, channels, size, size)
        return generator.standard_normal(shape).astype(np.float32)

    @abstractmethod
    def runner(self, module: nn.Module, channels: int, size: int) -> Callable[[], Any]:
        """A callable running ``module`` once on a fixed ``(batch, channels, size, size)`` input."""

    def layer_runner(self, layer: LayerShape) -> Callable[[], Any]:
        return self.runner(build_layer(layer), layer.in_channels, layer.in_size)

    def network_runner(self, arch: ArchSpec) -> Callable[[], Any]:
        return self.runner(build_model(arch), arch.in_channels, arch.resolution)


class TorchEngine(Engine):
    """PyTorch eager on CPU, ``inference_mode``, optionally channels_last weights and input."""

    name = "torch"

    @property
    def version(self) -> str:
        return torch.__version__

    def metadata(self) -> dict[str, Any]:
        return {**super().metadata(), "flush_denormal": True}

    def runner(self, module: nn.Module, channels: int, size: int) -> Callable[[], Any]:
        torch.set_num_threads(self.threads)
        torch.set_flush_denormal(True)
        module = module.eval()
        inputs = torch.from_numpy(self._input(channels, size))
        if self.layout == "channels_last":
            module = module.to(memory_format=torch.channels_last)
            inputs = inputs.contiguous(memory_format=torch.channels_last)

        def run() -> Any:
            with torch.inference_mode():
                return module(inputs)

        return run


class OrtEngine(Engine):
    """ONNX Runtime CPU execution provider; graphs exported with opset 17 and fixed shapes."""

    name = "onnxruntime"
    opset = 17

    def __init__(self, *, threads: int = 1, layout: str = "contiguous",
                 batch_size: int = 1) -> None:
        if layout != "contiguous":
            raise HwnasError(f"ONNX Runtime has no layout option (NCHW graphs); got {layout!r}")
        super().__init__(threads=threads, layout=layout, batch_size=batch_size)

    @property
    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__

    def metadata(self) -> dict[str, Any]:
        spinning = {} if self.threads == 1 else {"allow_spinning": False}  # see runner()
        return {**super().metadata(), "opset": self.opset, "denormal_as_zero": True, **spinning}

    def runner(self, module: nn.Module, channels: int, size: int) -> Callable[[], Any]:
        import onnxruntime

        from hwnas.arch.export import onnx_bytes

        shape = (self.batch_size, channels, size, size)
        # the settings of hwnas.arch.export.onnx_session, plus flushing denormals (module doc)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        options.add_session_config_entry("session.set_denormal_as_zero", "1")
        if self.threads > 1:
            # Spinning worker threads make multi-thread timings bimodal from session to session
            # (benchmarks/RESULTS.md, "LUT fidelity"); without spinning they are stable.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(onnx_bytes(module, shape, opset=self.opset),
                                               options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: self._input(channels, size)}

        def run() -> Any:
            return session.run(None, feed)

        return run


def make_engine(name: str, *, threads: int = 1, layout: str | None = None,
                batch_size: int = 1) -> Engine:
    """An engine by CLI name: ``"ort"`` (contiguous only) or ``"torch"`` (default channels_last)."""
    if name in ("ort", "onnxruntime"):
        return OrtEngine(threads=threads, layout=layout or "contiguous", batch_size=batch_size)
    if name == "torch":
        return TorchEngine(threads=threads, layout=layout or "channels_last", batch_size=batch_size)
    raise HwnasError(f"unknown engine {name!r} (known: {', '.join(ENGINE_NAMES)})")


def engine_from_metadata(metadata: dict[str, Any]) -> Engine:
    """Rebuild the engine a table was measured with (on this machine)."""
    return make_engine(metadata["name"], threads=metadata["threads"], layout=metadata["layout"],
                       batch_size=metadata["batch_size"])


def describe_engine(metadata: dict[str, Any]) -> str:
    return (f"{metadata.get('name')} {metadata.get('version')}, {metadata.get('threads')} "
            f"thread(s), {metadata.get('layout')}, batch {metadata.get('batch_size')}, "
            f"{metadata.get('cpu')}")


def check_same_engine(expected: dict[str, Any], actual: dict[str, Any], what: str) -> None:
    """Refuse (naming both) when two engine metadata differ in an identity field."""
    differing = [name for name in IDENTITY_FIELDS if expected.get(name) != actual.get(name)]
    if differing:
        raise HwnasError(
            f"{what}: engine mismatch in {', '.join(differing)}: the table was measured with "
            f"[{describe_engine(expected)}] but this run uses [{describe_engine(actual)}]"
        )
