"""Why torch eager networks run slower than the sum of their layers, and which per-layer timing
closes the gap: layers alone (warm caches, what ``hwnas lut build`` times), alone after a cache
flush (cold), or in their network (per-layer context).

In one process (1 torch thread, channels_last, batch 1, the FBNet CIFAR space at 32 px), for
``--networks`` uniformly random networks, in ``--rounds`` rounds back to back per network (so
that the machine's speed, which changes for minutes at a time here, is the same for the
quantities compared): the network end to end; each layer timed inside the running network by
forward hooks (the in-context time, hook overhead measured and removed); each of its layers
alone, warm (``warmup`` untimed calls, then timed calls) and cold (a
``--flush-mb`` buffer written before every timed call: 16 MB, 8x the 2 MB L2 of a core here;
the 480 MB the VM reports as L3 cannot be flushed per call). Then, fitted on the first
``--calibration`` networks and checked on the rest: one scale on each sum, and one scale per
stage (the stem, the head, and the blocks grouped by output channels) on the warm sums, all on
each round's ratios to the network's time, medians over the rounds. Reported: the share of
check networks within +-10 % and the MAPE for each, and the ratio of in-context to warm time per
stage (where the gap sits). One process, so the session offsets of ``hwnas.cost.sessions`` are
not in these numbers: they measure the per-layer model only.

    python -m benchmarks.speed.torch_context           -> results/torch_context.json (~6 min)
    python -m benchmarks.speed.torch_context --quick
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hwnas.arch.build import build_layer, build_model, walk
from hwnas.cost.timing import fixed_input, time_calls
from hwnas.io import atomic_write_json
from hwnas.spaces import get_space


def prepare(module: torch.nn.Module, shape: tuple[int, ...]) -> tuple[torch.nn.Module,
                                                                     torch.Tensor]:
    module = module.eval().to(memory_format=torch.channels_last)
    inputs = torch.from_numpy(fixed_input(shape)).contiguous(memory_format=torch.channels_last)
    return module, inputs


def stage_of(layer: Any) -> str:
    return layer.name if layer.name in ("stem", "head") else f"c{layer.out_channels}"


def layer_name(layer: Any) -> str:
    return f"{layer.in_channels}x{layer.in_size}:{layer.spec}"


class Flush:
    """Writes a buffer larger than the last-level cache, evicting every layer's weights."""

    def __init__(self, megabytes: int) -> None:
        self.buffer = np.zeros(megabytes * 2**20 // 8)

    def __call__(self) -> None:
        self.buffer += 1.0


def time_alone(layer: Any, warmup: int, repeats: int, flush: Flush | None) -> float:
    module, inputs = prepare(build_layer(layer), (1, layer.in_channels, layer.in_size,
                                                  layer.in_size))
    with torch.inference_mode():
        if flush is None:
            return time_calls(lambda: module(inputs), warmup=warmup, repeats=repeats).median_ms
        for _ in range(warmup):
            module(inputs)
        samples = []
        for _ in range(repeats):
            flush()
            start = time.perf_counter_ns()
            module(inputs)
            samples.append((time.perf_counter_ns() - start) / 1e6)
        return float(np.median(samples))


def time_in_context(arch: Any, warmup: int, repeats: int) -> tuple[float, list[float], float]:
    """(network ms, per-layer ms inside the network, hook overhead ms per layer)."""
    layers = walk(arch)
    network, inputs = prepare(build_model(arch), (1, arch.in_channels, arch.resolution,
                                                  arch.resolution))
    with torch.inference_mode():
        total = time_calls(lambda: network(inputs), warmup=warmup, repeats=repeats).median_ms
    modules = [network.stem, *network.blocks, network.head]
    assert len(modules) == len(layers)
    starts: list[int] = [0] * len(modules)
    spans: list[list[int]] = [[] for _ in modules]
    handles = []
    for index, module in enumerate(modules):
        def before(_module: Any, _inputs: Any, index: int = index) -> None:
            starts[index] = time.perf_counter_ns()

        def after(_module: Any, _inputs: Any, _output: Any, index: int = index) -> None:
            spans[index].append(time.perf_counter_ns() - starts[index])

        handles += [module.register_forward_pre_hook(before),
                    module.register_forward_hook(after)]
    with torch.inference_mode():
        for _ in range(warmup + repeats):
            network(inputs)
        empty = torch.nn.Identity()
        empty.register_forward_pre_hook(lambda *_: starts.__setitem__(0, time.perf_counter_ns()))
        overhead: list[int] = []
        empty.register_forward_hook(
            lambda *_: overhead.append(time.perf_counter_ns() - starts[0]))
        for _ in range(repeats):
            empty(inputs)
    for handle in handles:
        handle.remove()
    per_layer = [float(np.median(span[warmup:])) / 1e6 for span in spans]
    hook_ms = float(np.median(overhead)) / 1e6
    return total, [max(value - hook_ms, 0.0) for value in per_layer], hook_ms


def check(predicted_over_measured: np.ndarray) -> dict[str, float]:
    errors = (predicted_over_measured - 1.0) * 100
    return {"within_10pct": float(np.mean(np.abs(errors) <= 10) * 100),
            "mape": float(np.mean(np.abs(errors))),
            "median_signed_error_pct": float(np.median(errors))}


def scale_fit(sum_over_network: np.ndarray, calibration: int) -> dict[str, float]:
    """One scale, the median network / sum of the first ``calibration`` networks."""
    scale = float(np.median(1.0 / sum_over_network[:calibration]))
    return {"scale": scale, **check(scale * sum_over_network[calibration:])}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", type=int, default=40)
    parser.add_argument("--calibration", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flush-mb", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", 
                        help="6 networks, 3 for calibration, 2 rounds")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.networks, arguments.calibration, arguments.repeats = 6, 3, 10
        arguments.rounds = 2
    if not 1 <= arguments.calibration < arguments.networks:
        parser.error(f"--calibration must be between 1 and --networks - 1, got "
                     f"{arguments.calibration}")
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    started = time.perf_counter()
    space = get_space("fbnet-cifar", "dnas")
    rng = np.random.default_rng(arguments.seed)
    archs = [space.to_arch(row) for row in space.decisions.sample(arguments.networks, rng)]
    flush = Flush(arguments.flush_mb)
    rows = []
    for index, arch in enumerate(archs):
        layers = walk(arch)
        rounds = []
        for _ in range(arguments.rounds):
            total, in_context, hook_ms = time_in_context(arch, arguments.warmup,
                                                         arguments.repeats)
            rounds.append({
                "network_ms": total, "hook_ms": hook_ms, "in_context_ms": in_context,
                "warm_ms": [time_alone(layer, arguments.warmup, arguments.repeats, None)
                            for layer in layers],
                "cold_ms": [time_alone(layer, arguments.warmup, arguments.repeats, flush)
                            for layer in layers]})
        rows.append({"arch": arch.to_string(), "stages": [stage_of(layer) for layer in layers],
                     "rounds": rounds})
        share = {name: np.median([sum(one[f"{name}_ms"]) / one["network_ms"]
                                  for one in rounds]) for name in ("warm", "cold", "in_context")}
        network_ms = np.median([one["network_ms"] for one in rounds])
        print(f"network {index + 1}/{len(archs)}: {network_ms:.3f} ms; "
              "sum / network: " + ", ".join(f"{name} {value:.3f}" for name, value in share.items()),
              flush=True)
    calibration = arguments.calibration
    # per network, the median over rounds of each sum divided by the network's time
    ratios = {name: np.array([np.median([sum(one[f"{name}_ms"]) / one["network_ms"]
                                         for one in row["rounds"]]) for row in rows])
              for name in ("warm", "cold", "in_context")}
    stages = sorted({stage for row in rows for stage in row["stages"]})

    def stage_shares(name: str) -> np.ndarray:
        """Per network and stage, the median over rounds of the stage's sum / network time."""
        matrix = np.zeros((len(rows), len(stages)))
        for index, row in enumerate(rows):
            per_round = np.zeros((len(row["rounds"]), len(stages)))
            for number, one in enumerate(row["rounds"]):
                for stage, value in zip(row["stages"], one[f"{name}_ms"], strict=True):
                    per_round[number, stages.index(stage)] += value / one["network_ms"]
            matrix[index] = np.median(per_round, axis=0)
        return matrix

    warm_shares = stage_shares("warm")
    scales, *_ = np.linalg.lstsq(warm_shares[:calibration], np.ones(calibration), rcond=None)
    ratio = defaultdict(list)
    for row in rows:
        for one in row["rounds"]:
            for stage, alone, inside in zip(row["stages"], one["warm_ms"], one["in_context_ms"],
                                            strict=True):
                ratio[stage].append(inside / alone)
    result = {
        "settings": {key: value for key, value in vars(arguments).items() if key != "out"},
        "engine": {"torch": torch.__version__, "threads": 1, "layout": "channels_last"},
        "network_over_sum": {name: float(np.median(1.0 / value))
                             for name, value in ratios.items()},
        "sd_log_ratio_pct": {name: float(100 * np.std(np.log(value)))
                             for name, value in ratios.items()},
        "one_scale": {name: scale_fit(value, calibration) for name, value in ratios.items()},
        "per_stage_scale_warm": {"scales": dict(zip(stages, map(float, scales), strict=True)),
                                 **check(warm_shares[calibration:] @ scales)},
        "in_context_over_warm_by_stage": {stage: float(np.median(values))
                                          for stage, values in ratio.items()},
        "networks": rows,
        "wall_s": time.perf_counter() - started,
    }
    name = "torch_context" + ("_quick" if arguments.quick else "")
    arguments.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(arguments.out / f"{name}.json", result)
    for key, value in result["one_scale"].items():
        print(f"{key}: network/sum {result['network_over_sum'][key]:.3f} (sd "
              f"{result['sd_log_ratio_pct'][key]:.1f} %), one scale: "
              f"{value['within_10pct']:.0f} % within 10 %, MAPE {value['mape']:.1f} %")
    stage_fit = result["per_stage_scale_warm"]
    print(f"warm, a scale per stage: {stage_fit['within_10pct']:.0f} % within 10 %, MAPE "
          f"{stage_fit['mape']:.1f} %")
    return result


if __name__ == "__main__":
    main()
