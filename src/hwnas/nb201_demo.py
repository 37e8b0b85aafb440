"""The main job (``make demo``): a hardware-aware search of the NAS-Bench-201 cells for this CPU,
judged by the cells' true 200-epoch accuracies (Dong & Yang 2020) instead of minutes of training.

Its settings are the sections of one preset (``configs/demo.yaml``; ``configs/demo-quick.yaml``
for a smoke run). Each step writes its output in the run folder and is skipped when that output
is there, so a killed demo continues where it stopped:

1. ``lut.json``: this CPU's latency table of the NB201 parts (``lut_build``;
   :func:`hwnas.cost.lutbuild.build_lut`, resumable key by key);
2. ``cpu_table.json``: the table's prediction for every one of the 15,625 cells' networks, the
   cells' accuracies (``accuracy_column`` of ``nb201_accuracy.csv.gz``) and the budgets, the
   ``budget_percentiles`` of the predicted latencies;
3. ``chamnet/``: ChamNet (``chamnet``) with the table's accuracies of ``search_column`` as the
   evaluator and one budget per percentile on this CPU;
4. ``supernet/`` and ``dnas-<i>/``: FBNet DNAS of the cell (:mod:`hwnas.dnas.cellwise`): one
   short weight warm-up (``supernet``: ``warmup_epochs = epochs``), then per budget a search
   from those weights (``dnas``) with LAT the additive fit of this CPU's predictions and the
   budget form of the loss; its answer is the most probable connected cell within the budget;
5. ``latency.json``: every found cell and every budget's best feasible cell timed end to end
   with the table's engine, beside the table's prediction (:func:`hwnas.demo.measure`);
6. ``summary.json`` and ``report.md``: per budget the true accuracy, regret and latency of each
   answer, and accuracy against this CPU's latency for all cells
   (:mod:`hwnas.report.nb201_report`).

Regret is the 200-epoch accuracy of the best cell within the budget by the table minus the
answer's. The supernet's few CPU minutes rank cells poorly (``benchmarks.experiments.
nb201_supernet`` measures how poorly); the report shows both searches side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwnas import settings
from hwnas.cost.device_table import NB201Latency
from hwnas.cost.lut import LatencyTable
from hwnas.cost.lut_config import LutBuildConfig
from hwnas.data.cifar import CifarArrays
from hwnas.data.tables import nb201_accuracy, nb201_accuracy_columns
from hwnas.demo import DemoHooks, build_table, measure
from hwnas.dnas.config import SearchSettings
from hwnas.errors import HwnasError
from hwnas.evolution.config import ChamNetConfig
from hwnas.io import atomic_write_json, read_json
from hwnas.settings import check, setting
from hwnas.spaces.nb201 import NB201Space

SECTIONS = {"lut_build": LutBuildConfig, "chamnet": ChamNetConfig, "supernet": SearchSettings,
            "dnas": SearchSettings}
STEPS = 6


@dataclass(frozen=True, kw_only=True)
class NB201DemoConfig:
    """The demo's own settings (its ``demo`` section)."""

    budget_percentiles: tuple[float, ...] = setting(
        (25.0, 50.0, 75.0), "Budgets: these percentiles of the predicted latency of all cells.")
    accuracy_column: str = setting("cifar10_test_200ep", "NB201 accuracy that judges answers.")
    search_column: str = setting("cifar10valid_valid_12ep", "NB201 accuracy ChamNet searches on "
                                 "(a 12-epoch validation accuracy: what a user could afford).")
    channels: int = setting(16, "Supernet width C (NB201: 16).", minimum=1)
    cells: int = setting(1, "Supernet cells per stage N (NB201: 5).", minimum=1)

    def __post_init__(self) -> None:
        check(self)
        if not self.budget_percentiles or not all(0 < p < 100 for p in self.budget_percentiles):
            raise HwnasError(f"budget_percentiles must be numbers in (0, 100), got "
                             f"{list(self.budget_percentiles)!r}")
        for name in ("accuracy_column", "search_column"):
            if getattr(self, name) not in nb201_accuracy_columns():
                raise HwnasError(f"unknown {name} {getattr(self, name)!r} (known: "
                                 f"{', '.join(nb201_accuracy_columns())})")


