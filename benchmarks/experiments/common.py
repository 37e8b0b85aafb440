"""What the experiments share: presets, outputs, work folders, and the resumable steps and target
rules of the DNAS experiments (``dnas_devices``, ``dnas_quality``, ``dnas_quality_seeds``,
``dnas_search_time``, ``dmasking_quality``).

**Presets.** An experiment's settings are the sections of ``configs/benchmarks/<name>.yaml``
(:data:`hwnas.settings.SECTIONS`), every setting of a section written out, so that a change of a
library default cannot change a recorded run. Its own settings are the ``benchmark`` section, read
by a dataclass whose fields have no defaults (:func:`required`): each value lives in the preset
only. ``--quick`` reads ``configs/benchmarks/<name>-quick.yaml`` on top of the preset: it holds
only the values a smoke run changes. The DNAS experiments share one budget,
``configs/benchmarks/dnas.yaml`` (:class:`DnasSettings`): one search budget and one training
recipe for every network.

**Work folders.** Every step caches its output in ``benchmarks/work/<folder>`` (ignored by git, so
a clean clone recomputes) and is skipped when the output is there: a killed experiment continues
and experiments share searches and trainings. A cached run folder with ``result.json`` is read,
after checking that it computed what the current settings ask for (:func:`finished_search`,
:func:`finished_training`); a folder without it is resumed only if this code wrote it (its
``config.json`` names its command, :func:`resumable`). Compute (search, training) and latency
timing are separate steps: ``--skip-latency`` runs only the compute, so latency can be timed later
on a quiet machine (any other process wrecks timings).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from hwnas import settings
from hwnas.arch.spec import ArchSpec
from hwnas.arch.zoo import mobilenet_v2_cifar
from hwnas.cost.base import CostModel
from hwnas.cost.engines import check_same_engine
from hwnas.cost.health import Monitor
from hwnas.cost.flops import FlopsCost
from hwnas.cost.lut import LatencyTable
from hwnas.cost.lut_config import LutBuildConfig, TimingSettings
from hwnas.cost.lutbuild import build_lut, engine_of, measure_networks
from hwnas.cost.sessions import SessionPlan
from hwnas.data.batches import cifar_at_resolution
from hwnas.data.cifar import CifarArrays, load_cifar10
from hwnas.dnas.config import DnasConfig
from hwnas.dnas.data import search_batches
from hwnas.dnas.layerwise import LayerwiseProblem, run_dnas
from hwnas.dnas.result import (TARGET_BAND, SearchResult, derive_within_target, lower_bound,
                               most_probable_within)
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, read_json
from hwnas.runs import first_difference, normalised
from hwnas.settings import check
from hwnas.spaces import get_space
from hwnas.spaces.fbnet import LayerwiseSpace
from hwnas.train.loop import train
from hwnas.train.recipe import TrainRecipe

RESULTS = Path("benchmarks/results")
WORK = Path("benchmarks/work")


# ---- presets and outputs ---------------------------------------------------------------------

def required(help: str, **rule: Any) -> Any:
    """A setting without a default (:func:`hwnas.settings.setting`'s rule): the preset gives it."""
    return dataclasses.field(metadata={"rule": settings.Rule(help, **rule)})


def preset_path(name: str, quick: bool = False) -> Path:
    """``configs/benchmarks/<name>.yaml`` (``<name>-quick.yaml`` with ``quick``)."""
    return settings.preset(f"benchmarks/{name}{'-quick' if quick else ''}")


def preset_mappings(name: str, *, quick: bool = False, path: Path | None = None
                    ) -> tuple[dict[str, dict[str, Any]], str]:
    """The sections of the preset (``path``, default :func:`preset_path`) as mappings, with the
    quick preset's values on top when ``quick`` (a missing quick preset changes nothing); and a
    description of the files for error messages and outputs."""
    base = Path(path) if path is not None else preset_path(name)
    sections = {section: dict(values) for section, values in settings.load_file(base).items()}
    source = shown(base)
    if quick:
        try:
            overlay_path = preset_path(name, quick=True)
        except HwnasError:
            return sections, source
        for section, values in settings.load_file(overlay_path).items():
            if section not in sections:
                raise HwnasError(f"{overlay_path}: section {section!r} is not in {base}")
            sections[section].update(values)
        source += f" + {shown(overlay_path)}"
    return sections, source


def shown(path: Path) -> str:
    """``path`` relative to the working directory (the repository root) where it is inside."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_preset(name: str, types: Mapping[str, type], *, quick: bool = False,
                path: Path | None = None) -> tuple[dict[str, Any], str]:
    """Each section in ``types`` ({section: config type}) of the preset, as its type, and the
    description of the files (:func:`preset_mappings`)."""
    sections, source = preset_mappings(name, quick=quick, path=path)
    loaded = {}
    for section, kind in types.items():
        if section not in sections:
            raise HwnasError(f"{source} has no {section!r} section")
        try:
            loaded[section] = settings.from_mapping(kind, sections[section],
                                                    f"{source} [{section}]")
        except TypeError as error:  # a setting without a default that the preset lacks
            raise HwnasError(f"{source} [{section}]: {error}") from None
    return loaded, source


def parser(description: str, name: str) -> argparse.ArgumentParser:
    """The options every experiment takes: ``--quick``, ``--config``, ``--out``."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--quick", action="store_true",
                        help=f"smoke run: configs/benchmarks/{name}-quick.yaml (for the DNAS "
                        "experiments also dnas-quick.yaml) on top of the presets, outputs "
                        "<name>_quick.json, separate work folders")
    result.add_argument("--config", type=Path, default=None,
                        help=f"preset (default configs/benchmarks/{name}.yaml)")
    result.add_argument("--out", type=Path, default=RESULTS, help="folder of the outputs")
    return result


