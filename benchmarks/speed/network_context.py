"""Do networks time the same in a LUT build's workers, among the layers, as alone?

A LUT build times its calibration networks in the same worker processes and blocks as the layer
keys (:func:`hwnas.cost.lutbuild.build_lut`); a validation or a demo times networks alone. This
benchmark times the build's 12 calibration networks of the FBNet CIFAR space in alternating
worker processes: *alone* (the networks only) and *mixed* (the networks with every layer key,
the build's plan), ``--pairs`` pairs of processes with 2 sessions each, the order within a pair
alternating, and compares the medians of the raw session medians per network.

    python -m benchmarks.speed.network_context               -> results/network_context-ort-1t.json
    python -m benchmarks.speed.network_context --threads 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.cost.health import Monitor
from hwnas.cost.lut_config import LutBuildConfig
from hwnas.cost.lutbuild import calibration_archs, engine_of
from hwnas.cost.opkey import space_keys
from hwnas.cost.sessions import SessionPlan, layer_items, network_items, run_processes
from hwnas.io import atomic_write_json
from hwnas.spaces import get_space


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default="ort", choices=("ort", "torch"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    if arguments.pairs < 1:
        parser.error(f"--pairs must be >= 1, got {arguments.pairs}")
    started = time.perf_counter()
    config = LutBuildConfig(engine=arguments.engine, threads=arguments.threads)
    engine, space = engine_of(config), get_space(config.space, "lut")
    archs = calibration_archs(space, config.calibration,
                              np.random.default_rng(config.calibration_seed))
    names = {arch.to_string() for arch in archs}
    monitor = Monitor("the context benchmark", lambda message: print(message, flush=True))
    monitor.before()
    rows: dict[str, list[dict[str, Any]]] = {"alone": [], "mixed": []}
    with tempfile.TemporaryDirectory(prefix="hwnas-context-") as folder:
        networks = network_items(engine, archs, Path(folder),
                                 **config.network_timing.to_dict())
        layers = layer_items(engine, space_keys(space), Path(folder), **config.timing.to_dict())
        plan = SessionPlan(processes=1, sessions=config.sessions, block_size=config.block_size)
        for pair in range(arguments.pairs):
            arms = [("alone", networks), ("mixed", layers + networks)]
            for name, items in arms if pair % 2 == 0 else arms[::-1]:
                run_processes(items, engine, plan, [pair], seed=pair, monitor=monitor,
                              on_done=lambda index, done, name=name: rows[name].extend(
                                  row for row in done if row["item"] in names),
                              label=lambda index, name=name: f"pair {pair + 1} {name}")
    median = {name: {arch: float(np.median([row["median_ms"] for row in values
                                            if row["item"] == arch])) for arch in names}
              for name, values in rows.items()}
    change = sorted(100.0 * (median["mixed"][arch] / median["alone"][arch] - 1.0)
                    for arch in names)
    output = {"engine": engine.metadata(), "pairs": arguments.pairs, "networks": len(names),
              "mixed_vs_alone_pct": {"median": float(np.median(change)), "min": change[0],
                                     "max": change[-1], "all": change},
              "median_ms": median, "conditions": monitor.summary(),
              "wall_s": time.perf_counter() - started}
    label = f"{arguments.engine}-{arguments.threads}t"
    path = arguments.out / f"network_context-{label}.json"
    atomic_write_json(path, output)
    print(f"{label}: networks among the layers vs alone: median {np.median(change):+.1f} % "
          f"(networks {change[0]:+.1f} to {change[-1]:+.1f} %); wrote {path}")
    return output


if __name__ == "__main__":
    main()