@dataclass(frozen=True)
class NB201DemoSettings:
    """Every section of the demo's preset, resolved."""

    lut_build: LutBuildConfig
    chamnet: ChamNetConfig
    supernet: SearchSettings
    dnas: SearchSettings
    demo: NB201DemoConfig

    @classmethod
    def load(cls, path: str | Path, seed: int | None = None) -> NB201DemoSettings:
        """The preset at ``path``; ``seed`` (if given) replaces the searches'."""
        sections: dict[str, Any] = {name: settings.load_section(kind, path, name)
                                    for name, kind in SECTIONS.items()}
        sections["demo"] = settings.load_section(NB201DemoConfig, path, "demo")
        if sections["lut_build"].space != "nb201":
            raise HwnasError(f"{path}: the lut_build section must measure space nb201, got "
                             f"{sections['lut_build'].space!r}")
        if sections["supernet"].warmup_epochs != sections["supernet"].epochs:
            raise HwnasError(f"{path}: the supernet section only warms up: warmup_epochs must "
                             f"equal epochs ({sections['supernet'].epochs})")
        if sections["dnas"].target_form != "budget" or sections["dnas"].warmup_epochs:
            raise HwnasError(f"{path}: the dnas section searches from the warm-up under a "
                             "budget: target_form budget, warmup_epochs 0")
        if seed is not None:
            for name in ("chamnet", "supernet", "dnas"):
                sections[name] = settings.replace(sections[name], seed=seed)
        return cls(**sections)

    def to_dict(self) -> dict[str, Any]:
        return {name: settings.to_dict(getattr(self, name)) for name in (*SECTIONS, "demo")}


def cpu_table(out: Path, table: LatencyTable, demo: NB201DemoConfig,
              hooks: DemoHooks) -> dict[str, Any]:
    """This CPU's predicted latency of every cell's network, the cells' accuracies, budgets."""
    path = out / "cpu_table.json"
    if path.exists():
        hooks.step(f"2/{STEPS} every cell on this CPU: done before, reading cpu_table.json")
        return read_json(path, "cell table")
    hooks.step(f"2/{STEPS} every cell on this CPU: the table's prediction of all 15,625 networks")
    space = NB201Space()
    latency = np.round(table.choice_cost(space)(space.all_choices()), 6)  # as the file holds
    budgets = [float(np.percentile(latency, p)) for p in demo.budget_percentiles]
    data = {"space": space.name, "order": "NB201 index", "cost_name": table_name(table),
            "latency_ms": [float(value) for value in latency],
            "accuracy_column": demo.accuracy_column,
            "accuracy": [float(value) for value in nb201_accuracy(demo.accuracy_column)],
            "budgets": [{"percentile": p, "latency_ms": limit}
                        for p, limit in zip(demo.budget_percentiles, budgets)]}
    atomic_write_json(path, data)
    return data


def table_name(table: LatencyTable) -> str:
    return f"this CPU ({table.engine.get('name')}, {table.engine.get('threads')} thread(s))"


def cpu_model(cells: dict[str, Any]) -> NB201Latency:
    """The cost model of ``cpu_table.json``: an exact lookup for budgets, its additive fit for
    DNAS's LAT (:meth:`NB201Latency.layer_cost_matrix`)."""
    return NB201Latency(cells["cost_name"], values=np.asarray(cells["latency_ms"]))


def chamnet(out: Path, demo: NB201DemoSettings, cells: dict[str, Any],
            hooks: DemoHooks) -> dict[str, Any]:
    from hwnas.evolution.chamnet import run_chamnet
    from hwnas.evolution.evaluators import NB201Evaluator

    run_dir = out / "chamnet"
    if (run_dir / "result.json").exists():
        hooks.step(f"3/{STEPS} ChamNet: done before, reading chamnet/result.json")
        return read_json(run_dir / "result.json", "ChamNet result")
    model, own = cpu_model(cells), demo.demo
    hooks.step(f"3/{STEPS} ChamNet: {demo.chamnet.evaluations} evaluations of NB201's "
               f"{own.search_column}, {len(cells['budgets'])} budgets on this CPU")
    evaluator = NB201Evaluator(own.search_column, report_column=own.accuracy_column)
    run_chamnet(NB201Space(), evaluator,
                [(model, budget["latency_ms"]) for budget in cells["budgets"]], demo.chamnet,
                run_dir=run_dir, resume=(run_dir / "config.json").exists())
    return read_json(run_dir / "result.json", "ChamNet result")


