"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), written as data.

A cell is a DAG on 4 nodes; each of its 6 edges ``j -> i`` (``j < i``) carries one of 5
operations, so the space has ``5 ** 6 = 15,625`` cells. An architecture here is a tuple of 6 op
indices in the edge order of the official string

    ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``

i.e. edges ``0->1, 0->2, 1->2, 0->3, 1->3, 2->3`` (``op~j`` on the part for node ``i`` = edge
``j -> i``). The NB201 index of a cell is its row in the benchmark tables (the official
``arch_index`` order, which is not a product order), so :meth:`NB201Space.index_of` looks it up
in ``nb201_latency.csv.gz``.

This space is not an :class:`~hwnas.arch.spec.ArchSpec` space: no network is built from it, and
its evaluator is tabular (:func:`hwnas.data.tables.nb201_latency`, ``nb201_accuracy``). Method
names follow :class:`~hwnas.spaces.fbnet.LayerwiseSpace` where they make sense ("layers" are the
6 edges, "candidates" the 5 operations).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.spaces import operators

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (source node, target node) of each edge, in the order of the official string
NB201_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
_NODE_SIZES = (1, 2, 3)  # incoming edges of nodes 1, 2, 3


def parse_arch_str(arch_str: str) -> tuple[int, ...]:
    """Op indices of an official NB201 string; a malformed string raises naming the bad part."""
    if not isinstance(arch_str, str):
        raise HwnasError(f"NB201 architecture must be a string, got {arch_str!r}")
    nodes = arch_str.split("+")
    if len(nodes) != len(_NODE_SIZES):
        raise HwnasError(
            f"NB201 string {arch_str!r} must have {len(_NODE_SIZES)} node parts joined by '+'"
        )
    choices = []
    for target, (node, size) in enumerate(zip(nodes, _NODE_SIZES), start=1):
        if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
            raise HwnasError(f"NB201 string {arch_str!r}: node part {node!r} must be '|...|'")
        edges = node[1:-1].split("|")
        if len(edges) != size:
            raise HwnasError(
                f"NB201 string {arch_str!r}: node {target} needs {size} edges, got {node!r}"
            )
        for source, edge in enumerate(edges):
            operation, _, source_text = edge.partition("~")
            if operation not in NB201_OPS:
                raise HwnasError(
                    f"NB201 string {arch_str!r}: unknown operation {operation!r} "
                    f"(known: {', '.join(NB201_OPS)})"
                )
            if source_text != str(source):
                raise HwnasError(
                    f"NB201 string {arch_str!r}: edge {edge!r} of node {target} must come from "
                    f"node {source}"
                )
            choices.append(NB201_OPS.index(operation))
    return tuple(choices)


def format_arch_str(choices: Sequence[int]) -> str:
    """The official NB201 string of 6 op indices (inverse of :func:`parse_arch_str`)."""
    choices = NB201Space()._checked(choices)
    parts, position = [], 0
    for size in _NODE_SIZES:
        edges = [f"{NB201_OPS[choices[position + source]]}~{source}" for source in range(size)]
        parts.append("|" + "|".join(edges) + "|")
        position += size
    return "+".join(parts)


@functools.lru_cache(maxsize=4)
def _index_by_choices(source: Path) -> dict[tuple[int, ...], int]:
    from hwnas.data.tables import _load_nb201

    table = _load_nb201(source)
    return {parse_arch_str(key): index for index, key in enumerate(table.keys)}


