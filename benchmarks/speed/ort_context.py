"""Per-layer times inside networks (ONNX Runtime's per-node profile) as a latency table: do they
rank networks better than layers timed alone?

Reads the ort-1t validation of ``benchmarks.experiments.lut_fidelity`` (its 100 networks, their
measured latencies, and the table they were predicted from). The first ``--train`` networks are
each run in one profiled ONNX Runtime session (1 thread, 10 + ``--runs`` calls); every node's
kernel time is charged to its layer by the exported node name (``/stem``, ``/blocks/blocks.<i>``,
``/head``) and each key's in-context time is its median over the networks that hold it. On the
other networks, Kendall's tau of the in-context sums and of the table's sums against the measured
latencies. Exploratory: one session per network, so session offsets stay in the in-context times.

    python -m benchmarks.speed.ort_context        -> results/ort_context.json (about 1 minute)
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from benchmarks.experiments import common
from hwnas.arch.build import build_model, walk
from hwnas.arch.export import onnx_bytes
from hwnas.arch.spec import ArchSpec
from hwnas.cost.opkey import op_keys
from hwnas.cost.timing import fixed_input
from hwnas.io import atomic_write_json

BLOCK = re.compile(r"/blocks/blocks\.(\d+)/")


def layer_times(arch: ArchSpec, runs: int) -> dict[int | None, float]:
    """Milliseconds per call of each layer (walk index; None: nodes of no layer)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.log_severity_level = 3
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    shape = (1, arch.in_channels, arch.resolution, arch.resolution)
    session = onnxruntime.InferenceSession(onnx_bytes(build_model(arch).eval(), shape, opset=17),
                                           options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: fixed_input(shape)}
    calls = 10 + runs
    for _ in range(calls):
        session.run(None, feed)
    profile = Path(session.end_profiling())
    events = json.loads(profile.read_text())
    profile.unlink()
    last = len(walk(arch)) - 1
    totals: dict[int | None, float] = defaultdict(float)
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        match = BLOCK.match(name)
        index = 0 if name.startswith("/stem") else last if name.startswith("/head") else \
            int(match.group(1)) + 1 if match else None
        totals[index] += event["dur"] / 1000.0 / calls
    return dict(totals)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_fidelity_inputs(parser)
    parser.add_argument("--train", type=int, default=60)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    arguments = parser.parse_args(argv)
    rows, table = common.read_fidelity_inputs(parser, arguments)
    started = time.perf_counter()
    if not 2 <= arguments.train <= len(rows) - 2:
        parser.error(f"--train must be between 2 and {len(rows) - 2}, got {arguments.train}")
    inside: dict[Any, list[float]] = defaultdict(list)
    unassigned = []
    for row in rows[:arguments.train]:
        arch = ArchSpec.from_string(row["arch"])
        times = layer_times(arch, arguments.runs)
        unassigned.append(times.get(None, 0.0))
        for index, key in enumerate(op_keys(arch)):
            inside[key].append(times.get(index, 0.0))
    context = {key: float(np.median(values)) for key, values in inside.items()}
    ratio = float(np.median([context[key] / table.entries[key].latency_ms for key in context]))
    test = rows[arguments.train:]
    sums = [sum(context.get(key, ratio * table.entries[key].latency_ms)
                for key in op_keys(ArchSpec.from_string(row["arch"]))) for row in test]
    measured = [row["measured_ms"] for row in test]
    output = {
        "train_networks": arguments.train, "test_networks": len(test), "runs": arguments.runs,
        "keys_seen": len(context), "keys": len(table.entries),
        "in_context_over_alone": ratio, "unassigned_ms_median": float(np.median(unassigned)),
        "kendall_in_context": float(kendalltau(sums, measured)[0]),
        "kendall_table": float(kendalltau([row["lut_sum_ms"] for row in test], measured)[0]),
        "validation": str(arguments.validation), "lut": str(arguments.lut),
        "wall_s": time.perf_counter() - started,
    }
    atomic_write_json(arguments.out / "ort_context.json", output)
    print(f"{len(test)} held-out networks: Kendall {output['kendall_in_context']:.3f} with "
          f"in-context layer times, {output['kendall_table']:.3f} with the table "
          f"({len(context)} of {len(table.entries)} keys seen in {arguments.train} networks)")
    return output


if __name__ == "__main__":
    main()