def output_path(out: Path, name: str, quick: bool, suffix: str = ".json") -> Path:
    """``out/<name>.json`` (``<name>_quick.json`` for smoke runs, which git ignores)."""
    return out / f"{name}{'_quick' if quick else ''}{suffix}"


def write_output(out: Path, name: str, quick: bool, output: dict[str, Any],
                 started: float | None = None) -> dict[str, Any]:
    """Write ``output`` to :func:`output_path` (with the wall time since ``started``, if given)."""
    if started is not None:
        output["wall_s"] = time.perf_counter() - started
    path = output_path(out, name, quick)
    atomic_write_json(path, output)
    print(f"wrote {path}")
    return output


def machine() -> dict[str, Any]:
    import torch

    from hwnas.cost.engines import cpu_model

    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__}


def run(main: Callable[[list[str] | None], Any]) -> None:
    """Run an experiment's ``main`` from the command line; a refusal is one line, no trace."""
    try:
        main(sys.argv[1:])
    except HwnasError as error:
        raise SystemExit(f"error: {error}") from None


# ---- work folders --------------------------------------------------------------------------

SETTINGS_FILE = "settings.json"
#: what work folders written before the presets recorded (the ``Budget`` of that code)
LEGACY_FILE = "budget.json"
#: ``Budget`` fields that changed how fast the steps ran, not what they computed
LEGACY_EXECUTION = ("threads",)


def check_work_folder(work: Path, identity: Mapping[str, Any],
                      legacy: Mapping[str, Any] | None = None) -> None:
    """Record ``identity`` (the settings that decide what the cached steps compute) in
    ``work/settings.json``; refuse a folder whose cached steps used other settings, naming the
    first difference. A folder written before the presets holds ``budget.json`` instead: it is
    compared with ``legacy``, the same settings in that file's layout."""
    path, current = work / SETTINGS_FILE, normalised(dict(identity))
    if path.exists():
        difference = first_difference(read_json(path, "work-folder settings"), current)
        if difference is not None:
            raise HwnasError(f"{work} holds results of other settings ('{difference}' differs "
                             f"from {path}): move it away or choose another work folder")
        return
    old = work / LEGACY_FILE
    if old.exists():
        saved = {key: value for key, value in read_json(old, "benchmark budget").items()
                 if key not in LEGACY_EXECUTION}
        difference = None if legacy is None else first_difference(saved, normalised(
            {key: value for key, value in legacy.items() if key not in LEGACY_EXECUTION}))
        if legacy is None or difference is not None:
            raise HwnasError(f"{work} holds results of another budget ('{difference}' differs "
                             f"from {old}): move it away or choose another work folder")
    atomic_write_json(path, current)