class NB201Space:
    """The 15,625-cell NAS-Bench-201 space; architectures are 6-tuples of op indices."""

    name = "nb201"
    candidates = NB201_OPS
    edges = NB201_EDGES

    @property
    def num_layers(self) -> int:
        """Number of searchable edges (6)."""
        return len(NB201_EDGES)

    @property
    def num_candidates(self) -> int:
        return len(NB201_OPS)

    @property
    def size(self) -> int:
        return self.num_candidates**self.num_layers

    @property
    def encoding_length(self) -> int:
        """Length of :meth:`encode`'s one-hot vector (6 edges x 5 ops = 30)."""
        return self.num_layers * self.num_candidates

    def parse(self, arch_str: str) -> tuple[int, ...]:
        return parse_arch_str(arch_str)

    def format(self, choices: Sequence[int]) -> str:
        return format_arch_str(choices)

    def contains(self, choices: Sequence[int]) -> bool:
        try:
            self._checked(choices)
        except HwnasError:
            return False
        return True

    def _checked(self, choices: Sequence[int]) -> tuple[int, ...]:
        try:
            values = tuple(int(choice) for choice in choices)
        except (TypeError, ValueError):
            raise HwnasError(f"NB201 architecture must be 6 op indices, got {choices!r}") from None
        if len(values) != self.num_layers or any(
            not 0 <= value < self.num_candidates for value in values
        ):
            raise HwnasError(
                f"NB201 architecture must be {self.num_layers} op indices in "
                f"0..{self.num_candidates - 1}, got {choices!r}"
            )
        return values

    # ---- the benchmark's index order ---------------------------------------------------------
    def index_of(self, choices: Sequence[int], data_dir: str | Path | None = None) -> int:
        """The official NB201 index (row of the benchmark tables) of an architecture."""
        from hwnas.data.paths import data_file
        from hwnas.data.tables import NB201_LATENCY_FILE

        source = data_file(NB201_LATENCY_FILE, data_dir).resolve()
        return _index_by_choices(source)[self._checked(choices)]

    def choices_at(self, index: int, data_dir: str | Path | None = None) -> tuple[int, ...]:
        """The architecture at NB201 index ``index`` (inverse of :meth:`index_of`)."""
        return tuple(int(op) for op in self.all_choices(data_dir)[self._checked_index(index)])

    def all_choices(self, data_dir: str | Path | None = None) -> np.ndarray:
        """``[15625, 6]`` op indices of every cell, row ``i`` = NB201 index ``i`` (read-only)."""
        from hwnas.data.paths import data_file
        from hwnas.data.tables import NB201_LATENCY_FILE

        return _choices_in_table_order(data_file(NB201_LATENCY_FILE, data_dir).resolve())

    def _checked_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
            0 <= index < self.size
        ):
            raise HwnasError(f"NB201 index must be an integer in 0..{self.size - 1}, got {index!r}")
        return int(index)

    # ---- search operators: all take an explicit numpy Generator --------------------------------
    def sample_choices(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A uniformly random cell."""
        return operators.sample_choices(self.cardinalities, rng)

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Options per edge."""
        return (self.num_candidates,) * self.num_layers

    def mutate_choices(
        self, choices: Sequence[int], rng: np.random.Generator, probability: float | None = None
    ) -> tuple[int, ...]:
        """Give each edge another op with ``probability`` (default 1/6); at least one changes."""
        return operators.mutate_choices(self._checked(choices), self.cardinalities, rng,
                                        probability)

    def crossover_choices(
        self, first: Sequence[int], second: Sequence[int], rng: np.random.Generator
    ) -> tuple[int, ...]:
        """Uniform crossover: each edge comes from either parent with probability 1/2."""
        return operators.crossover_choices(self._checked(first), self._checked(second), rng)

    def encode(self, choices: Sequence[int]) -> np.ndarray:
        """One-hot vector of length 30: position ``5 * edge + op`` is 1."""
        vector = np.zeros(self.encoding_length)
        for edge, op in enumerate(self._checked(choices)):
            vector[edge * self.num_candidates + op] = 1.0
        return vector

    def encode_many(self, choices: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`encode` of a ``[N, 6]`` array -> ``[N, 30]``."""
        from hwnas.predictors.gp import one_hot_choices

        return one_hot_choices(choices, self.num_candidates)

    def decode(self, vector: Sequence[float]) -> tuple[int, ...]:
        """Inverse of :meth:`encode`; raises unless each edge's block is exactly one-hot."""
        array = np.asarray(vector, dtype=float)
        if array.shape != (self.encoding_length,):
            raise HwnasError(
                f"NB201 encoding must have length {self.encoding_length}, got shape {array.shape}"
            )
        blocks = array.reshape(self.num_layers, self.num_candidates)
        if not (np.isin(blocks, (0.0, 1.0)).all() and (blocks.sum(axis=1) == 1).all()):
            raise HwnasError("NB201 encoding is not one-hot per edge")
        return tuple(int(op) for op in blocks.argmax(axis=1))


@functools.lru_cache(maxsize=4)
def _choices_in_table_order(source: Path) -> np.ndarray:
    from hwnas.data.tables import _load_nb201

    choices = np.array([parse_arch_str(key) for key in _load_nb201(source).keys], dtype=np.int64)
    choices.setflags(write=False)
    return choices


def nb201_space() -> NB201Space:
    """The NAS-Bench-201 cell space."""
    return NB201Space()
