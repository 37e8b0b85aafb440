"""The differentiable-search engine (FBNet, Wu et al. 2019, section 3), for any search problem.

Each epoch ``e`` (temperature ``tau_e = tau_0 * decay ** e``):

1. train the supernet weights on the weight batches (the paper's 80 % split) with SGD + momentum
   (gradient norm clipped at ``weight_grad_clip``), learning rate
   ``weight_lr * (1 + cos(pi * e / epochs)) / 2`` (cosine over epochs);
2. from epoch ``warmup_epochs`` on, train theta on the theta batches (the 20 % split) with Adam
   on ``CE * alpha * log(1 + LAT) ** beta`` (or a target form, :mod:`hwnas.dnas.loss`), by the
   Gumbel straight-through gradient or REINFORCE (:mod:`hwnas.dnas.steps`).

What differs from the paper: the weights are trained on plain CE. The paper minimises the same
loss over w and a, but the latency factor has no gradient in w and only rescales the weight step
by a draw-dependent ~0.2-0.4, which would make ``weight_lr`` mean something different from the
training loop's learning rate; ProxylessNAS and TuNAS also train weights on CE alone. In both
phases LAT is computed with the weights the forward pass used, so the loss is that of the
network that ran.

The *problem* (:class:`SearchProblem`: FBNet's layer-wise candidates in
:mod:`hwnas.dnas.layerwise`, FBNetV2's masks in :mod:`hwnas.dnas.masked`) supplies the
supernet, LAT as a differentiable function of the mixing weights, what each epoch records and
the derivation; the engine owns the loop, the optimisers, the checkpoints and the run folder
(:mod:`hwnas.runs`): ``config.json``, ``history.jsonl`` (one line per epoch), ``theta.json``
(P_theta after every epoch), ``checkpoint.pt``, ``result.json`` and two plots.

Reproducibility: the Gumbel noise comes from a ``torch.Generator`` seeded with ``seed``; weights
are initialised under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (the caller's
global RNG is left untouched). A checkpoint (:mod:`hwnas.dnas.checkpoint`) is written after every
epoch and every ``checkpoint_every`` steps; a resumed search reaches the same theta and
architecture as an uninterrupted one, provided each epoch's batches come in the same order when
re-iterated (a list, or a callable ``epoch -> iterable`` such as
:class:`hwnas.data.batches.BatchIterator`).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch

from hwnas import settings
from hwnas.compute import torch_threads
from hwnas.cost.base import CostModel
from hwnas.dnas.checkpoint import THETA, WEIGHTS, SearchState, load_checkpoint, save_checkpoint
from hwnas.dnas.config import SearchSettings
from hwnas.dnas.loss import LossSettings
from hwnas.dnas.result import DerivedArchitecture, SearchResult
from hwnas.dnas.steps import (
    Batches, batch_to_device, iterate_batches, reinforce_theta_step, theta_step, weight_step,
)
from hwnas.dnas.temperature import temperature_at
from hwnas.errors import HwnasError
from hwnas.runs import RunFolder, first_difference, open_run

logger = logging.getLogger(__name__)

PHASE_NAMES = {WEIGHTS: "weights", THETA: "theta"}


@dataclass(frozen=True)
class SearchProgress:
    """Passed to the ``progress`` callback after every optimisation step."""

    epoch: int  # 0-based
    epochs: int
    phase: str  # "weights" or "theta"
    step: int  # batches done in this phase of this epoch
    global_step: int
    loss: float


@dataclass(frozen=True)
class Derivation:
    """What a problem derives from the final ``P_theta``."""

    argmax: DerivedArchitecture
    samples: tuple[DerivedArchitecture, ...]
    within_target: DerivedArchitecture | None


class SearchProblem(Protocol):
    """What a differentiable search needs beyond the engine (module docstring)."""

    command: str  # the run folder's command: "dnas", "dmasking"
    space: Any
    config: SearchSettings
    cost_name: str
    cost_unit: str
    candidates: tuple[str, ...]  # SearchResult.candidates

    def build_supernet(self, resuming: bool) -> torch.nn.Module: ...

    def latency(self, weights: torch.Tensor) -> torch.Tensor: ...

    def expected_cost(self, probabilities: np.ndarray) -> float: ...

    def record(self, probabilities: np.ndarray) -> dict[str, Any]: ...

    def derive(self, probabilities: np.ndarray) -> Derivation: ...

    def describe(self) -> dict[str, Any]: ...


def check_inputs(space: Any, space_type: type, kind: str, cost_model: Any,
                 config: SearchSettings) -> None:
    """A problem's preconditions: its kind of space, a cost model, a runnable config."""
    if not isinstance(space, space_type):
        raise HwnasError(f"this search takes a {kind} space, not {space!r:.80}")
    if not isinstance(cost_model, CostModel):
        raise HwnasError(f"cost_model must be a CostModel, got {cost_model!r:.80}")
    config.check_runnable()


