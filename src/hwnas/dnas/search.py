"""``run_dnas``: the FBNet differentiable architecture search loop (Wu et al. 2019, section 3).

Each epoch ``e`` (temperature ``tau_e = 5.0 * exp(-0.045) ** e``):

1. train the supernet weights on the weight batches (the paper's 80 % split) with SGD + momentum
   (gradient norm clipped at ``weight_grad_clip``, 5 by default: without it a sampled supernet
   at lr 0.05 diverged here, CE 3.1 -> 3.8 over two epochs on 1,600 CIFAR-10 images),
   learning rate ``weight_lr * (1 + cos(pi * e / epochs)) / 2`` (cosine over epochs);
2. from epoch ``warmup_epochs`` on, train theta on the theta batches (the 20 % split) with Adam
   on ``CE * alpha * log(1 + LAT) ** beta`` (or the budget form, :mod:`hwnas.dnas.loss`).

What differs from the paper: the weights are trained on plain CE. The paper minimises the same
loss L over w and a, but the latency factor has no gradient in w and only rescales the weight
step by a draw-dependent ~0.2-0.4, which would make ``weight_lr`` mean something different from
the training loop's learning rate; ProxylessNAS and TuNAS also train weights on CE alone.
In both phases LAT is computed with the weights the forward pass used (soft ``m``, or the
straight-through one-hot in ``sampled`` mode), so the loss is that of the network that ran.

**Transition layers.** In a layer that changes the width or the stride there is no identity
path: each candidate writes its output in channel coordinates of its own, and the layers after
it see a different representation at every step. Measured here (fbnet-cifar, batch 64, SGD
lr 0.025, steps 45-60): a child network reached CE 1.98, the supernet sampling only its 16
same-shape layers 2.01, and the supernet sampling every layer stayed at chance (2.41; 2.39 at
lr 0.01, worse at 0.05 and 0.1 and with Adam). Its theta then follows noise and collapses to
parameter-free paths. ``fixed_layers={l: "k3_e6" for l in space.transition_layers}`` searches
the other layers only, which a CPU-minutes budget can train; on a large budget the whole
space can be searched as in the paper.

Reproducibility: the Gumbel noise comes from a ``torch.Generator`` seeded with ``seed``; weights
are initialised under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (the caller's
global RNG is left untouched). A checkpoint (:mod:`hwnas.dnas.checkpoint`) is written after every
epoch and every ``checkpoint_every`` steps; ``resume=True`` continues from it and reaches the same
theta and architecture as an uninterrupted run, provided each epoch's batches come in the same
order when re-iterated: a list, an iterable with ``set_epoch(epoch)`` whose shuffling is seeded
by the epoch (``hwnas.data.batches.BatchIterator``), or a callable ``epoch -> iterable``. A loader
shuffled by the global RNG gives the same result only when resumed at an epoch boundary.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from hwnas.cost.base import CostModel, LayerCostMatrix
from hwnas.dnas.checkpoint import (
    THETA,
    WEIGHTS,
    SearchState,
    load_checkpoint,
    load_supernet_weights,
    save_checkpoint,
)
from hwnas.dnas.config import DnasConfig, run_config
from hwnas.dnas.loss import cost_matrix_tensor
from hwnas.dnas.result import (
    DerivedArchitecture,
    SearchResult,
    derive_argmax,
    derive_samples,
    derive_within_target,
    lower_bound,
)
from hwnas.dnas.rundir import RunFiles
from hwnas.dnas.steps import (
    Batches,
    batch_to_device,
    iterate_batches,
    reinforce_theta_step,
    theta_step,
    weight_step,
)
from hwnas.dnas.supernet import SuperNet
from hwnas.dnas.temperature import TEMPERATURE_DECAY, temperature_at
from hwnas.errors import HwnasError
from hwnas.spaces.fbnet import LayerwiseSpace

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


def run_dnas(
    space: LayerwiseSpace,
    cost_model: CostModel,
    weight_batches: Batches,
    theta_batches: Batches,
    *,
    epochs: int,
    warmup_epochs: int = 0,
    weight_lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    weight_grad_clip: float | None = 5.0,
    theta_lr: float = 0.01,
    theta_weight_decay: float = 5e-4,
    initial_temperature: float = 5.0,
    temperature_decay: float = TEMPERATURE_DECAY,
    alpha: float = 0.2,
    beta: float = 0.6,
    target_latency: float | None = None,
    target_form: str = "budget",
    warm_start: str | Path | None = None,
    fixed_layers: Mapping[int, str] | None = None,
    theta_estimator: str = "gumbel",
    paths_per_batch: int = 4,
    weight_sharing: str = "independent",
    residual_scale: float = 0.0,
    mode: str = "sampled",
    seed: int = 0,
    run_dir: str | Path,
    resume: bool = False,
    checkpoint_every: int | None = None,
    num_samples: int = 10,
    device: str = "cpu",
    progress: Callable[[SearchProgress], None] | None = None,
    plots: bool = True,
) -> SearchResult:
    """Search ``space`` for ``epochs`` epochs and write the run directory (module docstring).

    ``target_latency`` switches the loss to a target form (``target_form`` "budget": one-sided,
    or "absolute": two-sided, :mod:`hwnas.dnas.loss`). ``warm_start`` is the checkpoint of
    another search of the same space whose supernet weights this one starts from (theta starts
    uniform), e.g. a weights-only run (``warmup_epochs == epochs``) shared by several devices.
    ``theta_estimator="reinforce"`` replaces the Gumbel gradient of theta by a score-function
    one over ``paths_per_batch`` paths per theta batch (:func:`~hwnas.dnas.steps.
    reinforce_theta_step`). ``weight_sharing="nested"`` cuts each layer's candidates from one
    shared block (:mod:`hwnas.dnas.nested`) instead of FBNet's independent ones;
    ``residual_scale`` is the initial last-BN scale of the residual candidates (0: each starts
    as the identity; :class:`~hwnas.dnas.supernet.SuperNet`).
    ``fixed_layers`` ``{layer: candidate name}`` takes layers out of the search (their one
    candidate always runs), e.g. ``space.transition_layers`` (module docstring).

    ``weight_batches``/``theta_batches`` are re-iterable collections of ``(images, labels)``
    batches, or callables ``epoch -> iterable``. ``progress`` is called after every step (a
    rich progress bar in the CLI); ``plots=False`` skips the two PNGs. Returns the
    :class:`SearchResult` also saved as ``run_dir/result.json``. Raises :class:`HwnasError` on
    any bad argument.
    """
    config = DnasConfig(
        epochs=epochs, warmup_epochs=warmup_epochs, weight_lr=weight_lr, momentum=momentum,
        weight_decay=weight_decay, weight_grad_clip=weight_grad_clip, theta_lr=theta_lr,
        theta_weight_decay=theta_weight_decay,
        initial_temperature=initial_temperature, temperature_decay=temperature_decay,
        alpha=alpha, beta=beta, target_latency=target_latency, target_form=target_form,
        mode=mode, seed=seed, checkpoint_every=checkpoint_every, num_samples=num_samples,
        device=device, warm_start=None if warm_start is None else str(warm_start),
        fixed_layers=tuple(sorted((fixed_layers or {}).items())),
        theta_estimator=theta_estimator, paths_per_batch=paths_per_batch,
        weight_sharing=weight_sharing, residual_scale=residual_scale,
    )
    if not isinstance(space, LayerwiseSpace):
        raise HwnasError(f"space must be a LayerwiseSpace, got {type(space).__name__}")
    fixed = fixed_choices(space, config.fixed_layers)
    if not isinstance(cost_model, CostModel):
        raise HwnasError(f"cost_model must be a CostModel, got {type(cost_model).__name__}")
    costs = cost_model.layer_cost_matrix(space)
    if np.shape(costs.matrix) != (space.num_layers, space.num_candidates):
        raise HwnasError(
            f"cost model {cost_model.name!r} gave a layer cost matrix of shape "
            f"{np.shape(costs.matrix)}, the space needs {(space.num_layers, space.num_candidates)}"
        )
    files = RunFiles(Path(run_dir))
    files.prepare(run_config(config, space, cost_model, costs), resume=resume)
    devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        search = SearchLoop(space, config, costs, files, progress)
        search.supernet.fix_layers(fixed)
        if resume and files.checkpoint.exists():
            search.restore()
        elif config.warm_start is not None:
            load_supernet_weights(config.warm_start, search.supernet)
        search.run(weight_batches, theta_batches)
        return search.finish(cost_model, plots=plots)


def fixed_choices(space: LayerwiseSpace, fixed_layers: tuple[tuple[int, str], ...]
                  ) -> dict[int, int]:
    """``{layer: candidate index}`` of ``run_dnas(fixed_layers=...)``."""
    return {layer: fixed_index(space.name, space.num_layers, layer, name,
                               lambda _: space.candidates)
            for layer, name in fixed_layers}


def fixed_index(space_name: str, num_layers: int, layer: Any, name: str,
                candidates_of: Callable[[int], Sequence[str]]) -> int:
    """The index of candidate ``name`` among ``candidates_of(layer)``; raises naming a layer
    outside the space or a candidate the layer does not have."""
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < num_layers:
        raise HwnasError(f"fixed layer {layer!r} is not a layer of {space_name!r} "
                         f"(0..{num_layers - 1})")
    candidates = tuple(candidates_of(layer))
    if name not in candidates:
        raise HwnasError(f"fixed layer {layer}: unknown candidate {name!r} "
                         f"(the layer has {', '.join(candidates)})")
    return candidates.index(name)


class SearchLoop:
    """The state of one run: supernet, optimisers, Gumbel generator and position, and the
    epoch loop. :func:`run_dnas` drives it; the masked search (``hwnas.dnas.dmasking_search``)
    reuses it by overriding ``_build_supernet``, ``_prepare_costs``, ``_step``, ``_record`` and
    ``finish``, and its within-target derivation (``derive_within``: a function of
    ``(space, probabilities, costs, target, cost_model, lower=)``)."""

    derive_within = staticmethod(derive_within_target)

    def __init__(
        self,
        space: LayerwiseSpace,
        config: DnasConfig,
        costs: LayerCostMatrix,
        files: RunFiles,
        progress: Callable[[SearchProgress], None] | None,
    ) -> None:
        self.space, self.config, self.costs, self.files = space, config, costs, files
        self.progress = progress
        self.device = torch.device(config.device)
        self.supernet = self._build_supernet().to(self.device, memory_format=torch.channels_last)
        self.weight_optimizer = torch.optim.SGD(
            self.supernet.weight_parameters(), lr=config.weight_lr,
            momentum=config.momentum, weight_decay=config.weight_decay,
        )
        self.theta_optimizer = torch.optim.Adam(
            [self.supernet.theta], lr=config.theta_lr, weight_decay=config.theta_weight_decay
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self._prepare_costs()
        self.state = SearchState()

    def _build_supernet(self) -> torch.nn.Module:
        """The supernet of ``self.space`` (a subclass searching another kind of space swaps it)."""
        return SuperNet(self.space, self.config.weight_sharing, self.config.residual_scale)

    def _prepare_costs(self) -> None:
        """Put the layer cost matrix on the device once, for every theta step."""
        self.matrix = cost_matrix_tensor(self.costs, device=self.device)

    def restore(self) -> None:
        self.state = load_checkpoint(
            self.files.checkpoint, self.supernet, self.weight_optimizer,
            self.theta_optimizer, self.generator,
        )
        logger.info(
            "resuming %s at epoch %d, %s step %d", self.files.root, self.state.epoch,
            PHASE_NAMES[self.state.phase], self.state.step,
        )
        self.files.write_history(self.state.records, self.space)

    def run(self, weight_batches: Batches, theta_batches: Batches) -> None:
        while self.state.epoch < self.config.epochs:
            epoch = self.state.epoch
            started = time.perf_counter()
            temperature = self._temperature(epoch)
            for group in self.weight_optimizer.param_groups:
                group["lr"] = self._weight_lr(epoch)
            self.supernet.train()
            if self.state.phase == WEIGHTS:
                self._phase(WEIGHTS, weight_batches, temperature)
                self.state.phase, self.state.step = THETA, 0
            if epoch >= self.config.warmup_epochs:
                self._phase(THETA, theta_batches, temperature)
            self.state.finish_epoch(self._record(epoch, started), self.supernet.theta)
            self._save()
            self.files.write_history(self.state.records, self.space)
            record = self.state.records[-1]
            logger.info(
                "epoch %d/%d: tau %.3f, weight CE %.4f, theta loss %s, E[cost] %.4g, argmax %s",
                epoch + 1, self.config.epochs, record["temperature"], record["weight_ce"],
                record["theta_loss"], record["expected_cost"], record["argmax"],
            )

    def _phase(self, phase: int, source: Batches, temperature: float) -> None:
        state = self.state
        batches = iterate_batches(source, state.epoch, PHASE_NAMES[phase])
        # On resume, skip the batches this phase already used (the order must be the same).
        for batch in islice(batches, state.step, None):
            images, labels = batch_to_device(batch, self.device)
            loss = self._step(phase, images, labels, temperature)
            state.step += 1
            state.global_step += 1
            every = self.config.checkpoint_every
            if every and state.global_step % every == 0:
                self._save()
            if self.progress is not None:
                self.progress(SearchProgress(
                    state.epoch, self.config.epochs, PHASE_NAMES[phase], state.step,
                    state.global_step, loss,
                ))
        if state.step == 0:
            raise HwnasError(
                f"the {PHASE_NAMES[phase]} batches yielded no batch in epoch {state.epoch}; pass "
                "a re-iterable collection (list, DataLoader) or a callable epoch -> batches"
            )

    def _step(
        self, phase: int, images: torch.Tensor, labels: torch.Tensor, temperature: float
    ) -> float:
        """One step of ``phase``; adds its numbers to the epoch sums and returns its loss."""
        config, state = self.config, self.state
        if phase == WEIGHTS:
            loss, correct = weight_step(
                self.supernet, self.weight_optimizer, images, labels,
                temperature=temperature, generator=self.generator, mode=config.mode,
                grad_clip_norm=config.weight_grad_clip,
            )
            state.add("weight_ce", loss * len(labels))
            state.add("weight_correct", correct)
            state.add("weight_images", len(labels))
            return loss
        if config.theta_estimator == "reinforce":
            loss, cross_entropy, latency = reinforce_theta_step(
                self.supernet, self.theta_optimizer, images, labels,
                paths=config.paths_per_batch, generator=self.generator, matrix=self.matrix,
                constant=float(self.costs.constant), alpha=config.alpha, beta=config.beta,
                target=config.target_latency, target_form=config.target_form,
            )
        else:
            loss, cross_entropy, latency = theta_step(
                self.supernet, self.theta_optimizer, images, labels,
                temperature=temperature, generator=self.generator, mode=config.mode,
                matrix=self.matrix, constant=float(self.costs.constant),
                alpha=config.alpha, beta=config.beta, target=config.target_latency,
                target_form=config.target_form,
            )
        for name, value in (("loss", loss), ("ce", cross_entropy), ("lat", latency)):
            state.add(f"theta_{name}", value)
        state.add("theta_steps", 1)
        return loss

    def _record(self, epoch: int, started: float) -> dict[str, Any]:
        sums = self.state.sums
        probabilities = self.supernet.probabilities().cpu().numpy()
        theta_steps = sums.get("theta_steps", 0.0)

        def theta_mean(name: str) -> float | None:
            return sums[name] / theta_steps if theta_steps else None

        return {
            "epoch": epoch,
            "temperature": self._temperature(epoch),
            "weight_lr": self._weight_lr(epoch),
            "weight_ce": sums["weight_ce"] / sums["weight_images"],
            "weight_accuracy": sums["weight_correct"] / sums["weight_images"],
            "theta_loss": theta_mean("theta_loss"),
            "theta_ce": theta_mean("theta_ce"),
            "theta_latency": theta_mean("theta_lat"),
            "expected_cost": float(self.costs.expected(probabilities)),
            "argmax_cost": self.costs.total(probabilities.argmax(axis=1)),
            "argmax": [int(index) for index in probabilities.argmax(axis=1)],
            "probabilities": probabilities.tolist(),
            "seconds": time.perf_counter() - started,
        }

    def _save(self) -> None:
        save_checkpoint(
            self.files.checkpoint, self.state, self.supernet,
            self.weight_optimizer, self.theta_optimizer, self.generator,
        )

    def _temperature(self, epoch: int) -> float:
        return temperature_at(
            epoch, initial_temperature=self.config.initial_temperature,
            temperature_decay=self.config.temperature_decay,
        )

    def _weight_lr(self, epoch: int) -> float:
        return self.config.weight_lr * 0.5 * (1 + math.cos(math.pi * epoch / self.config.epochs))

    def _derive_within_target(self, probabilities: np.ndarray, cost_model: CostModel
                              ) -> DerivedArchitecture | None:
        """The most probable network within the target: cost <= T, and >= 0.95 T for the
        two-sided form; None without a target."""
        target = self.config.target_latency
        if target is None:
            return None
        return self.derive_within(self.space, probabilities, self.costs, target, cost_model,
                                  lower=lower_bound(target, self.config.target_form))

    def finish(self, cost_model: CostModel, *, plots: bool) -> SearchResult:
        """Derive the argmax and sampled architectures, save result.json and the plots."""
        probabilities = self.supernet.probabilities().cpu().numpy().astype(np.float64)
        rng = np.random.default_rng([self.config.seed, 2019])  # derivation has its own stream
        result = SearchResult(
            space=self.space.name,
            candidates=tuple(self.space.candidates),
            cost_name=cost_model.name,
            cost_unit=cost_model.unit,
            epochs=self.config.epochs,
            seed=self.config.seed,
            target_latency=self.config.target_latency,
            final_temperature=self._temperature(self.config.epochs - 1),
            expected_cost=float(self.costs.expected(probabilities)),
            argmax=derive_argmax(self.space, probabilities, cost_model),
            samples=derive_samples(
                self.space, probabilities, cost_model,
                num_samples=self.config.num_samples, rng=rng,
            ),
            probabilities=tuple(tuple(float(p) for p in row) for row in probabilities),
            within_target=self._derive_within_target(probabilities, cost_model),
        )
        result.save(self.files.result)
        if plots:
            self.files.write_plots(self.state.records, self.space)
        return result