def resumable(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds an unfinished run to continue (False: start a new one). A run
    of code older than the run folders (no ``"command"`` in its ``config.json``) is refused:
    its settings cannot be checked."""
    config = run_dir / "config.json"
    if not config.exists():
        return False
    if "command" not in read_json(config, "run config"):
        raise HwnasError(f"{run_dir} holds an unfinished run of older code: move it away to "
                         "compute it again")
    return True


def measured_table(config: LutBuildConfig, path: Path) -> LatencyTable:
    """The latency table ``config`` describes, at ``path``: built (or resumed) on this machine.
    A complete table measured on another machine (a copied work folder), or by an older hwnas
    (format 1, which the recorded results used), is read as it is, for the costs it predicts;
    :func:`check_same_machine` refuses to time networks against one of another machine."""
    if path.exists():
        table = LatencyTable.load(path)
        if table.version == 1 and table.is_complete(get_space(config.space, "lut")):
            print(f"reading {path}, a format-1 table of an older hwnas", flush=True)
            return table
        try:
            check_same_engine(table.engine, engine_of(config).metadata(), "")
        except HwnasError:
            space = get_space(config.space, "lut")
            if (table.space_name != config.space or not table.is_complete(space)
                    or table.timing != config.measurement()
                    or (table.calibration is None) != (config.calibration == 0)):
                raise HwnasError(f"{path} was measured on another machine and does not hold "
                                 "the finished table of this preset: move it away") from None
            print(f"reading {path}, measured on {table.engine.get('cpu')} (this machine: "
                  f"{engine_of(config).metadata().get('cpu')})", flush=True)
            return table
    return build_lut(config, path)


def same_machine(table: LatencyTable) -> bool:
    """Whether ``table`` was measured with this machine's engine."""
    from hwnas.cost.engines import engine_from_metadata

    try:
        check_same_engine(table.engine, engine_from_metadata(table.engine).metadata(), "")
    except HwnasError:
        return False
    return True


def check_same_machine(table: LatencyTable, what: str) -> None:
    """Refuse to time ``what`` here when ``table`` was measured on another machine."""
    if not same_machine(table):
        raise HwnasError(f"{table.describe()} was measured on {table.engine.get('cpu')}: timing "
                         f"{what} on this machine would compare two machines (run it there, or "
                         "move the work folder away to measure everything here)")


# ---- the DNAS experiments' settings ------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True)
class DnasBenchmarkConfig:
    """The ``benchmark`` section of ``configs/benchmarks/dnas.yaml``."""

    warmup_epochs: int = required(
        "Weights-only epochs (uniform random paths) of the one supernet warm-up that every "
        "search starts from.", minimum=0)
    reference_candidate: str = required(
        "A search's target T: the searched-for device's cost of the network with this "
        "candidate at every layer, the fixed ones too.")
    mobilenet_widths: tuple[float, ...] = required(
        "Width multipliers of the MobileNetV2 (CIFAR strides) baselines.")
    latency_warmup: int = required("Untimed calls per network and round (end to end).",
                                   minimum=0)
    latency_repeats: int = required("Timed calls per network and round.", minimum=1)
    latency_processes: int = required("Worker processes timing the networks, one after "
                                      "another.", minimum=1)
    latency_sessions: int = required("Fresh sessions per network in each worker process.",
                                     minimum=1)

    def __post_init__(self) -> None:
        check(self)

    @property
    def timing(self) -> TimingSettings:
        return TimingSettings(warmup=self.latency_warmup, repeats=self.latency_repeats)

    @property
    def plan(self) -> SessionPlan:
        return SessionPlan(processes=self.latency_processes, sessions=self.latency_sessions)


#: settings that act only in theta steps or in the final derivation: a weights-only run (the
#: warm-up, ``warmup_epochs == epochs``) computes the same weights whatever they are
THETA_ONLY = ("theta_lr", "theta_weight_decay", "alpha", "beta", "target_latency",
              "target_form", "theta_estimator", "paths_per_batch", "num_samples")
#: settings that change how fast a step runs, not what it computes (floating-point sums aside):
#: a work folder's cached steps are reused across them
EXECUTION_SETTINGS = {"dnas": ("threads", "checkpoint_every", "device"),
                      "train": ("threads", "eval_every")}


@dataclasses.dataclass(frozen=True)
class DnasSettings:
    """Every section of ``configs/benchmarks/dnas.yaml``: ``lut_build`` (this CPU's LUT, the
    LAT of the "local" search, whose engine also times networks end to end; its space is the
    searched space), ``dnas`` (each device's search after the shared warm-up), ``train`` (the
    recipe of every training) and ``benchmark`` (:class:`DnasBenchmarkConfig`)."""

    lut_build: LutBuildConfig
    dnas: DnasConfig
    train: TrainRecipe
    benchmark: DnasBenchmarkConfig
    source: str = ""

    TYPES = {"lut_build": LutBuildConfig, "dnas": DnasConfig, "train": TrainRecipe,
             "benchmark": DnasBenchmarkConfig}

    @classmethod
    def load(cls, quick: bool = False, path: Path | None = None) -> DnasSettings:
        loaded, source = load_preset("dnas", cls.TYPES, quick=quick, path=path)
        return cls(**loaded, source=source)

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.source,
                **{name: settings.to_dict(getattr(self, name)) for name in self.TYPES}}

    def identity(self) -> dict[str, Any]:
        """The settings that decide what the cached steps compute (:data:`EXECUTION_SETTINGS`
        left out)."""
        data = {name: settings.to_dict(getattr(self, name)) for name in self.TYPES}
        for section, names in EXECUTION_SETTINGS.items():
            for name in names:
                data[section].pop(name)
        return data

    def legacy_budget(self) -> dict[str, Any]:
        """These settings in the layout of the ``budget.json`` that work folders of the code
        before the presets hold (its ``Budget``: one batch size and one seed for everything)."""
        search, recipe = self.dnas, self.train
        return {
            "search_per_class": search.subset_per_class,
            "warmup_epochs": self.benchmark.warmup_epochs, "search_epochs": search.epochs,
            "train_per_class": recipe.subset_per_class, "test_per_class": recipe.test_per_class,
            "train_epochs": recipe.epochs,
            "batch_size": search.batch_size if search.batch_size == recipe.batch_size
            else [search.batch_size, recipe.batch_size],
            "seed": search.seed if search.seed == recipe.seed else [search.seed, recipe.seed],
            "reference_candidate": self.benchmark.reference_candidate,
            "target_form": search.target_form, "transition_candidate": search.fix_transitions,
            "theta_estimator": search.theta_estimator,
            "paths_per_batch": search.paths_per_batch, "theta_lr": search.theta_lr}

    @property
    def space(self) -> LayerwiseSpace:
        return get_space(self.lut_build.space, "dnas")