def search_difference(config_type: type, saved: dict[str, Any], current: dict[str, Any]
                      ) -> str | None:
    """A resume's check: the space and the cost model, then the search settings
    (:func:`hwnas.settings.resume_difference`)."""
    return first_difference({**saved, "search": None}, {**current, "search": None}) or \
        settings.resume_difference(config_type, saved.get("search"), current["search"], "search")


def run_search(problem: SearchProblem, weight_batches: Batches, theta_batches: Batches, *,
               run_dir: str | Path, resume: bool = False,
               progress: Callable[[SearchProgress], None] | None = None,
               plots: bool = True) -> SearchResult:
    """Search ``problem`` and write the run folder ``run_dir`` (module docstring); returns the
    :class:`SearchResult` also saved as ``result.json``. ``progress`` is called after every
    step; ``plots=False`` skips the two PNGs."""
    config = problem.config
    resolved = {"search": settings.to_dict(config), **problem.describe()}
    folder = open_run(run_dir, command=problem.command, config=resolved, resume=resume,
                      compare=lambda saved, current: search_difference(type(config), saved,
                                                                       current))
    device = torch.device(config.device)
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch_threads(config.threads), torch.random.fork_rng(devices=devices):
            torch.manual_seed(config.seed)
            resuming = resume and folder.checkpoint_path.exists()
            loop = SearchLoop(problem, folder, progress, resuming)
            if resuming:
                loop.restore()
            loop.run(weight_batches, theta_batches)
            return loop.finish(plots)
    finally:
        folder.close()


