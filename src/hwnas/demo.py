"""The FBNet-space demo (``hwnas demo --job fbnet``): a short hardware-aware search for this CPU on
CIFAR-10 (the main job is NAS-Bench-201's, :mod:`hwnas.nb201_demo`).

Its settings are the sections of one preset (``configs/demo-fbnet.yaml``;
``configs/demo-fbnet-quick.yaml`` for a smoke run), shared with the commands that run each
step alone. Five steps, each written to the output folder and skipped when its output is
already there, so a killed demo continues where it stopped:

1. ``lut.json``: the latency table of the ``lut_build`` section, measured here
   (:func:`hwnas.cost.lutbuild.build_lut`, itself resumable key by key);
2. ``search/``: FBNet DNAS (the ``dnas`` section) with that table as LAT and the target
   ``T`` = the table's cost of the all-``reference_candidate`` network;
3. ``latency.json``: the derived networks and a MobileNetV2 baseline measured end to end with
   the same engine, beside the table's prediction;
4. ``train-<name>/``: the most probable network within the target and the baseline trained with
   the ``train`` section's recipe (:func:`hwnas.train.loop.train`);
5. ``report.md``: what a person reads (:mod:`hwnas.report.demo_report`).

The numbers of a demo come from a few minutes of CPU: they show the pipeline and its evidence,
not converged accuracies (``benchmarks/`` holds the longer comparisons).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hwnas import settings
from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import mobilenet_v2_cifar
from hwnas.cost.lut import LatencyTable
from hwnas.cost.lut_config import LutBuildConfig
from hwnas.cost.health import Monitor
from hwnas.cost.lutbuild import build_lut, engine_of, measure_networks
from hwnas.data.cifar import CifarArrays
from hwnas.dnas.config import DnasConfig
from hwnas.dnas.data import search_batches
from hwnas.dnas.result import SearchResult
from hwnas.io import atomic_write_json, read_json
from hwnas.settings import check, setting
from hwnas.train.loop import TrainResult, train
from hwnas.train.recipe import TrainRecipe

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DemoConfig:
    """The demo's own settings (its ``demo`` section)."""

    reference_candidate: str = setting(
        "k3_e3", "T is the table's cost of the network with this candidate at every layer.")
    baseline_width: float = setting(0.5, "Width multiplier of the MobileNetV2-CIFAR baseline.",
                                    minimum=0)

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class DemoSettings:
    """Every section of the demo's preset, resolved."""

    lut_build: LutBuildConfig
    dnas: DnasConfig
    train: TrainRecipe
    demo: DemoConfig

    @classmethod
    def load(cls, path: str | Path, seed: int | None = None) -> DemoSettings:
        """The preset at ``path``; ``seed`` (if given) replaces the search's and training's."""
        sections = {name: settings.load_section(kind, path, name)
                    for name, kind in (("lut_build", LutBuildConfig), ("dnas", DnasConfig),
                                       ("train", TrainRecipe), ("demo", DemoConfig))}
        if seed is not None:
            for name in ("dnas", "train"):
                sections[name] = settings.replace(sections[name], seed=seed)
        return cls(**sections)

    def to_dict(self) -> dict[str, Any]:
        return {name: settings.to_dict(getattr(self, name))
                for name in ("lut_build", "dnas", "train", "demo")}


@dataclass
class DemoHooks:
    """Callbacks the CLI fills with progress bars; the defaults do nothing."""

    lut_progress: Callable[[str, int, int], None] = lambda stage, done, total: None
    search_progress: Callable[[Any], None] | None = None
    train_progress: Callable[[str], Any] = lambda name: None
    step: Callable[[str], None] = field(default=lambda message: logger.info(message))
    warning: Callable[[str], None] = field(default=lambda message: logger.warning(message))


def build_table(out: Path, config: LutBuildConfig, hooks: DemoHooks,
                step: str = "1/5") -> LatencyTable:
    engine = engine_of(config)
    hooks.step(f"{step} latency table: {engine.label}, every layer of the {config.space} space")
    return build_lut(config, out / "lut.json", on_progress=hooks.lut_progress,
                     on_warning=hooks.warning)


def search(out: Path, demo: DemoSettings, table: LatencyTable, data: CifarArrays,
           hooks: DemoHooks) -> SearchResult:
    from hwnas.dnas.layerwise import run_dnas
    from hwnas.spaces import get_space

    run_dir = out / "search"
    if (run_dir / "result.json").exists():
        hooks.step("2/5 search: done before, reading search/result.json")
        return SearchResult.load(run_dir / "result.json")
    space = get_space(table.space_name, "dnas")
    target = table.cost(space.uniform_arch(demo.demo.reference_candidate))
    config = settings.replace(demo.dnas, target_latency=target)
    hooks.step(f"2/5 FBNet search ({config.epochs} epochs) with the table as LAT, target "
               f"{target:.3f} ms (the all-{demo.demo.reference_candidate} network), "
               f"width/stride-changing layers fixed to {config.fix_transitions}")
    weights, theta = search_batches(data, config)
    return run_dnas(space, table, weights, theta, config, run_dir=run_dir,
                    resume=(run_dir / "config.json").exists(), progress=hooks.search_progress)