def without_target(config: DnasConfig) -> DnasConfig:
    """``config`` without a latency target: FBNet's loss ``CE * alpha * log(1 + LAT) ** beta``,
    whatever the target form says; "budget" is the form the library accepts without a target
    (:meth:`hwnas.dnas.config.SearchSettings.check_runnable`)."""
    return settings.replace(config, target_latency=None, target_form="budget")


#: ``--loss``: the preset's target form with the reference target (absolute: two-sided,
#: budget: one-sided), or FBNet's own loss without a target
LOSSES = ("absolute", "budget", "fbnet")


@dataclasses.dataclass(frozen=True)
class Variant:
    """A variant of the per-device search; None everywhere is the preset's own search.
    ``loss``: :data:`LOSSES`; ``capacity_level``: the target of
    :func:`capacity_matched_target` at this candidate's MFLOPs instead of the reference
    target; ``weight_sharing``, ``residual_scale``: :class:`hwnas.dnas.config.DnasConfig`'s."""

    loss: str | None = None
    capacity_level: str | None = None
    weight_sharing: str | None = None
    residual_scale: float | None = None

    def __post_init__(self) -> None:
        if self.loss is not None and self.loss not in LOSSES:
            raise HwnasError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.loss == "fbnet" and self.capacity_level is not None:
            raise HwnasError("FBNet's loss has no target: it takes no capacity level")

    def config(self, search: DnasConfig) -> DnasConfig:
        """``search`` with this variant's loss form, weight sharing and residual scale (the
        target is set per device by :func:`search`)."""
        changed = settings.replace(
            search, weight_sharing=self.weight_sharing or search.weight_sharing,
            residual_scale=(search.residual_scale if self.residual_scale is None
                            else self.residual_scale))
        if self.loss == "fbnet":
            return without_target(changed)
        return settings.replace(changed, target_form=self.loss or search.target_form)

    def suffix(self, search: DnasConfig) -> str:
        """The name suffix of the variant's folders and outputs ("" for the preset's search)."""
        return (self.loss_suffix(search)
                + (f"-capacity-{self.capacity_level}" if self.capacity_level else "")
                + self.supernet_suffix(search))

    def loss_suffix(self, search: DnasConfig) -> str:
        return ("" if self.loss in (None, search.target_form) else f"-{self.loss}-loss")

    def supernet_suffix(self, search: DnasConfig) -> str:
        """The suffix of the supernet (its warm-up): weight sharing and residual scale."""
        config = self.config(search)
        return (("" if config.weight_sharing == "independent" else f"-{config.weight_sharing}")
                + (f"-scale{config.residual_scale:g}" if config.residual_scale else ""))


def warmup_config(budget: DnasSettings, variant: Variant) -> DnasConfig:
    """The shared warm-up of ``variant``'s searches: their settings, weights only for
    ``benchmark.warmup_epochs`` epochs from scratch. No theta step runs, so the theta settings
    compute nothing (:data:`THETA_ONLY`); the target is left out, as no device is searched."""
    epochs = budget.benchmark.warmup_epochs
    return settings.replace(without_target(variant.config(budget.dnas)), epochs=epochs,
                            warmup_epochs=epochs, warm_start=None)


# ---- target rules --------------------------------------------------------------------------

def fixed_choices(budget: DnasSettings) -> dict[int, int]:
    """``{layer: candidate index}`` of the layers the searches do not search."""
    return LayerwiseProblem(budget.space, FlopsCost(), without_target(budget.dnas)).fixed


def allowed_choices(budget: DnasSettings) -> np.ndarray:
    """[L, K] mask of a search's choices: every candidate, only the fixed one at fixed layers."""
    space = budget.space
    allowed = np.ones((space.num_layers, space.num_candidates), dtype=bool)
    for layer, index in fixed_choices(budget).items():
        allowed[layer] = False
        allowed[layer, index] = True
    return allowed


def reference_target(cost_model: CostModel, budget: DnasSettings) -> float:
    """The target T of a search: ``cost_model``'s cost of the network with the reference
    candidate at every layer (one rule for every device, so the searches differ only by the
    device's cost structure)."""
    return cost_model.cost(budget.space.uniform_arch(budget.benchmark.reference_candidate))


