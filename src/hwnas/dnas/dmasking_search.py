"""``run_dmasking``: the DMaskingNAS search (FBNetV2) on the FBNet DNAS loop.

Everything but the supernet and its cost is FBNet's (:mod:`hwnas.dnas.search`): per epoch,
SGD on the weights (80 % split, plain CE), then from ``warmup_epochs`` on Adam on theta (20 %
split) with ``CE * alpha * log(1 + LAT) ** beta`` (or the budget form), the same temperature
schedule, run directory, checkpoints and bit-exact resume. This module swaps in

* the masked supernet (:class:`~hwnas.dnas.masking.MaskedSuperNet`): one theta row per decision
  (resolution, stage widths, layer blocks), sampled with the same Gumbel-softmax
  (:func:`~hwnas.dnas.supernet.gumbel_softmax_sample`) from the padded logits;
* LAT = the effective-shape (or exact expected) cost of the weights the forward pass used
  (:class:`~hwnas.dnas.dmasking_cost.ShapeCostTables`), instead of FBNet's ``sum m * matrix``.

Derivation (:mod:`hwnas.dnas.dmasking_derive`): the argmax of every decision, ``num_samples``
draws from ``P_theta`` (one categorical draw per decision, de-duplicated, ranked by cost) and,
with a target, the most probable network within it (within ``[0.95 T, T]`` for the two-sided
form). The derived :class:`ArchSpec` is at the chosen resolution.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.cost.base import CostModel
from hwnas.dnas.checkpoint import WEIGHTS
from hwnas.dnas.config import DnasConfig
from hwnas.dnas.dmasking_cost import DMaskingCost, ShapeCostTables
from hwnas.dnas.dmasking_derive import derive, derive_samples, derive_within_target
from hwnas.dnas.loss import search_loss
from hwnas.dnas.masking import MaskedSuperNet
from hwnas.dnas.result import SearchResult
from hwnas.dnas.rundir import RunFiles
from hwnas.dnas.search import SearchLoop, SearchProgress, fixed_index
from hwnas.dnas.steps import Batches
from hwnas.dnas.supernet import gumbel_softmax_sample
from hwnas.dnas.temperature import TEMPERATURE_DECAY
from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, atomic_write_text
from hwnas.spaces.dmasking import DMaskingSpace


def masked_weight_step(supernet: MaskedSuperNet, optimizer: torch.optim.Optimizer,
                       images: torch.Tensor, labels: torch.Tensor, *, temperature: float,
                       generator: torch.Generator, mode: str,
                       grad_clip_norm: float | None = None) -> tuple[float, int]:
    """One SGD step of the shared weights on CE with theta fixed: (CE, correct predictions);
    ``grad_clip_norm`` clips the weights' gradient norm first, as FBNet's weight step does."""
    with torch.no_grad():
        sample = gumbel_softmax_sample(supernet.logits(), temperature, generator)
    logits = supernet.run(images, sample, mode)
    loss = F.cross_entropy(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(supernet.weight_parameters(), grad_clip_norm)
    optimizer.step()
    return loss.item(), int((logits.argmax(dim=1) == labels).sum())


def masked_theta_step(supernet: MaskedSuperNet, optimizer: torch.optim.Optimizer,
                      images: torch.Tensor, labels: torch.Tensor, *, temperature: float,
                      generator: torch.Generator, mode: str, costs: ShapeCostTables,
                      alpha: float, beta: float, target: float | None,
                      target_form: str = "budget"
                      ) -> tuple[float, float, float]:
    """One Adam step of theta on the latency-aware loss: (loss, CE, LAT)."""
    sample = gumbel_softmax_sample(supernet.logits(), temperature, generator)
    weights, indices = supernet.mixing_weights(sample, mode)
    cross_entropy = F.cross_entropy(supernet(images, weights, indices), labels)
    latency = costs.cost(weights)
    loss = search_loss(cross_entropy, latency, alpha=alpha, beta=beta, target=target,
                       target_form=target_form)
    optimizer.zero_grad(set_to_none=True)
    (gradient,) = torch.autograd.grad(loss, [supernet.theta])
    supernet.theta.grad = gradient
    optimizer.step()
    return loss.item(), cross_entropy.item(), latency.item()


def space_to_dict(space: DMaskingSpace) -> dict[str, Any]:
    return {"name": space.name, "resolutions": list(space.resolutions),
            "stem": space.stem.to_dict(), "stage_widths": [list(w) for w in space.stage_widths],
            "depths": list(space.depths), "strides": list(space.strides),
            "head": space.head.to_dict(), "decisions": list(space.decision_names),
            "options": [list(options) for options in space.options]}


class DMaskingRunFiles(RunFiles):
    """The DNAS run directory, with one row per decision instead of per layer."""

    def write_history(self, records: list[dict[str, Any]], space: Any) -> None:
        atomic_write_text(self.history, "".join(json.dumps(row) + "\n" for row in records))
        atomic_write_json(self.theta, {
            "space": space.name, "decisions": list(space.decision_names),
            "options": [[str(option) for option in options] for options in space.options],
            "probabilities": [row["probabilities"] for row in records],
        })

    def write_plots(self, records: list[dict[str, Any]], space: Any) -> None:
        from hwnas.report.dnas_plots import save_probability_evolution, save_theta_heatmap

        if not records:
            return
        history = np.asarray([row["probabilities"] for row in records], dtype=float)
        labels = [f"option {index}" for index in range(history.shape[2])]
        save_theta_heatmap(history[-1], labels, self.heatmap,
                           title=f"{space.name}: P_theta per decision, epoch {len(records)}")
        save_probability_evolution(history, labels, self.evolution,
                                   title=f"{space.name}: probability of the final argmax")


class _MaskedSearch(SearchLoop):
    """FBNet's search state and loop (:class:`hwnas.dnas.search.SearchLoop`) on the masked net."""

    derive_within = staticmethod(derive_within_target)

    def _build_supernet(self) -> torch.nn.Module:
        return MaskedSuperNet(self.space)

    def _prepare_costs(self) -> None:
        """Nothing to precompute: the effective-shape tables price the mixing weights directly."""

    def _step(self, phase: int, images: torch.Tensor, labels: torch.Tensor,
              temperature: float) -> float:
        config, state = self.config, self.state
        if phase == WEIGHTS:
            loss, correct = masked_weight_step(
                self.supernet, self.weight_optimizer, images, labels,
                temperature=temperature, generator=self.generator, mode=config.mode,
                grad_clip_norm=config.weight_grad_clip)
            state.add("weight_ce", loss * len(labels))
            state.add("weight_correct", correct)
            state.add("weight_images", len(labels))
            return loss
        loss, cross_entropy, latency = masked_theta_step(
            self.supernet, self.theta_optimizer, images, labels, temperature=temperature,
            generator=self.generator, mode=config.mode, costs=self.costs, alpha=config.alpha,
            beta=config.beta, target=config.target_latency, target_form=config.target_form)
        for name, value in (("loss", loss), ("ce", cross_entropy), ("lat", latency)):
            state.add(f"theta_{name}", value)
        state.add("theta_steps", 1)
        return loss

    def _record(self, epoch: int, started: float) -> dict[str, Any]:
        sums = self.state.sums
        probabilities = self.supernet.probabilities().cpu().double().numpy()
        theta_steps = sums.get("theta_steps", 0.0)
        argmax = self.supernet.argmax_choices()

        def theta_mean(name: str) -> float | None:
            return sums[name] / theta_steps if theta_steps else None

        return {
            "epoch": epoch, "temperature": self._temperature(epoch),
            "weight_lr": self._weight_lr(epoch),
            "weight_ce": sums["weight_ce"] / sums["weight_images"],
            "weight_accuracy": sums["weight_correct"] / sums["weight_images"],
            "theta_loss": theta_mean("theta_loss"), "theta_ce": theta_mean("theta_ce"),
            "theta_latency": theta_mean("theta_lat"),
            "expected_cost": self.costs.expected(probabilities),
            "argmax_cost": self.costs.cost_of_choices(argmax), "argmax": list(argmax),
            "argmax_arch": self.space.to_arch(argmax).to_string(),
            "probabilities": probabilities.tolist(),
            "seconds": time.perf_counter() - started,
        }

    def finish(self, cost_model: CostModel, *, plots: bool) -> SearchResult:
        probabilities = self.supernet.probabilities().cpu().double().numpy()
        rng = np.random.default_rng([self.config.seed, 2020])  # derivation has its own stream
        pricing = DMaskingCost(self.costs)
        result = SearchResult(
            space=self.space.name, candidates=tuple(self.space.decision_names),
            cost_name=self.costs.name, cost_unit=self.costs.unit, epochs=self.config.epochs,
            seed=self.config.seed, target_latency=self.config.target_latency,
            final_temperature=self._temperature(self.config.epochs - 1),
            expected_cost=self.costs.expected(probabilities),
            argmax=derive(self.space, probabilities, pricing, self.supernet.argmax_choices(), 1),
            samples=derive_samples(self.space, probabilities, pricing,
                                   num_samples=self.config.num_samples, rng=rng),
            probabilities=tuple(tuple(float(p) for p in row) for row in probabilities),
            within_target=self._derive_within_target(probabilities, pricing),
        )
        result.save(self.files.result)
        if plots:
            self.files.write_plots(self.state.records, self.space)
        return result


