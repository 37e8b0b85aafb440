"""The timing worker: ``python -m hwnas.cost.worker PLAN.json OUT.json``.

A worker times every item of its plan once per *session*, in a seeded random order cut into
*blocks* of consecutive items, each item in a session of its own that is closed after timing
(:func:`hwnas.cost.timing.time_calls`), and writes every session's statistics to ``OUT.json``
(atomically), printing ``block i/n`` after each block. The parent
(:func:`hwnas.cost.sessions.run_processes`) starts one worker at a time, so two never time at
once. ONNX Runtime workers load the graphs the parent exported and never import torch (a worker
starts in about 0.1 s); torch workers build the layer or network from its spec.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hwnas.cost.timing import ort_runner, time_calls


def item_runner(engine: dict[str, Any], item: dict[str, Any]) -> Callable[[], Any]:
    """A fresh session for one plan item: an exported graph (``"onnx"``), or for torch an
    operator key (``"op_key"``) or a network (``"arch"``) built here."""
    if "onnx" in item:
        return ort_runner(item["onnx"], engine["threads"], item["input_shape"])
    from hwnas.arch.spec import ArchSpec
    from hwnas.cost.engines import make_engine
    from hwnas.cost.opkey import OpKey

    torch_engine = make_engine(engine["name"], threads=engine["threads"],
                               layout=engine["layout"], batch_size=engine["batch_size"])
    if "op_key" in item:
        return torch_engine.layer_runner(OpKey.from_dict(item["op_key"]).layer_shape())
    return torch_engine.network_runner(ArchSpec.from_string(item["arch"]))


def blocks_of(plan: dict[str, Any]) -> list[tuple[int, int, list[int]]]:
    """``(session, block, item indices)`` in the order the worker times them: per session a
    seeded permutation of the items, cut into blocks of ``block_size``."""
    rng = np.random.default_rng([plan["seed"], plan["process"]])
    size, count = plan["block_size"], len(plan["items"])
    order = []
    for session in range(plan["sessions"]):
        permutation = rng.permutation(count).tolist()
        for block, start in enumerate(range(0, count, size)):
            order.append((session, block, permutation[start:start + size]))
    return order


def run_plan(plan: dict[str, Any], on_block: Callable[[int, int], None] | None = None
             ) -> dict[str, Any]:
    """Time every item of ``plan`` once per session (module doc); the measurements, in order."""
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    measurements = []
    schedule = blocks_of(plan)
    for done, (session, block, indices) in enumerate(schedule, start=1):
        for index in indices:
            item = plan["items"][index]
            run = item_runner(plan["engine"], item)
            stats = time_calls(run, warmup=item["warmup"], repeats=item["repeats"])
            del run  # the session closes before the next one opens
            measurements.append({"item": item["name"], "process": plan["process"],
                                 "session": session,
                                 "block": f"{plan['process']}.{session}.{block}",
                                 **stats.to_dict()})
        if on_block is not None:
            on_block(done, len(schedule))
    return {"process": plan["process"], "pid": os.getpid(),
            "wall_s": time.perf_counter() - started, "cpu_s": _cpu_seconds() - cpu_started,
            "measurements": measurements}


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hwnas.cost.worker PLAN.json OUT.json``: prints ``block i/n`` per block."""
    plan_path, out_path = (sys.argv[1:] if argv is None else list(argv))
    plan = json.loads(Path(plan_path).read_text())

    def report(done: int, total: int) -> None:
        print(f"block {done}/{total}", flush=True)

    result = run_plan(plan, report)
    temporary = Path(f"{out_path}.tmp")
    temporary.write_text(json.dumps(result))
    temporary.replace(out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