SEARCHED = "searched (within target)"


def candidates(result: SearchResult, demo: DemoConfig) -> dict[str, ArchSpec]:
    """The networks the demo measures: the most probable network within the target (the one it
    trains; the argmax if nothing fits), the argmax, the cheapest and most likely samples, and
    the baseline."""
    chosen = {SEARCHED: ArchSpec.from_string((result.within_target or result.argmax).arch),
              "searched (argmax)": ArchSpec.from_string(result.argmax.arch)}
    if result.samples:
        chosen["searched (cheapest sample)"] = ArchSpec.from_string(result.samples[0].arch)
        likely = max(result.samples, key=lambda sample: sample.log_probability)
        chosen["searched (most likely sample)"] = ArchSpec.from_string(likely.arch)
    chosen[baseline_name(demo)] = mobilenet_v2_cifar(width_multiplier=demo.baseline_width)
    return chosen


def baseline_name(demo: DemoConfig) -> str:
    return f"mobilenet_v2_cifar x{demo.baseline_width}"


def measure(out: Path, config: LutBuildConfig, table: LatencyTable,
            networks: dict[str, ArchSpec], hooks: DemoHooks, step: str = "3/5"
            ) -> dict[str, Any]:
    """``latency.json``: ``networks`` timed end to end with the table's engine and plan, beside
    the table's prediction and with the measurement conditions."""
    path = out / "latency.json"
    if path.exists():
        hooks.step(f"{step} end-to-end latency: done before, reading latency.json")
        return read_json(path, "latency measurements")
    engine = engine_of(config)
    hooks.step(f"{step} end-to-end latency of {len(networks)} networks "
               f"({engine.label}, {config.processes} processes x {config.sessions} sessions, "
               f"the table's calibration networks as references)")
    monitor = Monitor("the demo's timing", hooks.warning)
    monitor.before(config.wait_quiet)
    references = [ArchSpec.from_string(arch) for arch in table.build.references]
    times = measure_networks(list(networks.values()), engine, config.network_timing, config.plan,
                             monitor=monitor, references=references,
                             on_progress=hooks.lut_progress)
    drift = times.drift_pct(table.build.references)
    monitor.drift(drift, "when the table was built")
    from hwnas.spaces import get_space

    space = get_space(table.space_name)
    rows = [{"name": name, "arch": arch.to_string(), "measured_ms": times.latency_ms(arch),
             "spread_pct": times.together.spread_pct[arch.to_string()],
             "predicted_ms": table.cost(arch) if space.contains(arch) else None}
            for name, arch in networks.items()]
    data = {"engine": engine.metadata(), "timing": config.network_timing.to_dict(),
            "plan": {"processes": config.processes, "sessions": config.sessions},
            "networks": rows, "drift_pct": drift, "conditions": monitor.summary(),
            "build_conditions": table.build.conditions}
    atomic_write_json(path, data)
    return data


def train_networks(out: Path, demo: DemoSettings, data: CifarArrays,
                   networks: dict[str, ArchSpec], hooks: DemoHooks
                   ) -> dict[str, TrainResult | dict]:
    """Train the searched network and the baseline with one identical recipe."""
    recipe = demo.train
    hooks.step(f"4/5 training the searched network and the baseline ({recipe.epochs} epochs "
               "each, same recipe)")
    subset = data.subset(train_per_class=recipe.subset_per_class,
                         test_per_class=recipe.test_per_class,
                         rng=np.random.default_rng(recipe.seed))
    results: dict[str, TrainResult | dict] = {}
    for name in (SEARCHED, baseline_name(demo.demo)):
        run_dir = out / f"train-{_slug(name)}"
        if (run_dir / "result.json").exists():
            results[name] = read_json(run_dir / "result.json", "training result")
            continue
        results[name] = train(networks[name], subset, recipe, run_dir,
                              resume=(run_dir / "config.json").exists(),
                              progress=hooks.train_progress(name))
    return results


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")


def run_demo(out: Path, demo: DemoSettings, load_data: Callable[[], CifarArrays],
             hooks: DemoHooks | None = None) -> Path:
    """Run (or continue) the demo in ``out`` and return the report's path."""
    from hwnas.report.demo_report import write_report

    hooks = hooks or DemoHooks()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "config.json", demo.to_dict())
    table = build_table(out, demo.lut_build, hooks)
    data = load_data()
    result = search(out, demo, table, data, hooks)
    networks = candidates(result, demo.demo)
    measure(out, demo.lut_build, table, networks, hooks)
    train_networks(out, demo, data, networks, hooks)
    hooks.step("5/5 writing the report")
    return write_report(out)
