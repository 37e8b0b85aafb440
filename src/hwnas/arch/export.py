"""ONNX export of a built network or a single layer, checked against ONNX Runtime."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hwnas.io import atomic_write_bytes


def onnx_bytes(
    module: nn.Module, input_shape: tuple[int, ...], opset: int = 17, dynamic_batch: bool = False
) -> bytes:
    """Serialise ``module`` (put in eval mode) for ``input_shape``; with ``dynamic_batch`` the
    batch dimension is left free (fixed shapes are what latency tables time).

    Uses the TorchScript-based exporter (``dynamo=False``), about 10x faster than the dynamo
    exporter on an FBNet CIFAR network (docs/reference.md section 5), which matters when a LUT
    build exports one graph per operator.
    """
    module = module.eval()
    example = torch.zeros(input_shape)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None,
        )
    return buffer.getvalue()


def export_onnx(
    module: nn.Module,
    input_shape: tuple[int, ...],
    path: str | Path,
    opset: int = 17,
    dynamic_batch: bool = True,
) -> Path:
    """Write ``module`` as an ONNX file at ``path`` (atomically), batch dimension free."""
    path = Path(path)
    atomic_write_bytes(path, onnx_bytes(module, input_shape, opset, dynamic_batch))
    return path


def onnx_session(model: bytes | str | Path, threads: int = 1):
    """An ONNX Runtime CPU session with a fixed intra-op thread count and sequential execution."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def max_abs_difference(module: nn.Module, onnx_model: bytes | str | Path, batch: int = 2,
                       seed: int = 0) -> float:
    """Largest |torch - ONNX Runtime| over the outputs for one random input batch."""
    arch = getattr(module, "arch", None)
    if arch is None:
        raise ValueError("max_abs_difference needs a built Network (with .arch)")
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, arch.in_channels, arch.resolution, arch.resolution,
                         generator=generator)
    with torch.no_grad():
        expected = module.eval()(inputs).numpy()
    session = onnx_session(onnx_model)
    actual = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]
    return float(np.max(np.abs(actual - expected)))
