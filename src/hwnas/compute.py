"""Where torch computes: the thread count of a run (restored afterwards), chosen so that other
work on the machine does not collapse it.

Torch's OpenMP threads wait for each other by spinning at every parallel region: when another
process holds one of the cores, a thread that shares it stalls the rest, and a step can take
longer with two threads than with one. Measured on the 2-core VM with a spinning process on one
core (``python -m benchmarks.speed.thread_contention``, benchmarks/RESULTS.md): a MobileNetV2
x0.5 training step at 2 threads took about twice its quiet time and twice the 1-thread time.
OpenMP's passive waiting (``OMP_WAIT_POLICY=PASSIVE``) removed that collapse but cost up to 2x
on a quiet machine there, so hwnas does not set it. A run that was not told its thread count
takes the cores that other processes leave free (:func:`free_cores`), at least one.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from typing import Iterator

import torch

from hwnas.cost.health import BUSY_CORES, busy_now


def free_cores(window_s: float = 0.3) -> int:
    """This process's cores minus what other processes use over ``window_s`` (their use less
    :data:`hwnas.cost.health.BUSY_CORES`, rounded up), at least 1."""
    cores = len(os.sched_getaffinity(0))
    other = busy_now(window_s)["other_cores"]
    if other is None:
        return cores
    return max(1, cores - math.ceil(max(0.0, other - BUSY_CORES)))


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block, the caller's count restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