def largest_within(proxy: CostModel, cost_model: CostModel, budget: DnasSettings,
                   target: float, lower: float | None) -> tuple[int, ...] | None:
    """The choices of maximal ``proxy`` cost whose ``cost_model`` cost is in [lower, target],
    fixed layers kept (exact: the derivation's knapsack,
    :func:`hwnas.dnas.result.most_probable_within`, with the proxy in place of log P)."""
    space = budget.space
    costs = cost_model.layer_cost_matrix(space)
    found = most_probable_within(proxy.layer_cost_matrix(space).matrix, costs.matrix,
                                 allowed_choices(budget), costs.constant, target, lower=lower)
    return None if found is None else found[0]


#: the bisection of :func:`capacity_matched_target`: T in [LOW, HIGH] x the device's cost of the
#: all-<candidate> network, halved this many times (2^-40 of the interval)
BISECTION = (0.3, 1.5, 40)


def capacity_matched_target(cost_model: CostModel, budget: DnasSettings,
                            candidate: str) -> float:
    """A target rule that gives every device the same capacity: the smallest ``cost_model``
    cost of any network (fixed layers kept) with at least the MFLOPs of the network with
    ``candidate`` at every layer, by bisection over T with :func:`largest_within`."""
    space, flops = budget.space, FlopsCost()
    reference = cost_model.cost(space.uniform_arch(candidate))
    needed = flops.cost(space.uniform_arch(candidate))
    low_factor, high_factor, steps = BISECTION
    low, high = low_factor * reference, high_factor * reference
    for _ in range(steps):
        middle = (low + high) / 2
        found = largest_within(flops, cost_model, budget, middle, None)
        if found is not None and flops.cost(space.to_arch(found)) >= needed:
            high = middle
        else:
            low = middle
    return high


def search_target(cost_model: CostModel, budget: DnasSettings, variant: Variant
                  ) -> float | None:
    """The target of ``variant``'s search on ``cost_model`` (None: FBNet's loss)."""
    if variant.loss == "fbnet":
        return None
    if variant.capacity_level is not None:
        return capacity_matched_target(cost_model, budget, variant.capacity_level)
    return reference_target(cost_model, budget)


def derived_network(result: SearchResult, cost_model: CostModel, budget: DnasSettings,
                    target_form: str | None = None) -> ArchSpec:
    """The network an experiment trains for a search: the most probable one under the final
    ``P_theta`` whose predicted cost meets the target (within [0.95 T, T] for the two-sided
    form, :func:`hwnas.dnas.result.derive_within_target`), recomputed from the saved
    probabilities so that every cached result gets the same rule; the argmax when nothing fits.
    A search without a target (FBNet's loss) is held to the device's reference target in the
    preset's form."""
    space = budget.space
    target = result.target_latency or reference_target(cost_model, budget)
    form = target_form or budget.dnas.target_form
    derived = derive_within_target(space, np.array(result.probabilities),
                                   cost_model.layer_cost_matrix(space), target, cost_model,
                                   lower=lower_bound(target, form))
    return ArchSpec.from_string((derived or result.argmax).arch)


# ---- cached runs -------------------------------------------------------------------------------

def _effective_fixed(search: Mapping[str, Any], space: LayerwiseSpace) -> list[list[Any]]:
    """The (layer, candidate) pairs a stored search fixed: its ``fixed_layers`` and, with
    ``fix_transitions`` (absent in runs that predate it: None), the transition layers."""
    pairs = {int(layer): name for layer, name in search.get("fixed_layers", [])}
    transitions = search.get("fix_transitions")
    if transitions is not None:
        for layer in space.transition_layers:
            pairs.setdefault(layer, transitions)
    return [[layer, pairs[layer]] for layer in sorted(pairs)]


def search_difference(saved: Mapping[str, Any], config: DnasConfig, space: LayerwiseSpace,
                      cost_model: CostModel, *, weights_only: bool = False) -> str | None:
    """The first setting in which a stored DNAS run (its ``config.json``) differs from a run of
    ``config`` on ``cost_model`` (None: the same computation). Fixed layers compare as the
    layers they fix, ``warm_start`` is not compared (its folder moves; the warm-up is checked
    itself); with ``weights_only`` (a warm-up) neither :data:`THETA_ONLY` nor the cost model,
    which such a run only records."""
    stored = dict(saved.get("search") or {})
    current = settings.to_dict(config)
    for mapping in (stored, current):
        mapping["fixed_layers"] = _effective_fixed(mapping, space)
        mapping["fix_transitions"] = None
    for name in ("warm_start",) + (THETA_ONLY if weights_only else ()):
        stored[name] = current[name]
    if weights_only:
        return settings.resume_difference(DnasConfig, stored, current, "search")
    described = LayerwiseProblem(space, cost_model, config).describe()["cost_model"]
    return stored_difference(DnasConfig, stored, current, saved.get("cost_model"), described)


