"""DMaskingNAS (FBNetV2, Wan et al. CVPR 2020): a supernet whose channel and resolution options
share one set of weights through masks.

**Channel masks** (paper section 3.1). Every block is built once at its largest width ``Cmax``;
for width options ``c_1 < ... < c_n`` with Gumbel-softmax weights ``g``,

    y = b(x) * sum_i g_i M_i,        M_i = [1]*c_i + [0]*(Cmax - c_i),

so all options reuse the same weights (the first ``c_i`` filters) and cost about one block,
whatever ``n``. We apply the mask after every conv-BN-activation of the block, not only at its
output: a masked-out channel is zero before BN but ``beta`` (then ``relu(beta)``) after it, so
masking only the output would let it leak into the next conv. The hidden (expanded) width
``round(e * c_in)`` follows the *input* width's weights the same way. Then, with one-hot ``g``,
the masked block computes exactly the plain block of that width with the leading slices of the
weights (:meth:`MaskedSuperNet.extract_child`). A residual add exists where ``c_in == c_out``
and the stride is 1; across independent in/out decisions its weight is
``sum_{i,j: c_i == c_j} g^in_i g^out_j``.

**Resolution** (paper: subsample, then zero-pad / interleave back to a common size). The input is
resized to every candidate ``r`` (bilinear, antialiased) and zero-padded at the bottom/right to the
largest resolution ``R``; the padded images are summed with the resolution weights. After every
conv the feature map is multiplied by the matching *spatial* mask ``sum_r h_r S_r`` (``S_r``: the
top-left region an ``r``-px input occupies at that depth), and the global pool averages over
that region. Top-left padding rather than the paper's interleaving keeps every candidate's pixels
adjacent, so with one-hot ``h`` the supernet equals the plain ``r``-px network exactly in eval
mode; in train mode BatchNorm's batch statistics also count the padded zeros (a difference the
paper's interleaving has too).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.arch.blocks import FBNetUnit, SkipUnit, build_block
from hwnas.arch.build import (
    Network, build_layer, build_model, conv_output_size, initialise_weights, walk,
)
from hwnas.arch.spec import hidden_channels
from hwnas.data.batches import resize_images
from hwnas.dnas.supernet import MODES, GumbelSample, path_weights
from hwnas.errors import HwnasError
from hwnas.spaces.dmasking import DMaskingSpace, LayerPlan
from hwnas.spaces.fbnet import candidate_block


def prefix_masks(widths: Sequence[int], size: int) -> torch.Tensor:
    """Rows ``M_i`` [len(widths), size]: ones on the first ``widths[i]`` entries."""
    return (torch.arange(size)[None, :] < torch.tensor(list(widths))[:, None]).float()


class ResolutionMixer(nn.Module):
    """``sum_r h_r * pad_R(resize_r(x))``: all candidate resolutions on one R x R canvas."""

    def __init__(self, resolutions: Sequence[int]) -> None:
        super().__init__()
        self.resolutions = tuple(resolutions)
        self.canvas = max(self.resolutions)

    def forward(self, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if images.shape[-2:] != (self.canvas, self.canvas):
            raise HwnasError(f"the resolution mixer takes {self.canvas} px images, got "
                             f"{tuple(images.shape[-2:])}")
        total = None
        for weight, resolution in zip(weights, self.resolutions):
            pad = self.canvas - resolution
            term = weight * F.pad(resize_images(images, resolution), (0, pad, 0, pad))
            total = term if total is None else total + term
        return total

    def extract(self, mixed: torch.Tensor, resolution: int) -> torch.Tensor:
        """The ``resolution`` x ``resolution`` top-left region (a candidate's own image)."""
        return mixed[..., :resolution, :resolution]


class SpatialMasks:
    """``sum_r h_r S_r`` at any feature-map size reached from the canvas (cached per forward)."""

    def __init__(self, weights: torch.Tensor, regions: dict[int, torch.Tensor]) -> None:
        self.weights, self.regions = weights, regions
        self.cache: dict[int, torch.Tensor] = {}

    def __call__(self, size: int) -> torch.Tensor:
        if size not in self.cache:
            stack = self.regions[size].to(self.weights)
            self.cache[size] = torch.einsum("r,rhw->hw", self.weights, stack)[None, None]
        return self.cache[size]

    def pool_weights(self, size: int) -> torch.Tensor:
        """``sum_r h_r S_r / |S_r|``: the average over each candidate's own region."""
        stack = self.regions[size].to(self.weights)
        areas = stack.sum(dim=(1, 2))
        return torch.einsum("r,rhw->hw", self.weights / areas, stack)[None, None]


def fit_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``x`` cut or zero-padded to ``channels`` channels (a residual across widths)."""
    if x.shape[1] >= channels:
        return x[:, :channels]
    return F.pad(x, (0, 0, 0, 0, 0, channels - x.shape[1]))


class MaskedLayer(nn.Module):
    """The candidate blocks of one searchable layer, each at the largest widths."""

    def __init__(self, space: DMaskingSpace, layer: LayerPlan) -> None:
        super().__init__()
        in_widths, out_widths = space.input_widths(layer), space.stage_widths[layer.stage]
        self.layer, self.out_channels = layer, out_widths[-1]
        specs = [candidate_block(name, out_widths[-1], layer.stride, True)
                 for name in layer.candidates]
        self.candidates = nn.ModuleList(build_block(in_widths[-1], spec) for spec in specs)
        for index, (spec, block) in enumerate(zip(specs, self.candidates)):
            if isinstance(block, SkipUnit) and not isinstance(block.projection, nn.Identity):
                raise HwnasError(f"layer {layer.index}: a masked skip must be an identity")
            if isinstance(block, FBNetUnit):
                if spec.groups != 1 or not spec.first_pointwise:
                    raise HwnasError(f"layer {layer.index}: {spec} cannot share masked weights")
                mids = [hidden_channels(width, spec.expansion) for width in in_widths]
                self.register_buffer(f"hidden_{index}", prefix_masks(mids, max(mids)),
                                     persistent=False)
        same = [[float(a == b and layer.stride == 1) for b in out_widths] for a in in_widths]
        self.register_buffer("residual_pairs", torch.tensor(same), persistent=False)
        self.may_add_input = not layer.first or any(any(row) for row in same)

    def residual_weight(self, in_weights: torch.Tensor, out_weights: torch.Tensor) -> torch.Tensor:
        if not self.layer.first:  # same decision in and out: always a residual
            return torch.ones((), dtype=out_weights.dtype, device=out_weights.device)
        return in_weights @ self.residual_pairs @ out_weights

    def run_candidate(self, index: int, x: torch.Tensor, in_weights: torch.Tensor,
                      out_mask: torch.Tensor, residual: torch.Tensor,
                      in_space: torch.Tensor, out_space: torch.Tensor) -> torch.Tensor:
        block = self.candidates[index]
        if isinstance(block, SkipUnit):
            return x  # identity; x already carries this stage's masks
        hidden = (in_weights @ getattr(self, f"hidden_{index}"))[None, :, None, None]
        h = block.expand(x) * hidden * in_space
        h = block.depthwise(h) * hidden * out_space
        out = block.project(h)
        if self.may_add_input:
            out = out + residual * fit_channels(x, out.shape[1])
        return out * out_mask * out_space

    def forward(self, x: torch.Tensor, block_weights: torch.Tensor, in_weights: torch.Tensor,
                out_weights: torch.Tensor, out_masks: torch.Tensor, index: int | None,
                in_space: torch.Tensor, out_space: torch.Tensor) -> torch.Tensor:
        out_mask = (out_weights @ out_masks)[None, :, None, None]
        residual = self.residual_weight(in_weights, out_weights)
        indices = range(len(self.candidates)) if index is None else [index]
        total = None
        for candidate in indices:
            term = block_weights[candidate] * self.run_candidate(
                candidate, x, in_weights, out_mask, residual, in_space, out_space)
            total = term if total is None else total + term
        return total


class MaskedSuperNet(nn.Module):
    """Stem -> masked layers -> head over a :class:`DMaskingSpace`, plus ``theta`` [D, Kmax].

    Row ``d`` of ``theta`` holds the logits of decision ``d`` (resolution, stage widths, layer
    blocks; ``space.decisions.names``); entries past a decision's option count are padding, kept
    at probability 0 by ``logit_mask`` (-inf) and never trained.
    """

    def __init__(self, space: DMaskingSpace) -> None:
        super().__init__()
        self.space = space
        shapes = walk(space.to_arch(space.largest_choices()))
        self.mixer = ResolutionMixer(space.resolutions)
        self.stem = build_layer(shapes[0])
        self.layers = nn.ModuleList(MaskedLayer(space, layer) for layer in space.layers)
        self.head = build_layer(shapes[-1])
        sizes = space.decisions.cardinalities.tolist()
        self.theta = nn.Parameter(torch.zeros(len(sizes), max(sizes)))
        padding = torch.arange(max(sizes))[None, :] >= torch.tensor(sizes)[:, None]
        self.register_buffer("logit_mask", torch.zeros(self.theta.shape).masked_fill(
            padding, float("-inf")), persistent=False)
        for stage, widths in enumerate(space.stage_widths):
            self.register_buffer(f"width_masks_{stage}", prefix_masks(widths, widths[-1]),
                                 persistent=False)
        self.regions = self._regions()
        initialise_weights(self)

    def _regions(self) -> dict[int, torch.Tensor]:
        """Per feature-map size on the canvas, the stack of candidate regions S_r."""
        sizes, regions = list(self.space.resolutions), {}
        strides = [self.space.stem.stride] + [layer.stride for layer in self.space.layers]
        for stride in [1] + strides:
            sizes = [conv_output_size(size, stride) for size in sizes]
            canvas = max(sizes)
            grid = torch.arange(canvas)
            regions[canvas] = torch.stack([
                ((grid[:, None] < size) & (grid[None, :] < size)).float() for size in sizes])
        return regions

    def weight_parameters(self) -> list[nn.Parameter]:
        return [param for name, param in self.named_parameters() if name != "theta"]

    def fix_decisions(self, fixed: dict[int, int]) -> None:
        """Give each decision row of ``fixed`` its one option (the others at -inf, as the
        padding): a layer taken out of the search."""
        for row, option in fixed.items():
            self.logit_mask[row] = float("-inf")
            self.logit_mask[row, option] = 0.0

    def logits(self) -> torch.Tensor:
        """``theta`` with the padding at -inf: what the Gumbel-softmax samples from."""
        return self.theta + self.logit_mask

    def probabilities(self) -> torch.Tensor:
        """``P_theta`` [D, Kmax] (zeros on the padding), detached."""
        return torch.softmax(self.logits().detach(), dim=-1)

    def argmax_choices(self) -> tuple[int, ...]:
        return tuple(int(index) for index in self.logits().detach().argmax(dim=-1))

    def mixing_weights(self, sample: GumbelSample, mode: str
                       ) -> tuple[torch.Tensor, list[int] | None]:
        """Resolution and width rows stay soft (the paper's masks); block rows follow ``mode``
        as in FBNet: ``soft`` runs every candidate, ``sampled`` one (straight-through)."""
        if mode not in MODES:
            raise HwnasError(f"mode must be one of {MODES}, got {mode!r}")
        first_block_row = self.space.first_layer_decision
        weights, indices = path_weights(sample, mode)
        if indices is None:
            return weights, None
        weights = torch.cat([sample.soft[:first_block_row], weights[first_block_row:]])
        return weights, indices[first_block_row:]

    def forward(self, images: torch.Tensor, weights: torch.Tensor,
                block_indices: Sequence[int] | None = None) -> torch.Tensor:
        """``weights`` [D, Kmax] mix every decision; with ``block_indices`` one block runs."""
        space, sizes = self.space, self.space.decisions.cardinalities.tolist()
        row = [weights[decision, :size] for decision, size in enumerate(sizes)]
        spatial = SpatialMasks(row[0], self.regions)
        x = self.stem(self.mixer(images, row[0]))
        x = x * spatial(x.shape[-1])
        in_weights = torch.ones(1, dtype=weights.dtype, device=weights.device)
        for layer, mixed in zip(space.layers, self.layers):
            out_weights = row[1 + layer.stage]
            index = None if block_indices is None else int(block_indices[layer.index])
            out_size = conv_output_size(x.shape[-1], layer.stride)
            x = mixed(x, row[space.first_layer_decision + layer.index], in_weights, out_weights,
                      getattr(self, f"width_masks_{layer.stage}"), index,
                      spatial(x.shape[-1]), spatial(out_size))
            in_weights = out_weights
        return self._head(x, spatial)

    def _head(self, x: torch.Tensor, spatial: SpatialMasks) -> torch.Tensor:
        x = self.head.conv(x) * spatial(x.shape[-1])
        pooled = (x * spatial.pool_weights(x.shape[-1])).sum(dim=(2, 3))
        return self.head.classifier(self.head.dropout(pooled))

    def run(self, images: torch.Tensor, sample: GumbelSample, mode: str) -> torch.Tensor:
        return self(images, *self.mixing_weights(sample, mode))

    def one_hot(self, choices: Sequence[int]) -> torch.Tensor:
        """The [D, Kmax] weights that select ``choices`` (for tests and costs)."""
        choices = self.space.choices_of(self.space.to_arch(choices))
        weights = torch.zeros(self.theta.shape)
        weights[torch.arange(len(choices)), torch.tensor(choices)] = 1.0
        return weights.to(self.theta)

    def child_state_dict(self, choices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The leading slices of the shared weights that form network ``choices``."""
        first_block_row = self.space.first_layer_decision
        child = build_model(self.space.to_arch(choices))
        source = self.state_dict()
        state = {}
        for key, value in child.state_dict().items():
            name = key
            if key.startswith("blocks."):
                _, layer, rest = key.split(".", 2)
                name = f"layers.{layer}.candidates.{choices[first_block_row + int(layer)]}.{rest}"
            shared = source[name]
            state[key] = shared[tuple(slice(0, size) for size in value.shape)].clone()
        return state

    def extract_child(self, choices: Sequence[int]) -> Network:
        """``build_model(space.to_arch(choices))`` carrying the shared weights of ``choices``."""
        child = build_model(self.space.to_arch(choices))
        child.load_state_dict(self.child_state_dict(choices), strict=True)
        return child
