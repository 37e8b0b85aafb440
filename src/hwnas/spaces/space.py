"""The search-space protocol: one vocabulary for every space hwnas searches.

A space makes a fixed number of **decisions** (a layer's block, an edge's operation, a stage's
width, the input resolution...), decision ``d`` taking one of ``cardinalities[d]`` options. An
architecture of the space is a vector of option indices, its *choices*; a population is a
*choice matrix* ``[N, D]`` (int64), one architecture per row. Every search works on choice
matrices and reaches the network only through the space:

=========================  ================================================================
``decisions``              :class:`Decisions`: names, option values, cardinalities, and the
                           vectorised search operators (sample, mutate, crossover) under an
                           explicit ``numpy.random.Generator``
``to_arch(choices)``       the :class:`~hwnas.arch.spec.ArchSpec` the choices build
``choices_of(arch)``       the inverse (raises :class:`~hwnas.errors.SpecError` outside the
                           space); ``contains(arch)``
``format`` / ``parse``     a readable id of an architecture and back (the compact arch string,
                           or the official NAS-Bench-201 cell string)
``encode(matrix)``         the ``[N, E]`` features a predictor sees
``lut_metadata()``         what a latency table records about the space
``unique_layer_shapes()``  every distinct layer of the shape walk (the keys a LUT measures)
``layer_sums(price)``      ``matrix -> [N]``: the sum of ``price(layer)`` over each network's
                           layers, vectorised where the space's structure allows
=========================  ================================================================

:func:`hwnas.spaces.get_space` returns every registered space by name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np

from hwnas.arch.build import LayerShape, walk
from hwnas.arch.spec import ArchSpec
from hwnas.errors import HwnasError, SpecError

#: the per-layer price a cost model gives (``hwnas.cost.base.LayerPrice.price``)
LayerPriceFunction = Callable[[LayerShape], float]
#: a vectorised function of choice matrices, ``[N, D] -> [N]``
ChoiceFunction = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Decisions:
    """The decisions of one space: their names and the option values of each."""

    space: str
    names: tuple[str, ...]
    options: tuple[tuple[Any, ...], ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.options) or not self.names:
            raise SpecError(f"space {self.space!r}: needs one option list per decision")
        for name, options in zip(self.names, self.options):
            if not options or len(set(options)) != len(options):
                raise SpecError(f"space {self.space!r}: decision {name} needs distinct "
                                f"options, got {options!r}")

    @functools.cached_property
    def cardinalities(self) -> np.ndarray:
        """Options of every decision, ``int64 [D]`` (read-only)."""
        counts = np.array([len(options) for options in self.options], dtype=np.int64)
        counts.setflags(write=False)
        return counts

    @property
    def count(self) -> int:
        return len(self.names)

    @property
    def size(self) -> int:
        """Exact number of architectures: the product of the cardinalities."""
        return int(np.prod(self.cardinalities.tolist(), dtype=object))

    @property
    def searchable(self) -> int:
        """Decisions with more than one option."""
        return int((self.cardinalities > 1).sum())

    # ---- checks ---------------------------------------------------------------------------
    def checked(self, choices: Sequence[int]) -> tuple[int, ...]:
        """One architecture's choices as ints; raises naming the decision that is out of range."""
        try:
            values = tuple(int(choice) for choice in choices)
        except (TypeError, ValueError):
            raise SpecError(f"space {self.space!r}: choices must be integers, got "
                            f"{choices!r:.100}") from None
        if len(values) != self.count:
            raise SpecError(f"space {self.space!r} needs {self.count} choices, got "
                            f"{len(values)}")
        for name, value, size in zip(self.names, values, self.cardinalities):
            if not 0 <= value < size:
                raise SpecError(f"space {self.space!r}: choice {value} of {name} is not in "
                                f"0..{size - 1}")
        return values

    def matrix(self, choices: Any) -> np.ndarray:
        """A checked ``[N, D]`` int64 choice matrix (one row for a single vector)."""
        array = np.atleast_2d(np.asarray(choices))
        if array.ndim != 2 or array.shape[1] != self.count or not (
                np.issubdtype(array.dtype, np.integer) or array.size == 0):
            raise HwnasError(f"space {self.space!r}: choices must be an integer matrix "
                             f"[N, {self.count}], got shape {np.shape(choices)}")
        if array.size and ((array < 0).any() or (array >= self.cardinalities).any()):
            raise HwnasError(f"space {self.space!r}: choices out of range")
        return array.astype(np.int64, copy=False)

    # ---- search operators -----------------------------------------------------------------
    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` architectures, every decision uniform over its options."""
        return rng.integers(0, self.cardinalities, size=(count, self.count))

    def mutate(self, matrix: np.ndarray, rates: np.ndarray, rng: np.random.Generator
               ) -> np.ndarray:
        """Each decision of row ``i`` moves to another option with probability ``rates[i]``
        (decisions with one option never change)."""
        counts = self.cardinalities
        mask = (rng.random(matrix.shape) < np.asarray(rates)[:, None]) & (counts > 1)
        offsets = rng.integers(1, np.maximum(counts, 2), size=matrix.shape)
        return np.where(mask, (matrix + offsets) % counts, matrix)

    def crossover(self, first: np.ndarray, second: np.ndarray, rng: np.random.Generator
                  ) -> np.ndarray:
        """Uniform crossover: each decision from ``second`` with probability 1/2."""
        return np.where(rng.random(first.shape) < 0.5, second, first)

    def enumerate(self) -> np.ndarray:
        """Every architecture of a small space, ``[size, D]``."""
        grids = np.indices(tuple(int(c) for c in self.cardinalities))
        return grids.reshape(self.count, -1).T.astype(np.int64)

    # ---- encodings ------------------------------------------------------------------------
    def one_hot(self, matrix: np.ndarray) -> np.ndarray:
        """``[N, sum(cardinalities)]``: one block of indicators per decision."""
        matrix = self.matrix(matrix)
        offsets = np.concatenate([[0], np.cumsum(self.cardinalities)[:-1]])
        encoded = np.zeros((len(matrix), int(self.cardinalities.sum())))
        encoded[np.arange(len(matrix))[:, None], offsets + matrix] = 1.0
        return encoded

    def scaled(self, matrix: np.ndarray) -> np.ndarray:
        """``[N, D]``: each decision's numeric option value scaled to [0, 1] over its options
        (0 for a decision with one option)."""
        matrix = self.matrix(matrix)
        encoded = np.empty(matrix.shape, dtype=float)
        for column, options in enumerate(self.options):
            values = np.asarray(options, dtype=float)
            low, high = values.min(), values.max()
            scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
            encoded[:, column] = scaled[matrix[:, column]]
        return encoded

    def values_of(self, choices: Sequence[int]) -> dict[str, Any]:
        """The option value of every decision, ``{"resolution": 224, ...}``."""
        return {name: options[index] for name, index, options
                in zip(self.names, self.checked(choices), self.options)}


class SearchSpace(Protocol):
    """What every space provides (module docstring)."""

    name: str

    @property
    def decisions(self) -> Decisions: ...

    def to_arch(self, choices: Sequence[int]) -> ArchSpec: ...

    def choices_of(self, arch: ArchSpec) -> tuple[int, ...]: ...

    def contains(self, arch: ArchSpec) -> bool: ...

    def format(self, choices: Sequence[int]) -> str: ...

    def parse(self, text: str) -> tuple[int, ...]: ...

    def encode(self, matrix: np.ndarray) -> np.ndarray: ...

    def lut_metadata(self) -> dict[str, Any]: ...

    def unique_layer_shapes(self) -> Iterator[LayerShape]: ...

    def layer_sums(self, price: LayerPriceFunction) -> ChoiceFunction: ...


# The protocol's methods that the spaces which build networks share (class attributes there).
def contains_arch(space: SearchSpace, arch: ArchSpec) -> bool:
    """``space.choices_of(arch)`` succeeds."""
    try:
        space.choices_of(arch)
    except SpecError:
        return False
    return True


def format_network(space: SearchSpace, choices: Sequence[int]) -> str:
    """The compact arch string of the network ``choices`` build."""
    return space.to_arch(choices).to_string()


def parse_network(space: SearchSpace, text: str) -> tuple[int, ...]:
    """The choices of a compact arch string in ``space``."""
    return space.choices_of(ArchSpec.from_string(text))


def walk_sums(space: SearchSpace, price: LayerPriceFunction) -> ChoiceFunction:
    """``layer_sums`` by building each network's walk: right for any space, fast for none."""
    def sums(matrix: np.ndarray) -> np.ndarray:
        return np.array([sum(price(layer) for layer in walk(space.to_arch(row)))
                         for row in np.atleast_2d(matrix)], dtype=float)

    return sums