def stored_difference(config_type: type, stored: Mapping[str, Any], current: Mapping[str, Any],
                      stored_cost: Any, current_cost: Any) -> str | None:
    """The first difference between a stored search's settings and cost model and the current
    ones; settings a stored run predates count as their ``absent`` value
    (:func:`hwnas.settings.resume_difference`), those that only change how fast it runs are
    skipped."""
    return (settings.resume_difference(config_type, stored, current, "search")
            or first_difference(stored_cost, normalised(current_cost), "cost_model"))


def finished_result(run_dir: Path, difference: Callable[[Mapping[str, Any]], str | None]
                    ) -> SearchResult | None:
    """The result of the finished search in ``run_dir``, None when it has none; refuses one for
    which ``difference(config.json)`` names a setting."""
    if not (run_dir / "result.json").exists():
        return None
    found = difference(read_json(run_dir / "config.json", "search config"))
    if found is not None:
        raise HwnasError(f"the cached search {run_dir} used other settings ('{found}' differs): "
                         "move it away")
    return SearchResult.load(run_dir / "result.json")


def finished_search(run_dir: Path, config: DnasConfig, space: LayerwiseSpace,
                    cost_model: CostModel, *, weights_only: bool = False
                    ) -> SearchResult | None:
    """:func:`finished_result` of a DNAS run (:func:`search_difference`)."""
    return finished_result(run_dir, lambda saved: search_difference(
        saved, config, space, cost_model, weights_only=weights_only))


def finished_training(run_dir: Path, arch: ArchSpec, recipe: TrainRecipe,
                      data: CifarArrays) -> dict[str, Any] | None:
    """``result.json`` of the finished training in ``run_dir``, None when it has none; refuses
    one of another network, recipe (its compared settings) or data (the images' fingerprint)."""
    if not (run_dir / "result.json").exists():
        return None
    saved = read_json(run_dir / "config.json", "training config")
    difference = (first_difference(saved.get("arch"), arch.to_string(), "arch")
                  or settings.resume_difference(TrainRecipe, saved.get("recipe"),
                                                recipe.to_dict(), "recipe")
                  or first_difference((saved.get("data") or {}).get("fingerprint"),
                                      data.fingerprint(), "data"))
    if difference is not None:
        raise HwnasError(f"the cached training {run_dir} is not this one ('{difference}' "
                         "differs): move it away")
    return read_json(run_dir / "result.json", "training result")


# ---- the steps -------------------------------------------------------------------------------

def dnas_arguments(description: str, name: str, argv: list[str] | None,
                   options: Callable[[argparse.ArgumentParser], None] | None = None
                   ) -> tuple[argparse.Namespace, DnasSettings, Path]:
    """Parse the options of a DNAS experiment (:func:`parser`'s, ``--dnas-config``,
    ``--skip-latency``, ``--work`` and those ``options`` adds); load the shared budget and check
    the work folder (default ``benchmarks/work/dnas``, ``dnas-quick`` for smoke runs)."""
    result = parser(description, name)
    result.add_argument("--dnas-config", type=Path, default=None,
                        help="the shared DNAS budget (default configs/benchmarks/dnas.yaml)")
    result.add_argument("--skip-latency", action="store_true",
                        help="compute only; rerun without it on a quiet machine to time latency")
    result.add_argument("--work", type=Path, default=None,
                        help="work folder of the cached steps (default benchmarks/work/dnas)")
    if options is not None:
        options(result)
    arguments = result.parse_args(argv)
    budget = DnasSettings.load(quick=arguments.quick, path=arguments.dnas_config)
    work = arguments.work or WORK / ("dnas-quick" if arguments.quick else "dnas")
    check_work_folder(work, budget.identity(), budget.legacy_budget())
    return arguments, budget, work


def load_data() -> CifarArrays:
    return load_cifar10()


def local_lut(budget: DnasSettings, work: Path) -> LatencyTable:
    """This CPU's LUT of the searched space (built once in the work folder, resumable)."""
    config = budget.lut_build
    return measured_table(config, work / f"lut-{config.space}-{config.engine}-"
                                         f"{config.threads}t.json")


def warm_up(cost_model: CostModel, data: CifarArrays, budget: DnasSettings, work: Path,
            variant: Variant = Variant()) -> Path:
    """The checkpoint of ``variant``'s shared warm-up (:func:`warmup_config`), trained if it is
    not cached; ``cost_model`` (the first search's that needs it) is only recorded: theta is
    not trained."""
    config = warmup_config(budget, variant)
    run_dir = work / ("warmup" + variant.supernet_suffix(budget.dnas))
    if finished_search(run_dir, config, budget.space, cost_model, weights_only=True) is None:
        weights, theta = search_batches(data, config)
        print(f"warm-up: {config.epochs} epochs on {weights.num_images} images", flush=True)
        run_dnas(budget.space, cost_model, weights, theta, config, run_dir=run_dir,
                 resume=resumable(run_dir))
    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.exists():
        raise HwnasError(f"{checkpoint} is missing (checkpoints are not kept with cached "
                         f"results): move {run_dir} away to train the warm-up again")
    return checkpoint


