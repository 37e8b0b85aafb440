"""The settings of the searches that sample architectures: :class:`ChamNetConfig` and the
adaptive GA's :class:`GAConfig` (the GA's recommended rates are Srinivas & Patnaik's, IEEE Trans.
SMC 24(4), 1994: k1 = k3 = 1.0, k2 = k4 = 0.5)."""

from __future__ import annotations

from dataclasses import dataclass

from hwnas.settings import check, setting

#: what ChamNet's GP models (:mod:`hwnas.evolution.chamnet`)
TARGETS = ("log_error", "accuracy")


@dataclass(frozen=True, kw_only=True)
class GAConfig:
    """Hyper-parameters of :func:`hwnas.evolution.ga.adaptive_ga`."""

    population: int = setting(100, "GA population per budget.", minimum=2)
    generations: int = setting(60, "GA generations.", minimum=0)
    k1: float = setting(1.0, "Crossover rate scale above average fitness.", minimum=0, maximum=1)
    k2: float = setting(0.5, "Mutation rate scale above average fitness.", minimum=0, maximum=1)
    k3: float = setting(1.0, "Crossover rate below average fitness.", minimum=0, maximum=1)
    k4: float = setting(0.5, "Mutation rate below average fitness.", minimum=0, maximum=1)
    min_mutation: float = setting(0.02, "Per-gene mutation floor.", minimum=0, maximum=1)
    patience: int = setting(5, "Generations without improvement before the floor doubles.",
                            minimum=1)
    tournament: int = setting(2, "Tournament size.", minimum=1)
    repair_attempts: int = setting(10, "Re-mutations of an infeasible child.", minimum=1)
    sampling_rounds: int = setting(50, "Batches tried for feasible random individuals.",
                                   minimum=1)

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True, kw_only=True)
class ChamNetConfig:
    """Every setting of a ChamNet search (and of the short-training evaluator it may use)."""

    evaluations: int = setting(100, "Architectures to evaluate (resuming with more continues "
                               "the search).", minimum=2, maximum=10_000, compared=False)
    initial_samples: int = setting(10, "Random feasible architectures evaluated first.",
                                   minimum=2, option="--initial")
    batch_size: int = setting(5, "Architectures per Bayesian-optimisation round.", minimum=1)
    seed: int = setting(0, "Seed of every random draw.", minimum=0)
    target: str = setting("log_error", "What the GP models: log(100 - accuracy) or accuracy.",
                          choices=TARGETS)
    pool_size: int = setting(2000, "GA-proposed candidates kept per budget and round (top EI).",
                             minimum=1)
    enumerate_limit: int = setting(50_000, "Spaces up to this size are enumerated instead of "
                                   "searched by the GA.", minimum=0)
    ga_population: int = setting(64, "GA population per budget and round.", minimum=2)
    ga_generations: int = setting(25, "GA generations per budget and round.", minimum=0)
    evaluator_epochs: int = setting(2, "Training epochs per architecture (cifar10 evaluator).",
                                    minimum=1)
    train_per_class: int = setting(100, "Training images per class (cifar10 evaluator).",
                                   minimum=1)
    valid_per_class: int = setting(50, "Validation images per class, carved from the training "
                                   "split (cifar10 evaluator).", minimum=1)

    def __post_init__(self) -> None:
        check(self)

    @property
    def ga(self) -> GAConfig:
        return GAConfig(population=self.ga_population, generations=self.ga_generations)
