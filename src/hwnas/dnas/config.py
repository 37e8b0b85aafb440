"""The settings of the differentiable searches: :class:`DnasConfig` (FBNet's layer-wise search)
and :class:`DMaskingConfig` (FBNetV2's masked search), which share the engine's
:class:`SearchSettings`.

Sources of the defaults: weights SGD momentum 0.9, weight decay 1e-4, cosine over the epochs;
theta Adam lr 0.01, weight decay 5e-4 (the public FBNet reimplementations' configs,
docs/reference.md section 1.2); temperature 5.0 decayed by ``exp(-0.045)`` per epoch
(:mod:`hwnas.dnas.temperature`); loss alpha 0.2, beta 0.6 (FBNet, Eq. 2). The weight learning rate
0.025 is the training recipe's (:mod:`hwnas.train.recipe`, DARTS's CIFAR value) rather than the
reimplementations' 0.1, which is unstable for these networks on small CIFAR subsets
(docs/reference.md section 5). ``warmup_epochs`` (weights only) is not given by the paper;
reimplementations use 2-10 of 90 epochs. ``subset_per_class`` and ``batch_size`` select
the CIFAR-10 images :func:`hwnas.dnas.data.search_batches` splits 80 % / 20 % (FBNet, section
4.1) into weight and theta batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwnas.dnas.temperature import INITIAL_TEMPERATURE, TEMPERATURE_DECAY
from hwnas.errors import HwnasError
from hwnas.settings import SKIP, check, setting

#: how a supernet runs a step (:mod:`hwnas.dnas.supernet`): one sampled path, or every candidate
MODES = ("sampled", "soft")
#: FBNet's independent candidates, or slices of one largest block (:mod:`hwnas.dnas.nested`)
WEIGHT_SHARING = ("independent", "nested")
#: the loss's target forms (:mod:`hwnas.dnas.loss`)
TARGET_FORMS = ("budget", "absolute")
#: "gumbel": FBNet's Gumbel-softmax gradient; "reinforce": score function with a leave-one-out
#: baseline over ``paths_per_batch`` paths (:func:`hwnas.dnas.steps.reinforce_theta_step`).
THETA_ESTIMATORS = ("gumbel", "reinforce")
#: how the masked search prices mixed widths (:mod:`hwnas.dnas.dmasking_cost`)
COST_MODES = ("effective", "expected")


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    """What the engine (:mod:`hwnas.dnas.engine`) needs, whatever the problem."""

    epochs: int = setting(8, "Search epochs.", minimum=1)
    warmup_epochs: int = setting(2, "Epochs of weight training before theta updates start.",
                                 minimum=0)
    subset_per_class: int | None = setting(
        250, "Class-balanced CIFAR-10 images per class, split 80/20 into weight and theta "
        "batches (none: all; at least 3, so that both parts hold an image of every class).",
        minimum=3, absent=SKIP)
    batch_size: int = setting(64, "Images per weight and theta batch.", minimum=2, absent=SKIP)
    mode: str = setting("sampled", "sampled (one path per step) or soft (every candidate).",
                        choices=MODES)
    weight_lr: float = setting(0.025, "SGD learning rate of the weights (cosine over epochs).",
                               minimum=0)
    momentum: float = setting(0.9, "SGD momentum of the weights.", minimum=0, below=1)
    weight_decay: float = setting(1e-4, "L2 weight decay of the weights.", minimum=0)
    weight_grad_clip: float | None = setting(
        5.0, "Clip the weights' gradient norm at this value (0 or none: no clipping).",
        minimum=0)
    theta_lr: float = setting(0.01, "Adam learning rate of theta.", minimum=0)
    theta_weight_decay: float = setting(5e-4, "L2 weight decay of theta.", minimum=0)
    initial_temperature: float = setting(INITIAL_TEMPERATURE,
                                         "Gumbel-softmax temperature of epoch 0.", minimum=0)
    temperature_decay: float = setting(TEMPERATURE_DECAY, "Temperature factor per epoch.",
                                       minimum=0, maximum=1)
    alpha: float = setting(0.2, "FBNet loss alpha.", minimum=0)
    beta: float = setting(0.6, "FBNet loss beta.", minimum=0)
    target_latency: float | None = setting(
        None, "Latency target T in the cost's unit: the loss's target form instead of "
        "FBNet's log(1 + LAT).", minimum=0)
    target_form: str = setting("budget", "With a target: budget (penalise only above T) or "
                               "absolute (two-sided, hold E[LAT] at T).", choices=TARGET_FORMS)
    theta_estimator: str = setting(
        "gumbel", "gumbel (straight-through Gumbel-softmax) or reinforce (score function over "
        "--paths-per-batch paths of each theta batch).", choices=THETA_ESTIMATORS)
    paths_per_batch: int = setting(4, "Paths compared per theta batch (reinforce).", minimum=2)
    fixed_layers: tuple[tuple[int, str], ...] = setting(
        (), "Layers taken out of the search, as (layer, block) pairs.", cli=False)
    num_samples: int = setting(10, "Architectures drawn from the final P_theta.", minimum=0,
                               option="--samples")
    seed: int = setting(0, "Seed of the weights, the Gumbel noise and the batches.", minimum=0)
    checkpoint_every: int | None = setting(
        None, "Steps between checkpoints (none: twice per epoch).", minimum=1, compared=False)
    threads: int = setting(1, "torch threads.", minimum=1, compared=False)
    device: str = setting("cpu", "torch device.", cli=False, compared=False)

    def __post_init__(self) -> None:
        check(self)
        if self.warmup_epochs > self.epochs:
            raise HwnasError(f"warmup_epochs must be <= epochs ({self.epochs}), got "
                             f"{self.warmup_epochs!r}")
        if self.initial_temperature == 0 or self.temperature_decay == 0 or self.alpha == 0:
            raise HwnasError("initial_temperature, temperature_decay and alpha must be positive")
        if self.target_latency == 0:
            raise HwnasError("target_latency must be positive, got 0")
        if not all(isinstance(pair, tuple) and len(pair) == 2 for pair in self.fixed_layers):
            raise HwnasError(f"fixed_layers must be (layer, block) pairs, got "
                             f"{self.fixed_layers!r}")


    def check_runnable(self) -> None:
        """What a search needs beyond valid values (a preset may leave the target to its
        caller, a search may not): a target form other than the budget needs a target."""
        if self.target_form != "budget" and self.target_latency is None:
            raise HwnasError(f"target_form {self.target_form!r} needs a target_latency")


@dataclass(frozen=True, kw_only=True)
class DnasConfig(SearchSettings):
    """FBNet DNAS (Wu et al. 2019) over a layer-wise space (:mod:`hwnas.dnas.layerwise`)."""

    fix_transitions: str | None = setting(
        "k3_e6", "Give the width/stride-changing layers this candidate and search the others "
        "(none: search every layer).", absent=None)
    warm_start: str | None = setting(
        None, "Start the supernet weights from another run's checkpoint.pt of the same space "
        "and weight sharing (e.g. a weights-only run, warmup_epochs = epochs).")
    weight_sharing: str = setting(
        "independent", "independent (FBNet: every candidate has its own weights) or nested "
        "(the candidates of a layer are slices of one largest block).", choices=WEIGHT_SHARING)
    residual_scale: float = setting(
        0.0, "Initial last-BN scale of the searched residual blocks (0: each starts as the "
        "identity).", minimum=0)


@dataclass(frozen=True, kw_only=True)
class DMaskingConfig(SearchSettings):
    """DMaskingNAS (FBNetV2, Wan et al. 2020) over a DMasking space (:mod:`hwnas.dnas.masked`);
    ``fixed_layers`` names a layer's block as in FBNet."""

    cost_mode: str = setting("effective", "effective (FBNetV2's effective shape) or expected "
                             "(the exact expectation) cost of mixed widths.", choices=COST_MODES)