def dnas(out: Path, demo: NB201DemoSettings, cells: dict[str, Any], data: CifarArrays,
         hooks: DemoHooks) -> list[dict[str, Any]]:
    """The warm-up, then one search per budget from its weights; their result.json files."""
    from hwnas.dnas.cellwise import run_cell_dnas
    from hwnas.dnas.data import search_batches

    model, own = cpu_model(cells), demo.demo
    shape = {"channels": own.channels, "cells": own.cells, "plots": False}
    warmup = out / "supernet"
    if not (warmup / "result.json").exists():
        hooks.step(f"4/{STEPS} DNAS: warming up the cell supernet (C = {own.channels}, "
                   f"N = {own.cells}) for {demo.supernet.epochs} epochs")
        weights, theta = search_batches(data, demo.supernet)
        run_cell_dnas(model, weights, theta, demo.supernet, run_dir=warmup,
                      resume=(warmup / "config.json").exists(),
                      progress=hooks.search_progress, **shape)
    results = []
    for index, budget in enumerate(cells["budgets"]):
        run_dir = out / f"dnas-{index}"
        if not (run_dir / "result.json").exists():
            hooks.step(f"4/{STEPS} DNAS under budget {index + 1}/{len(cells['budgets'])}: "
                       f"{budget['latency_ms']:.3f} ms, {demo.dnas.epochs} epochs from the "
                       "warm-up")
            config = settings.replace(demo.dnas, target_latency=budget["latency_ms"])
            weights, theta = search_batches(data, config)
            run_cell_dnas(model, weights, theta, config, run_dir=run_dir,
                          resume=(run_dir / "config.json").exists(),
                          progress=hooks.search_progress, warm_start=warmup / "checkpoint.pt",
                          **shape)
        results.append(read_json(run_dir / "result.json", "DNAS result"))
    return results


def answers(cells: dict[str, Any], chamnet_result: dict[str, Any],
            dnas_results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per budget: the best feasible cell by the table, ChamNet's and DNAS's answers, each with
    its NB201 index, true accuracy, predicted latency and regret."""
    space = NB201Space()
    latency, accuracy = np.asarray(cells["latency_ms"]), np.asarray(cells["accuracy"])

    def cell(index: int) -> dict[str, Any]:
        return {"arch": space.format(space.all_choices()[index]), "index": int(index),
                "accuracy": float(accuracy[index]), "predicted_ms": float(latency[index])}

    def cell_of(choices: Any) -> dict[str, Any]:
        return cell(space.index_of(tuple(int(op) for op in choices)))

    rows = []
    for position, budget in enumerate(cells["budgets"]):
        feasible = np.flatnonzero(latency <= budget["latency_ms"])
        best = cell(feasible[np.argmax(accuracy[feasible])])
        found = {"best feasible": best}
        if chamnet_result["best"][position] is not None:
            found["chamnet"] = cell_of(chamnet_result["best"][position]["choices"])
        derived = dnas_results[position]["within_target"] or dnas_results[position]["argmax"]
        found["dnas"] = cell_of(derived["choices"])
        for answer in found.values():
            answer["regret"] = best["accuracy"] - answer["accuracy"]
            answer["feasible"] = answer["predicted_ms"] <= budget["latency_ms"]
        rows.append({**budget, "feasible_cells": int(len(feasible)), "answers": found})
    return rows


def networks_to_time(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every distinct answer's network, named by its budget and who found it."""
    space, chosen = NB201Space(), {}
    for row in rows:
        for who, answer in row["answers"].items():
            chosen[f"p{row['percentile']:g} {who}"] = space.to_arch(space.parse(answer["arch"]))
    return chosen


def run_nb201_demo(out: Path, demo: NB201DemoSettings, load_data: Callable[[], CifarArrays],
                   hooks: DemoHooks | None = None) -> Path:
    """Run (or continue) the demo in ``out`` and return the report's path."""
    from hwnas.report.nb201_report import write_report

    hooks = hooks or DemoHooks()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", {"job": "nb201", **demo.to_dict()})
    table = build_table(out, demo.lut_build, hooks, step=f"1/{STEPS}")
    cells = cpu_table(out, table, demo.demo, hooks)
    chamnet_result = chamnet(out, demo, cells, hooks)
    dnas_results = dnas(out, demo, cells, load_data(), hooks)
    rows = answers(cells, chamnet_result, dnas_results)
    measure(out, demo.lut_build, table, networks_to_time(rows), hooks, step=f"5/{STEPS}")
    atomic_write_json(out / "summary.json", {"budgets": rows})
    hooks.step(f"6/{STEPS} writing the report")
    return write_report(out)
