"""A searchable layer whose candidate blocks share their convolution weights ("nested").

FBNet's supernet (``hwnas.dnas.supernet.MixedLayer``) gives each of the ``K`` candidates of a
layer its own weights, so a sampled step trains one of them (about 1/K of the steps each; what
that leaves of the supernet's accuracy signal is measured in docs/studies/dnas-device-fit.md).
Single-Path NAS (Stamoulis et al. 2019)
and FBNetV2 (Wan et al. 2020) instead let the candidates of a layer be slices of one largest
block, so that every step trains the weights every candidate uses.

Here the FBNet candidates ``(k, e, g)`` of a layer with input ``C_in``, output ``C_out`` are cut
from one block of the largest kernel ``K`` and hidden width ``M = max_e hidden(C_in, e)``:

    expand:    W_e[:m, :C_in]             (1x1; m = hidden(C_in, e))
    depthwise: W_d[:m, :, c:c+k, c:c+k]   (the centre k x k of the K x K kernel, c = (K-k)/2)
    project:   W_p[:C_out, :m]            (1x1)

A group conv with ``g`` groups takes the ``g`` diagonal blocks of the same dense slice (group
``j`` maps input block ``j`` to output block ``j``), so it computes exactly the grouped block of
``hwnas.arch.blocks.FBNetUnit``. Batch norms are per candidate ("switchable" BN, Yu et al.
2019): the statistics of an e1 and an e6 slice differ. ``skip`` keeps its own module. The child
of a path is therefore an ordinary network: :meth:`NestedLayer.child_state_dict` writes the
slices under ``FBNetUnit``'s key names.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as functional
from torch import nn

from hwnas.arch.blocks import ChannelShuffle, SkipUnit
from hwnas.arch.spec import Block, FBNetBlock, SkipBlock, hidden_channels
from hwnas.errors import HwnasError


def diagonal_blocks(weight: torch.Tensor, out_channels: int, in_channels: int,
                    groups: int) -> torch.Tensor:
    """The ``[out, in / groups, 1, 1]`` weight of a grouped 1x1 conv cut from the dense
    ``weight[:out, :in]``: group ``j`` keeps rows and columns of block ``j``."""
    if groups == 1:
        return weight[:out_channels, :in_channels]
    rows, columns = out_channels // groups, in_channels // groups
    return torch.cat([weight[j * rows:(j + 1) * rows, j * columns:(j + 1) * columns]
                      for j in range(groups)])


class CandidateNorms(nn.Module):
    """The batch norms of one FBNet candidate (expand, depthwise, project)."""

    def __init__(self, in_channels: int, spec: FBNetBlock) -> None:
        super().__init__()
        hidden = hidden_channels(in_channels, spec.expansion)
        self.expand = nn.BatchNorm2d(hidden) if spec.first_pointwise else None
        self.depthwise = nn.BatchNorm2d(hidden)
        self.project = nn.BatchNorm2d(spec.out_channels)


class NestedLayer(nn.Module):
    """All candidates of one searchable layer as slices of one block (module docstring)."""

    def __init__(self, in_channels: int, candidates: Sequence[Block]) -> None:
        super().__init__()
        blocks = [spec for spec in candidates if isinstance(spec, FBNetBlock)]
        if any(not isinstance(spec, (FBNetBlock, SkipBlock)) for spec in candidates):
            raise HwnasError("nested weight sharing takes FBNet and skip candidates only")
        self.in_channels, self.specs = in_channels, tuple(candidates)
        if blocks and len({(spec.out_channels, spec.stride) for spec in blocks}) > 1:
            raise HwnasError("the candidates of a layer must share output width and stride")
        hidden = max((hidden_channels(in_channels, spec.expansion) for spec in blocks),
                     default=0)
        kernel = max((spec.kernel_size for spec in blocks), default=0)
        out_channels = blocks[0].out_channels if blocks else 0
        self.expand_weight = nn.Parameter(torch.empty(hidden, in_channels, 1, 1))
        self.depthwise_weight = nn.Parameter(torch.empty(hidden, 1, kernel, kernel))
        self.project_weight = nn.Parameter(torch.empty(out_channels, hidden, 1, 1))
        for weight in (self.expand_weight, self.depthwise_weight, self.project_weight):
            if weight.numel():
                nn.init.kaiming_normal_(weight, mode="fan_out", nonlinearity="relu")
        self.norms = nn.ModuleList(
            CandidateNorms(in_channels, spec) if isinstance(spec, FBNetBlock) else nn.Identity()
            for spec in candidates)
        self.skips = nn.ModuleDict({str(index): SkipUnit(in_channels, spec)
                                    for index, spec in enumerate(candidates)
                                    if isinstance(spec, SkipBlock)})
        self.shuffles = nn.ModuleDict({str(spec.groups): ChannelShuffle(spec.groups)
                                       for spec in blocks if spec.groups > 1})
        self.set_residual_scales(0.0)

    def set_residual_scales(self, value: float) -> None:
        """Set the last BN scale of every residual candidate (0: "zero-gamma", each starts as the
        identity, as :func:`hwnas.arch.build.initialise_weights` does for ordinary blocks)."""
        for index, spec in enumerate(self.specs):
            if self._has_residual(spec):
                nn.init.constant_(self.norms[index].project.weight, value)

    def residual_scale(self, index: int) -> float | None:
        """Mean |last BN scale| of candidate ``index`` if it is a residual block, else None."""
        if not self._has_residual(self.specs[index]):
            return None
        return float(self.norms[index].project.weight.detach().abs().mean())

    def _has_residual(self, spec: Block) -> bool:
        return (isinstance(spec, FBNetBlock) and spec.stride == 1
                and spec.out_channels == self.in_channels)

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                index: int | None = None) -> torch.Tensor:
        if index is not None:
            return weights[index] * self.candidate(x, index)
        total = weights[0] * self.candidate(x, 0)
        for candidate in range(1, len(self.specs)):
            total = total + weights[candidate] * self.candidate(x, candidate)
        return total

    def candidate(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """The output of candidate ``index`` alone."""
        spec = self.specs[index]
        if isinstance(spec, SkipBlock):
            return self.skips[str(index)](x)
        norms, weights = self.norms[index], self.slices(index)
        out = x
        if "expand" in weights:
            out = functional.relu(norms.expand(functional.conv2d(out, weights["expand"],
                                                                 groups=spec.groups)))
        if spec.groups > 1:
            out = self.shuffles[str(spec.groups)](out)
        hidden = weights["depthwise"].shape[0]
        out = functional.conv2d(out, weights["depthwise"], stride=spec.stride,
                                padding=spec.kernel_size // 2, groups=hidden)
        out = functional.relu(norms.depthwise(out))
        out = norms.project(functional.conv2d(out, weights["project"], groups=spec.groups))
        return out + x if self._has_residual(spec) else out

    def slices(self, index: int) -> dict[str, torch.Tensor]:
        """The conv weights of FBNet candidate ``index``, cut from the shared ones."""
        spec = self.specs[index]
        hidden = hidden_channels(self.in_channels, spec.expansion)
        offset = (self.depthwise_weight.shape[-1] - spec.kernel_size) // 2
        end = offset + spec.kernel_size
        weights = {
            "depthwise": self.depthwise_weight[:hidden, :, offset:end, offset:end],
            "project": diagonal_blocks(self.project_weight, spec.out_channels, hidden,
                                       spec.groups),
        }
        if spec.first_pointwise:
            weights["expand"] = diagonal_blocks(self.expand_weight, hidden, self.in_channels,
                                                spec.groups)
        return weights

    def child_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """Candidate ``index``'s weights under the key names of its ordinary block
        (``FBNetUnit``: ``expand.0.weight``, ``expand.1.*`` ...; ``SkipUnit``)."""
        if isinstance(self.specs[index], SkipBlock):
            return dict(self.skips[str(index)].state_dict())
        state = {}
        norms = self.norms[index]
        for name, weight in self.slices(index).items():
            state[f"{name}.0.weight"] = weight.detach().clone()
            norm = getattr(norms, name)
            for key, value in norm.state_dict().items():
                state[f"{name}.1.{key}"] = value
        return state
