"""Helpers for the DMasking tests: a tiny DMasking space and a synthetic latency table.

A module with a unique name (not ``conftest``) so tests can import it unambiguously.
"""

from __future__ import annotations

from typing import Callable

from hwnas.arch.build import LayerShape
from hwnas.arch.spec import HeadSpec, StemSpec

from hwnas.cost.lut import LatencyTable, LutEntry
from hwnas.cost.opkey import key_of_layer
from hwnas.spaces.dmasking import DMaskingSpace

ENGINE = {"name": "fake", "version": "0", "threads": 1, "layout": "contiguous",
          "batch_size": 1, "dtype": "float32", "cpu": "test"}


def tiny_masking_space(*, sparse_table: bool = False) -> DMaskingSpace:
    """Resolutions 6/8 px, stem 8, stage 1 (stride 1, widths 4/8, 1 layer), stage 2 (stride 2,
    widths 8/12/16, 2 layers), head 16, 4 classes. Stage 1's first layer has a residual only
    when it keeps the stem's 8 channels; stage 2 has a skip candidate on its second layer."""
    return DMaskingSpace(
        name="tiny-dmasking" + ("-sparse" if sparse_table else ""),
        resolutions=(6, 8),
        stem=StemSpec(out_channels=8, stride=1),
        stage_widths=((4, 8), (8, 12, 16)),
        depths=(1, 2),
        strides=(1, 2),
        head=HeadSpec(out_channels=16, num_classes=4),
        block_candidates=("k3_e1", "k5_e3"),
        sparse_table=sparse_table,
    )


def synthetic_table(space: DMaskingSpace, latency: Callable[[LayerShape], float]) -> LatencyTable:
    """A LUT of every key of ``space`` with the given (made-up) latencies."""
    entries = {}
    for layer in space.unique_layer_shapes():
        key = key_of_layer(layer)
        value = latency(layer)
        entries[key] = LutEntry(key, value)
    return LatencyTable(space=space.lut_metadata(), engine=ENGINE, entries=entries)


def linear_latency(layer: LayerShape) -> float:
    """Latency linear in each width (so width interpolation is exact), by layer position."""
    position = 0 if layer.name in ("stem", "head") else int(layer.name.split(".")[1]) + 1
    return 0.1 + 0.01 * layer.in_channels + 0.02 * layer.out_channels * (1 + position) \
        + 0.001 * layer.in_size
