"""Torch training under contention: threads, OpenMP's wait policy, and another busy process.

A training step of MobileNetV2 x0.5 (CIFAR strides, batch 64, 32 px, channels_last, SGD) is
timed for ``--seconds`` per setting, each in a fresh process (the wait policy must be set before
torch loads OpenMP): 1 and 2 torch threads, OpenMP's default (spinning) and ``PASSIVE`` wait
policy, on a quiet machine and beside a process spinning on one core. Every setting is run
``--repeats`` times, alternating, and the median step time is reported. Also reported: how many
threads :func:`hwnas.compute.free_cores` picks in each condition (what a run without
``--threads`` gets) and the other processes' use it saw (:func:`hwnas.cost.health.busy_now`).

    python -m benchmarks.speed.thread_contention          -> results/thread_contention.json
    python -m benchmarks.speed.thread_contention --quick
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.io import atomic_write_json

STEP = """
import sys, time, torch
from hwnas.arch.build import build_model
from hwnas.arch.zoo import mobilenet_v2_cifar
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
model = build_model(mobilenet_v2_cifar(width_multiplier=0.5)).to(memory_format=torch.channels_last)
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
x = torch.randn(64, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (64,))
def step():
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
step(); step()
times, end = [], time.perf_counter() + float(sys.argv[2])
while time.perf_counter() < end:
    start = time.perf_counter(); step(); times.append(time.perf_counter() - start)
times.sort()
print(times[len(times) // 2] * 1000)
"""


def step_ms(threads: int, policy: str | None, seconds: float) -> float:
    environment = dict(os.environ)
    environment.pop("OMP_WAIT_POLICY", None)
    if policy is not None:
        environment["OMP_WAIT_POLICY"] = policy
    done = subprocess.run([sys.executable, "-c", STEP, str(threads), str(seconds)],
                          capture_output=True, text=True, env=environment, check=True)
    return float(done.stdout.split()[-1])


def chosen_threads() -> dict[str, Any]:
    """What a run without ``--threads`` would get now, and the other processes' use it saw."""
    from hwnas.compute import free_cores
    from hwnas.cost.health import busy_now

    return {"free_cores": free_cores(), "other_cores": busy_now(1.0)["other_cores"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s per setting, one repeat")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    seconds, repeats = (1.0, 1) if arguments.quick else (arguments.seconds, arguments.repeats)
    settings = [(threads, policy) for threads in (1, 2) for policy in (None, "PASSIVE")]
    results: dict[str, Any] = {}
    for condition in ("quiet", "one busy core"):
        hog = None if condition == "quiet" else subprocess.Popen(
            [sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            times: dict[str, list[float]] = {}
            for _ in range(repeats):
                for threads, policy in settings:
                    name = f"{threads} threads, {policy or 'default'} wait"
                    times.setdefault(name, []).append(step_ms(threads, policy, seconds))
                    print(f"{condition}: {name}: {times[name][-1]:.0f} ms/step", flush=True)
            results[condition] = {"step_ms": {name: float(np.median(values))
                                              for name, values in times.items()},
                                  "runs_ms": times, **chosen_threads()}
        finally:
            if hog is not None:
                hog.kill()
                hog.wait()
    output = {"results": results, "seconds_per_run": seconds, "repeats": repeats,
              "cores": os.cpu_count(), "loadavg_end": os.getloadavg()[0]}
    path = arguments.out / f"thread_contention{'_quick' if arguments.quick else ''}.json"
    atomic_write_json(path, output)
    print(f"wrote {path}")
    return output


if __name__ == "__main__":
    main()