def _half(source: Batches) -> int | None:
    """Half the number of batches of ``source`` (the default checkpoint interval: twice per
    weight phase), None when it has no length."""
    try:
        return max(1, len(source) // 2)
    except TypeError:
        return None


class SearchLoop:
    """The state of one run: supernet, optimisers, Gumbel generator and position, and the epoch
    loop (:func:`run_search` drives it)."""

    def __init__(self, problem: SearchProblem, folder: RunFolder,
                 progress: Callable[[SearchProgress], None] | None, resuming: bool) -> None:
        self.problem, self.config, self.folder = problem, problem.config, folder
        self.progress = progress
        self.device = torch.device(self.config.device)
        self.supernet = problem.build_supernet(resuming).to(self.device,
                                                            memory_format=torch.channels_last)
        self.weight_optimizer = torch.optim.SGD(
            self.supernet.weight_parameters(), lr=self.config.weight_lr,
            momentum=self.config.momentum, weight_decay=self.config.weight_decay)
        self.theta_optimizer = torch.optim.Adam(
            [self.supernet.theta], lr=self.config.theta_lr,
            weight_decay=self.config.theta_weight_decay)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.loss = LossSettings(self.config.alpha, self.config.beta,
                                 self.config.target_latency, self.config.target_form)
        self.state = SearchState()

    def restore(self) -> None:
        self.state = load_checkpoint(self.folder.checkpoint_path, self.supernet,
                                     self.weight_optimizer, self.theta_optimizer, self.generator)
        logger.info("resuming %s at epoch %d, %s step %d", self.folder.root, self.state.epoch,
                    PHASE_NAMES[self.state.phase], self.state.step)
        self.folder.rewrite_history(self.state.records)
        self._write_theta()

    def run(self, weight_batches: Batches, theta_batches: Batches) -> None:
        every = self.config.checkpoint_every or _half(weight_batches)
        while self.state.epoch < self.config.epochs:
            epoch, started = self.state.epoch, time.perf_counter()
            temperature = self._temperature(epoch)
            for group in self.weight_optimizer.param_groups:
                group["lr"] = self._weight_lr(epoch)
            self.supernet.train()
            if self.state.phase == WEIGHTS:
                self._phase(WEIGHTS, weight_batches, temperature, every)
                self.state.phase, self.state.step = THETA, 0
            if epoch >= self.config.warmup_epochs:
                self._phase(THETA, theta_batches, temperature, every)
            self.state.finish_epoch(self._record(epoch, started), self.supernet.theta)
            self._save()
            self.folder.append_history(self.state.records[-1:])
            self._write_theta()
            record = self.state.records[-1]
            logger.info("epoch %d/%d: tau %.3f, weight CE %.4f, theta loss %s, E[cost] %.4g",
                        epoch + 1, self.config.epochs, record["temperature"],
                        record["weight_ce"], record["theta_loss"], record["expected_cost"])

    def _phase(self, phase: int, source: Batches, temperature: float, every: int | None) -> None:
        state = self.state
        batches = iterate_batches(source, state.epoch, PHASE_NAMES[phase])
        # On resume, skip the batches this phase already used (the order must be the same).
        for batch in islice(batches, state.step, None):
            images, labels = batch_to_device(batch, self.device)
            loss = self._step(phase, images, labels, temperature)
            state.step += 1
            state.global_step += 1
            if every and state.global_step % every == 0:
                self._save()
            if self.progress is not None:
                self.progress(SearchProgress(state.epoch, self.config.epochs,
                                             PHASE_NAMES[phase], state.step, state.global_step,
                                             loss))
        if state.step == 0:
            raise HwnasError(
                f"the {PHASE_NAMES[phase]} batches yielded no batch in epoch {state.epoch}; pass "
                "a re-iterable collection (list) or a callable epoch -> batches")

    def _step(self, phase: int, images: torch.Tensor, labels: torch.Tensor,
              temperature: float) -> float:
        """One step of ``phase``; adds its numbers to the epoch sums and returns its loss."""
        config, state = self.config, self.state
        if phase == WEIGHTS:
            loss, correct = weight_step(
                self.supernet, self.weight_optimizer, images, labels, temperature=temperature,
                generator=self.generator, mode=config.mode,
                grad_clip_norm=config.weight_grad_clip)
            state.add("weight_ce", loss * len(labels))
            state.add("weight_correct", correct)
            state.add("weight_images", len(labels))
            return loss
        if config.theta_estimator == "reinforce":
            loss, cross_entropy, latency = reinforce_theta_step(
                self.supernet, self.theta_optimizer, images, labels,
                paths=config.paths_per_batch, generator=self.generator,
                latency=self.problem.latency, loss=self.loss)
        else:
            loss, cross_entropy, latency = theta_step(
                self.supernet, self.theta_optimizer, images, labels, temperature=temperature,
                generator=self.generator, mode=config.mode, latency=self.problem.latency,
                loss=self.loss)
        for name, value in (("loss", loss), ("ce", cross_entropy), ("lat", latency)):
            state.add(f"theta_{name}", value)
        state.add("theta_steps", 1)
        return loss

    def _probabilities(self) -> np.ndarray:
        return self.supernet.probabilities().cpu().double().numpy()

    def _record(self, epoch: int, started: float) -> dict[str, Any]:
        sums = self.state.sums
        probabilities = self._probabilities()
        theta_steps = sums.get("theta_steps", 0.0)

        def theta_mean(name: str) -> float | None:
            return sums[name] / theta_steps if theta_steps else None

        return {
            "epoch": epoch, "temperature": self._temperature(epoch),
            "weight_lr": self._weight_lr(epoch),
            "weight_ce": sums["weight_ce"] / sums["weight_images"],
            "weight_accuracy": sums["weight_correct"] / sums["weight_images"],
            "theta_loss": theta_mean("theta_loss"), "theta_ce": theta_mean("theta_ce"),
            "theta_latency": theta_mean("theta_lat"),
            "expected_cost": self.problem.expected_cost(probabilities),
            **self.problem.record(probabilities),
            "probabilities": probabilities.tolist(),
            "seconds": time.perf_counter() - started,
        }

    def _write_theta(self) -> None:
        """``theta.json``: P_theta [decision][option] after every finished epoch."""
        decisions = self.problem.space.decisions
        self.folder.write_json("theta.json", {
            "space": self.problem.space.name, "decisions": list(decisions.names),
            "options": [[str(option) for option in options] for options in decisions.options],
            "probabilities": [row["probabilities"] for row in self.state.records]})

    def _save(self) -> None:
        save_checkpoint(self.folder.checkpoint_path, self.state, self.supernet,
                        self.weight_optimizer, self.theta_optimizer, self.generator)

    def _temperature(self, epoch: int) -> float:
        return temperature_at(epoch, initial_temperature=self.config.initial_temperature,
                              temperature_decay=self.config.temperature_decay)

    def _weight_lr(self, epoch: int) -> float:
        return self.config.weight_lr * 0.5 * (1 + math.cos(math.pi * epoch / self.config.epochs))

    def finish(self, plots: bool) -> SearchResult:
        """Derive the architectures, save result.json and the plots."""
        probabilities = self._probabilities()
        derived = self.problem.derive(probabilities)
        config = self.config
        result = SearchResult(
            space=self.problem.space.name, candidates=self.problem.candidates,
            cost_name=self.problem.cost_name, cost_unit=self.problem.cost_unit,
            epochs=config.epochs, seed=config.seed, target_latency=config.target_latency,
            final_temperature=self._temperature(config.epochs - 1),
            expected_cost=self.problem.expected_cost(probabilities), argmax=derived.argmax,
            samples=derived.samples,
            probabilities=tuple(tuple(float(p) for p in row) for row in probabilities),
            within_target=derived.within_target)
        self.folder.write_result(result.to_dict())
        if plots and self.state.records:
            self._write_plots()
        return result

    def _write_plots(self) -> None:
        from hwnas.report.dnas_plots import save_probability_evolution, save_theta_heatmap

        history = np.asarray([row["probabilities"] for row in self.state.records], dtype=float)
        options = self.problem.space.decisions.options
        labels = ([str(option) for option in options[0]] if len(set(options)) == 1
                  else [f"option {index}" for index in range(history.shape[2])])
        name = self.problem.space.name
        save_theta_heatmap(history[-1], labels, self.folder.path("theta_final.png"),
                           title=f"{name}: P_theta after epoch {len(history)}")
        save_probability_evolution(history, labels, self.folder.path("theta_epochs.png"),
                                   title=f"{name}: probability of the final argmax")
