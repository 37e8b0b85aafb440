"""The timing worker: its schedule, its output, and that ONNX Runtime workers stay torch-free."""

from __future__ import annotations

import json
import subprocess
import sys

from hwnas.cost.worker import blocks_of, run_plan


def plan(items: int = 7, sessions: int = 3, block_size: int = 3, process: int = 0) -> dict:
    return {"engine": {"name": "onnxruntime", "threads": 1, "layout": "contiguous",
                       "batch_size": 1}, "process": process, "seed": 4, "sessions": sessions,
            "block_size": block_size, "items": [{"name": str(i)} for i in range(items)]}


def test_each_session_times_every_item_once_in_blocks_of_the_given_size():
    schedule = blocks_of(plan())
    assert [session for session, _, _ in schedule] == [0] * 3 + [1] * 3 + [2] * 3
    for session in range(3):
        indices = [i for s, _, block in schedule if s == session for i in block]
        assert sorted(indices) == list(range(7))
    assert [len(block) for _, _, block in schedule[:3]] == [3, 3, 1]
    orders = {tuple(i for s, _, block in schedule if s == session for i in block)
              for session in range(3)}
    assert len(orders) > 1  # a fresh random order per session
    assert blocks_of(plan()) == schedule  # seeded
    assert blocks_of(plan(process=1)) != schedule  # another process, another order


def test_a_worker_process_times_onnx_graphs_without_importing_torch(tmp_path):
    from torch import nn

    from hwnas.arch.export import onnx_bytes

    graph = tmp_path / "conv.onnx"
    graph.write_bytes(onnx_bytes(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 8, 8)))
    worker_plan = {**plan(items=2, sessions=2, block_size=1),
                   "items": [{"name": name, "warmup": 1, "repeats": 3, "onnx": str(graph),
                              "input_shape": [1, 3, 8, 8]} for name in ("a", "b")]}
    (tmp_path / "plan.json").write_text(json.dumps(worker_plan))
    code = ("import sys, hwnas.cost.worker as t; t.main(sys.argv[1:]); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "plan.json"),
                           str(tmp_path / "out.json")], capture_output=True, text=True,
                          check=True)
    lines = done.stdout.split()
    assert lines[-1] == "False" and "block" in done.stdout
    result = json.loads((tmp_path / "out.json").read_text())
    rows = result["measurements"]
    assert len(rows) == 4 and {row["item"] for row in rows} == {"a", "b"}
    assert {row["block"] for row in rows} == {"0.0.0", "0.0.1", "0.1.0", "0.1.1"}
    assert all(row["count"] == 3 and row["median_ms"] > 0 for row in rows)


def test_run_plan_reports_every_block():
    seen = []
    worker_plan = {**plan(items=3, sessions=2, block_size=2),
                   "engine": {"name": "torch", "threads": 1, "layout": "channels_last",
                              "batch_size": 1},
                   "items": [{"name": "net", "warmup": 0, "repeats": 1,
                              "arch": "r32:stem_k3_c16_s1:skip_c16_s1:head_c32_n10"}] * 3}
    result = run_plan(worker_plan, lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)] and len(result["measurements"]) == 6
