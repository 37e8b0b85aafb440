"""Step time and memory of channel search as the number of width options grows: the masked
supernet (FBNetV2) against separate candidates (conventional DNAS).

FBNetV2 (Wan et al. 2020) claims that masking keeps memory and compute "nearly constant as the
search space expands". Both supernets here search the same macro-architecture (stem 32 stride 2,
four stages of k3_e3 FBNet blocks, widths up to 64/96/128/160, depths 2/2/2/1, strides 1/2/2/1,
head 512, 32 px input, 10 classes) with ``N`` in {1, 2, 4, 8} width options per stage (the
largest width minus multiples of 8):

``masked``    :class:`hwnas.dnas.masking.MaskedSuperNet`: each layer runs one block at the largest
              width and multiplies by ``sum_i g_i M_i`` (the library's supernet, blocks fixed to
              k3_e3, widths mixed softly with Gumbel weights);
``separate``  every width option is its own block with its own weights (``N`` blocks per layer,
              each ``Cin_max -> c_i``), outputs zero-padded to the largest width and summed with
              the same Gumbel weights: what DNAS over channel options costs without masks.

One step = Gumbel draw, forward, CE, backward, SGD (momentum 0.9) on one batch of random images.
Step time: the median over ``--repeats`` interleaved rounds (every configuration once per
round, after ``--warmup`` rounds), one torch thread by default.

**Memory method** (CPU has no ``max_memory_allocated``): ``peak_mem_mb`` = the bytes of every
tensor autograd saves for the backward pass during one forward (counted once per storage, through
``torch.autograd.graph.saved_tensors_hooks``), which is the activation memory a training step
holds at its peak (the end of the forward), plus the training state that lives throughout: the
parameters, their gradients and SGD momentum buffers (3 x parameter bytes). Both parts are also
reported separately. It leaves out transient buffers inside single ops (e.g. im2col).

Writes ``benchmarks/results/dmasking_scaling.json`` (``dmasking_scaling_quick.json`` with
``--quick``)::

    {"masked": {"options": [1, 2, 4, 8], "step_s": [...], "peak_mem_mb": [...], ...},
     "separate": {...}, "ratio_8_over_1": {...}, ...}

Target (the paper's claim): from 1 to 8 options the masked step time and peak memory grow by at
most 1.3x, while separate candidates grow about linearly. Run it alone on an idle machine::

    python -m benchmarks.speed.dmasking_scaling          # batch 16, 2 warm-up + 10 rounds: ~20 s
    python -m benchmarks.speed.dmasking_scaling --quick  # smoke test: batch 2, 1 round, ~5 s
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.arch.blocks import build_block
from hwnas.arch.build import build_layer, initialise_weights, walk
from hwnas.arch.spec import FBNetBlock, HeadSpec, StemSpec
from hwnas.dnas.masking import MaskedSuperNet
from hwnas.dnas.supernet import gumbel_softmax_sample
from hwnas.io import atomic_write_json
from hwnas.spaces.dmasking import DMaskingSpace

OPTIONS = (1, 2, 4, 8)
MAX_WIDTHS = (64, 96, 128, 160)
DEPTHS = (2, 2, 2, 1)
STRIDES = (1, 2, 2, 1)
TARGET_RATIO = 1.3
RESULTS = Path(__file__).parents[1] / "results"


def scaling_space(options: int) -> DMaskingSpace:
    widths = tuple(tuple(width - 8 * (options - 1 - k) for k in range(options))
                   for width in MAX_WIDTHS)
    return DMaskingSpace(name=f"scaling-{options}", resolutions=(32,),
                         stem=StemSpec(out_channels=32, stride=2), stage_widths=widths,
                         depths=DEPTHS, strides=STRIDES,
                         head=HeadSpec(out_channels=512, num_classes=10),
                         block_candidates=("k3_e3",))


class SeparateSuperNet(nn.Module):
    """One block per width option and layer, outputs zero-padded and mixed (no sharing)."""

    def __init__(self, space: DMaskingSpace) -> None:
        super().__init__()
        self.space = space
        shapes = walk(space.to_arch(space.largest_choices()))
        self.stem, self.head = build_layer(shapes[0]), build_layer(shapes[-1])
        self.layers = nn.ModuleList(
            nn.ModuleList(build_block(shape.in_channels, FBNetBlock(
                out_channels=width, stride=layer.stride, kernel_size=3, expansion=3))
                for width in space.stage_widths[layer.stage])
            for layer, shape in zip(space.layers, shapes[1:-1]))
        initialise_weights(self)

    def forward(self, images: torch.Tensor, width_weights: list[torch.Tensor]) -> torch.Tensor:
        x = self.stem(images)
        for layer, options in zip(self.space.layers, self.layers):
            weights, widest = width_weights[layer.stage], self.space.stage_widths[layer.stage][-1]
            x = sum(weight * F.pad(block(x), (0, 0, 0, 0, 0, widest - block_width))
                    for weight, block, block_width in
                    zip(weights, options, self.space.stage_widths[layer.stage]))
        return self.head(x)


def masked_step(options: int) -> tuple[nn.Module, Callable[..., None]]:
    space = scaling_space(options)
    supernet = MaskedSuperNet(space).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(supernet.weight_parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    fixed = supernet.one_hot(space.largest_choices())  # k3_e3 everywhere, one resolution
    width_rows = slice(1, space.first_layer_decision)  # decisions width_1..width_4
    blocks = [0] * space.num_layers

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        with torch.no_grad():
            sample = gumbel_softmax_sample(supernet.logits(), 5.0, generator)
            weights = fixed.clone()
            weights[width_rows] = sample.soft[width_rows]
        loss = F.cross_entropy(supernet(images, weights, blocks), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return supernet, step


def separate_step(options: int) -> tuple[nn.Module, Callable[..., None]]:
    space = scaling_space(options)
    supernet = SeparateSuperNet(space).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(supernet.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    logits = torch.zeros(space.num_stages, options)

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        weights = list(gumbel_softmax_sample(logits, 5.0, generator).soft)
        loss = F.cross_entropy(supernet(images, weights), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return supernet, step


def saved_activation_bytes(step: Callable[..., None], images: torch.Tensor,
                           labels: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves during one step's forward, once per storage."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, nn.Parameter):  # parameters are counted as training state
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        step(images, labels)
    return sum(storages.values())


def measure(batch_size: int, warmup: int, repeats: int) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(batch_size, 3, 32, 32, generator=generator).contiguous(
        memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch_size,), generator=generator)
    configs = {(kind, options): builder(options) for kind, builder in
               (("masked", masked_step), ("separate", separate_step)) for options in OPTIONS}
    memory = {}
    for key, (model, step) in configs.items():
        state = 3 * sum(p.numel() * p.element_size() for p in model.parameters())
        memory[key] = (saved_activation_bytes(step, images, labels) / 2**20, state / 2**20)
    times: dict[tuple[str, int], list[float]] = {key: [] for key in configs}
    for round_index in range(warmup + repeats):
        order = list(configs)
        order = order[round_index % len(order):] + order[:round_index % len(order)]
        for key in order:
            started = time.perf_counter()
            configs[key][1](images, labels)
            if round_index >= warmup:
                times[key].append(time.perf_counter() - started)
    result: dict[str, Any] = {}
    for kind in ("masked", "separate"):
        rows = [(statistics.median(times[(kind, n)]), *memory[(kind, n)]) for n in OPTIONS]
        result[kind] = {"options": list(OPTIONS), "step_s": [row[0] for row in rows],
                        "peak_mem_mb": [row[1] + row[2] for row in rows],
                        "activation_mb": [row[1] for row in rows],
                        "state_mb": [row[2] for row in rows]}
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    batch = args.batch_size or (2 if args.quick else 16)
    repeats = args.repeats or (1 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 2)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    started = time.perf_counter()
    output: dict[str, Any] = measure(batch, warmup, repeats)
    output["ratio_8_over_1"] = {
        kind: {metric: output[kind][metric][-1] / output[kind][metric][0]
               for metric in ("step_s", "peak_mem_mb", "activation_mb")}
        for kind in ("masked", "separate")}
    masked = output["ratio_8_over_1"]["masked"]
    output["target"] = {"masked_ratio_at_most": TARGET_RATIO,
                        "met": masked["step_s"] <= TARGET_RATIO
                        and masked["peak_mem_mb"] <= TARGET_RATIO}
    output["settings"] = {
        "batch_size": batch, "repeats": repeats, "warmup": warmup, "threads": args.threads,
        "max_widths": list(MAX_WIDTHS), "depths": list(DEPTHS), "strides": list(STRIDES),
        "memory_method": "autograd saved-for-backward tensor bytes (once per storage) + 3 x "
                         "parameter bytes (weights, gradients, SGD momentum)",
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "wall_s": time.perf_counter() - started}
    name = "dmasking_scaling_quick.json" if args.quick else "dmasking_scaling.json"
    atomic_write_json(args.out / name, output)
    for kind in ("masked", "separate"):
        print(kind, {metric: [round(v, 4) for v in output[kind][metric]]
                     for metric in ("step_s", "peak_mem_mb")})
    print(f"8 vs 1 options: {output['ratio_8_over_1']} -> wrote {args.out / name}")
    return output


if __name__ == "__main__":
    main()