def fixed_decisions(space: DMaskingSpace, fixed_layers: tuple[tuple[int, str], ...]
                    ) -> dict[int, int]:
    """``{decision row: option}`` of ``run_dmasking(fixed_layers={layer: block})``."""
    return {1 + space.num_stages + layer: fixed_index(
                space.name, space.num_layers, layer, name,
                lambda index: space.layers[index].candidates)
            for layer, name in fixed_layers}


def run_dmasking(
    space: DMaskingSpace, cost_model: CostModel, weight_batches: Batches, theta_batches: Batches,
    *, epochs: int, warmup_epochs: int = 0, weight_lr: float = 0.1, momentum: float = 0.9,
    weight_decay: float = 1e-4, weight_grad_clip: float | None = 5.0, theta_lr: float = 0.01,
    theta_weight_decay: float = 5e-4,
    initial_temperature: float = 5.0, temperature_decay: float = TEMPERATURE_DECAY,
    alpha: float = 0.2, beta: float = 0.6, target_latency: float | None = None,
    target_form: str = "budget", fixed_layers: Mapping[int, str] | None = None,
    mode: str = "sampled", cost_mode: str = "effective", seed: int = 0, run_dir: str | Path,
    resume: bool = False, checkpoint_every: int | None = None, num_samples: int = 10,
    device: str = "cpu", progress: Callable[[SearchProgress], None] | None = None,
    plots: bool = True,
) -> SearchResult:
    """Search ``space`` (module docstring); arguments as :func:`hwnas.dnas.search.run_dnas`,
    plus ``cost_mode`` ("effective" or "expected", :mod:`hwnas.dnas.dmasking_cost`).
    ``cost_model``: a LUT of the space (or of its ``-sparse`` variant), ``FlopsCost`` or
    ``ParamsCost``. ``fixed_layers`` ``{layer: block}`` takes layers' block choice out of the
    search (e.g. the first layer of every stage, as ``run_dnas`` does with transition layers).
    Writes the run directory and returns the :class:`SearchResult`."""
    config = DnasConfig(
        epochs=epochs, warmup_epochs=warmup_epochs, weight_lr=weight_lr, momentum=momentum,
        weight_decay=weight_decay, weight_grad_clip=weight_grad_clip, theta_lr=theta_lr,
        theta_weight_decay=theta_weight_decay, initial_temperature=initial_temperature,
        temperature_decay=temperature_decay, alpha=alpha, beta=beta,
        target_latency=target_latency, target_form=target_form, mode=mode, seed=seed,
        fixed_layers=tuple(sorted((fixed_layers or {}).items())),
        checkpoint_every=checkpoint_every, num_samples=num_samples, device=device,
    )
    if not isinstance(space, DMaskingSpace):
        raise HwnasError(f"space must be a DMaskingSpace, got {type(space).__name__}")
    if not isinstance(cost_model, CostModel):
        raise HwnasError(f"cost_model must be a CostModel, got {type(cost_model).__name__}")
    costs = ShapeCostTables(space, cost_model, mode=cost_mode)
    files = DMaskingRunFiles(Path(run_dir))
    files.prepare({"search": {**config.to_dict(), "cost_mode": cost_mode},
                   "space": space_to_dict(space), "cost_model": costs.to_dict()}, resume=resume)
    devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        search = _MaskedSearch(space, config, costs, files, progress)
        search.supernet.fix_decisions(fixed_decisions(space, config.fixed_layers))
        if resume and files.checkpoint.exists():
            search.restore()
        search.run(weight_batches, theta_batches)
        return search.finish(cost_model, plots=plots)