def search(name: str, cost_model: CostModel, data: CifarArrays, budget: DnasSettings,
           work: Path, variant: Variant = Variant()) -> SearchResult:
    """``variant``'s FBNet DNAS for ``cost_model`` (the preset's ``dnas`` section, target from
    :func:`search_target`) from the shared warm-up, cached as ``search-<name><suffix>``."""
    run_dir = work / f"search-{name}{variant.suffix(budget.dnas)}"
    warm_start = work / ("warmup" + variant.supernet_suffix(budget.dnas)) / "checkpoint.pt"
    config = settings.replace(variant.config(budget.dnas), warm_start=str(warm_start),
                              target_latency=search_target(cost_model, budget, variant))
    cached = finished_search(run_dir, config, budget.space, cost_model)
    if cached is not None:
        return cached
    warm_up(cost_model, data, budget, work, variant)
    weights, theta = search_batches(data, config)
    print(f"search {run_dir.name}: {weights.num_images} weight / {theta.num_images} theta "
          f"images, target {config.target_latency}", flush=True)
    return run_dnas(budget.space, cost_model, weights, theta, config, run_dir=run_dir,
                    resume=resumable(run_dir))


def training_data(data: CifarArrays, budget: DnasSettings, resolution: int) -> CifarArrays:
    """The images of every training: ``train.subset_per_class`` / ``test_per_class`` of each
    class drawn from the preset recipe's seed (whatever seed a training's recipe has), resized
    to ``resolution`` for a network that chose another input resolution (DMasking)."""
    recipe = budget.train
    subset = data.subset(train_per_class=recipe.subset_per_class,
                         test_per_class=recipe.test_per_class,
                         rng=np.random.default_rng(recipe.seed))
    return cifar_at_resolution(subset, resolution)


def train_network(name: str, arch: ArchSpec, data: CifarArrays, budget: DnasSettings,
                  work: Path, seed: int | None = None) -> dict[str, Any]:
    """``result.json`` of ``arch`` trained with the preset's recipe (``seed``: the recipe's
    seed instead of the preset's, for initialisation, augmentation and batch order; the images
    stay :func:`training_data`'s), cached as ``train-<name>`` (``-seed<seed>``)."""
    recipe = budget.train if seed is None else settings.replace(budget.train, seed=seed)
    run_dir = work / (f"train-{name}" if recipe.seed == budget.train.seed
                      else f"train-{name}-seed{recipe.seed}")
    subset = training_data(data, budget, arch.resolution)
    cached = finished_training(run_dir, arch, recipe, subset)
    if cached is not None:
        return cached
    print(f"train {name} (seed {recipe.seed}): {arch.to_string()}", flush=True)
    train(arch, subset, recipe, run_dir, resume=resumable(run_dir))
    return read_json(run_dir / "result.json", "training result")


def measured_latency(archs: Mapping[str, ArchSpec], table: LatencyTable | None,
                     budget: DnasSettings, work: Path, cache_name: str) -> dict[str, Any]:
    """End-to-end latency of each network with the LUT's engine (``lut_build``: ONNX Runtime,
    1 thread, batch 1) in ``benchmark.latency_processes`` worker processes of
    ``benchmark.latency_sessions`` sessions (:func:`hwnas.cost.lutbuild.measure_networks`, the
    table's calibration networks as references), cached in ``work/<cache_name>`` (reused when
    it holds every name; caches
    that record the networks must hold these ones). ``table``: the LUT the networks were
    searched with, which must have been measured on this machine (None: no LUT)."""
    path = work / cache_name
    if path.exists():
        cached = read_json(path, "latency cache")
        if set(cached["ms"]) >= set(archs):
            stored = cached.get("archs", {})
            for name, arch in archs.items():
                if name in stored and stored[name] != arch.to_string():
                    raise HwnasError(f"{path} timed another {name} network: move it away")
            return cached
    if table is not None:
        check_same_machine(table, "the networks")
    engine = engine_of(budget.lut_build)
    references = [] if table is None else [ArchSpec.from_string(arch)
                                           for arch in table.build.references]
    monitor = Monitor("the networks' timing", lambda message: print(message, flush=True))
    times = measure_networks(list(archs.values()), engine, budget.benchmark.timing,
                             budget.benchmark.plan, monitor=monitor, references=references)
    data = {"engine": engine.metadata(), "timing": budget.benchmark.timing.to_dict(),
            "plan": dataclasses.asdict(budget.benchmark.plan),
            "ms": {name: times.latency_ms(arch) for name, arch in archs.items()},
            "spread_pct": {name: times.together.spread_pct[arch.to_string()]
                           for name, arch in archs.items()},
            "archs": {name: arch.to_string() for name, arch in archs.items()},
            "conditions": monitor.summary()}
    atomic_write_json(path, data)
    return data


# ---- comparisons with MobileNetV2 ----------------------------------------------------------

