"""Measurement engines (PyTorch eager, ONNX Runtime on CPU): what runs one layer or network.

How calls are timed is :mod:`hwnas.cost.timing`; how sessions are spread over worker processes
is :mod:`hwnas.cost.sessions`. An engine says what the numbers belong to
(:meth:`Engine.metadata`: engine name and version, threads, memory layout, batch size, dtype,
CPU model); latency tables store it, and a table is only used with the engine it was measured
with. For the workers an engine turns a layer or network into a plan item
(:meth:`Engine.layer_item`, :meth:`Engine.network_item`): ONNX Runtime items are graphs exported
here once, torch items are specs the worker builds.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path
from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from hwnas.arch.build import LayerShape, build_layer, build_model
from hwnas.arch.spec import ArchSpec
from hwnas.cost.lut_config import ENGINE_NAMES, LAYOUTS
from hwnas.cost.opkey import OpKey
from hwnas.cost.timing import check_count, fixed_input, ort_runner
from hwnas.errors import HwnasError

#: metadata fields that must agree before a table is extended, validated or compared
IDENTITY_FIELDS = ("name", "version", "threads", "layout", "batch_size", "dtype", "cpu")


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
        return fixed_input((self.batch_size, channels, size, size))

    @abstractmethod
    def runner(self, module: nn.Module, channels: int, size: int) -> Callable[[], Any]:
        """A callable running ``module`` once on a fixed ``(batch, channels, size, size)`` input."""

    def layer_runner(self, layer: LayerShape) -> Callable[[], Any]:
        return self.runner(build_layer(layer), layer.in_channels, layer.in_size)

    def network_runner(self, arch: ArchSpec) -> Callable[[], Any]:
        return self.runner(build_model(arch), arch.in_channels, arch.resolution)

    def plan(self) -> dict[str, Any]:
        """What a worker needs to rebuild this engine."""
        return {"name": self.name, "threads": self.threads, "layout": self.layout,
                "batch_size": self.batch_size}

    def layer_item(self, key: OpKey, folder: Path) -> dict[str, Any]:
        """A worker plan item timing the layer of ``key`` (``folder``: where graphs go)."""
        return {"op_key": key.to_dict()}

    def network_item(self, arch: ArchSpec, folder: Path) -> dict[str, Any]:
        """A worker plan item timing ``arch`` end to end."""
        return {"arch": arch.to_string()}


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
        return ort_runner(self._graph(module, channels, size), self.threads,
                          (self.batch_size, channels, size, size))

    def _graph(self, module: nn.Module, channels: int, size: int) -> bytes:
        from hwnas.arch.export import onnx_bytes

        return onnx_bytes(module, (self.batch_size, channels, size, size), opset=self.opset)

    def _exported(self, module: nn.Module, channels: int, size: int, path: Path
                  ) -> dict[str, Any]:
        path.write_bytes(self._graph(module, channels, size))
        return {"onnx": str(path), "input_shape": [self.batch_size, channels, size, size]}

    def layer_item(self, key: OpKey, folder: Path) -> dict[str, Any]:
        shape = key.layer_shape()
        return self._exported(build_layer(shape), shape.in_channels, shape.in_size,
                              folder / f"{_digest(key.id)}.onnx")

    def network_item(self, arch: ArchSpec, folder: Path) -> dict[str, Any]:
        return self._exported(build_model(arch), arch.in_channels, arch.resolution,
                              folder / f"{_digest(arch.to_string())}.onnx")


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


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