def mobilenet_name(width: float) -> str:
    """The name of a MobileNetV2 baseline's training and latency (``mobilenet_v2_cifar-0.5``)."""
    return f"mobilenet_v2_cifar-{width}"


def trained_mobilenets(data: CifarArrays, budget: DnasSettings, work: Path
                       ) -> tuple[dict[str, ArchSpec], dict[str, float]]:
    """MobileNetV2 (CIFAR stem) at each of the preset's ``mobilenet_widths``, by
    :func:`mobilenet_name`, and their top-1 trained with :func:`train_network`."""
    archs = {mobilenet_name(width): mobilenet_v2_cifar(width_multiplier=width)
             for width in budget.benchmark.mobilenet_widths}
    accuracy = {name: train_network(name, arch, data, budget, work)["final_top1"]
                for name, arch in archs.items()}
    return archs, accuracy


def interpolate_baseline(baseline: Sequence[Mapping[str, Any]], latency_ms: float,
                         top1: float) -> dict[str, Any]:
    """MobileNetV2's accuracy at the searched latency and its latency at the searched accuracy,
    by linear interpolation along the width family (sorted by latency; None outside it)."""
    ordered = sorted(baseline, key=lambda row: row["latency_ms"])
    latencies = np.array([row["latency_ms"] for row in ordered])
    accuracies = np.array([row["top1"] for row in ordered])
    inside = latencies[0] <= latency_ms <= latencies[-1]
    accuracy_at_latency = float(np.interp(latency_ms, latencies, accuracies)) if inside else None
    best_so_far = np.maximum.accumulate(accuracies)
    reaching = np.flatnonzero(best_so_far >= top1)
    latency_at_accuracy = float(latencies[reaching[0]]) if len(reaching) else None
    return {
        "mobilenet_v2_top1_at_searched_latency": accuracy_at_latency,
        "accuracy_gain_points": None if accuracy_at_latency is None
        else top1 - accuracy_at_latency,
        "mobilenet_v2_latency_reaching_searched_top1": latency_at_accuracy,
        "speedup_at_equal_accuracy": None if latency_at_accuracy is None
        else latency_at_accuracy / latency_ms,
    }


def random_at_target(table: CostModel, target: float, budget: DnasSettings) -> ArchSpec:
    """The control without search: the first uniformly random network of the space (fixed
    layers kept, drawn layer by layer from the preset's seed) whose predicted cost is within
    [0.95 T, T]. What the search adds is the difference to it."""
    space = budget.space
    fixed = fixed_choices(budget)
    lower = TARGET_BAND * target
    rng = np.random.default_rng(budget.dnas.seed)
    while True:
        choices = [fixed[layer] if layer in fixed else int(rng.integers(space.num_candidates))
                   for layer in range(space.num_layers)]
        arch = space.to_arch(choices)
        if lower <= table.cost(arch) <= target:
            return arch


def plot_against_baseline(points: Sequence[tuple[str, Mapping[str, Any]]],
                          baseline: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Top-1 against measured latency: the MobileNetV2 width family as a line, each searched
    network (label, row with ``latency_ms`` and ``top1``) as a marker; written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwnas.io import atomic_write_bytes

    figure, axes = plt.subplots(figsize=(5.5, 4))
    widths = "/".join(str(row["width"]) for row in baseline)
    axes.plot([row["latency_ms"] for row in baseline], [row["top1"] for row in baseline], "o-",
              label=f"MobileNetV2 (CIFAR strides), widths {widths}")
    for index, (label, row) in enumerate(points):
        axes.scatter([row["latency_ms"]], [row["top1"]], marker="*D^"[index % 3],
                     s=160 if index == 0 else 60, color=f"C{index + 3}", label=label, zorder=3)
    axes.set_xlabel("latency, ms (ONNX Runtime, 1 thread, batch 1, this CPU)")
    axes.set_ylabel("CIFAR-10 top-1, % (identical short recipe)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def add_fidelity_inputs(parser: argparse.ArgumentParser) -> None:
    """``--validation`` and ``--lut``: the ort-1t outputs of ``lut_fidelity`` that offline
    analyses (``key_correction``, ``benchmarks.speed.ort_context``) read."""
    parser.add_argument("--validation", type=Path,
                        default=Path("benchmarks/results/lut_fidelity/ort-1t/result.json"))
    parser.add_argument("--lut", type=Path, default=WORK / "lut_fidelity" / "ort-1t-lut.json")


def read_fidelity_inputs(parser: argparse.ArgumentParser, arguments: argparse.Namespace
                         ) -> tuple[list[dict[str, Any]], LatencyTable]:
    """The validation's networks and the table, or one parser error naming what is missing."""
    for path in (arguments.validation, arguments.lut):
        if not path.exists():
            parser.error(f"{path} does not exist: run python -m benchmarks.experiments."
                         "lut_fidelity --engines ort-1t first")
    return read_json(arguments.validation)["networks"], LatencyTable.load(arguments.lut)
