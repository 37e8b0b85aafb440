"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), written as data.

A cell is a DAG on 4 nodes; each of its 6 edges ``j -> i`` (``j < i``) carries one of 5
operations, so the space has ``5 ** 6 = 15,625`` cells. An architecture here is a tuple of 6 op
indices in the edge order of the official string

    ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``

i.e. edges ``0->1, 0->2, 1->2, 0->3, 1->3, 2->3`` (``op~j`` on the part for node ``i`` = edge
``j -> i``). The NB201 index of a cell is its row in the benchmark tables (the official
``arch_index`` order, which is not a product order), so :meth:`NB201Space.index_of` looks it up
in ``nb201_latency.csv.gz``.

A cell's network (:func:`nb201_network`, the benchmark's macro skeleton) is an
:class:`ArchSpec` like any other, built, counted, exported and trained by the one builder; the
searches over the space evaluate cells from the tables (``nb201_accuracy.csv.gz``,
:class:`hwnas.evolution.evaluators.NB201Evaluator`) and price them with device columns
(:class:`hwnas.cost.device_table.NB201Latency`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from hwnas.arch.build import LayerShape, walk
from hwnas.arch.spec import (
    CELL_OPERATIONS, ArchSpec, HeadSpec, NB201Cell, ResidualBlock, StemSpec,
)
from hwnas.data.paths import data_file
from hwnas.data.tables import NB201_LATENCY_FILE, load_nb201_table
from hwnas.errors import HwnasError, SpecError
from hwnas.spaces.space import ChoiceFunction, Decisions, LayerPriceFunction, contains_arch

NB201_OPS = CELL_OPERATIONS
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
    choices = NB201Space().decisions.checked(choices)
    parts, position = [], 0
    for size in _NODE_SIZES:
        edges = [f"{NB201_OPS[choices[position + source]]}~{source}" for source in range(size)]
        parts.append("|" + "|".join(edges) + "|")
        position += size
    return "+".join(parts)


def nb201_network(ops: Sequence[str], *, channels: int = 16, cells: int = 5,
                  num_classes: int = 10, resolution: int = 32) -> ArchSpec:
    """The NAS-Bench-201 network of one cell (Dong & Yang 2020, Sec. 2.1 and Fig. 1): a 3x3
    stem conv + BN to ``channels`` (C), three stages of ``cells`` (N) copies of the cell at C, 2C
    and 4C channels with a residual reduction block (stride 2) between them, then BN-ReLU,
    global pool and the classifier. The benchmark's networks have C = 16, N = 5 (CIFAR at 32 px,
    ImageNet16-120 at 16 px)."""
    cell = tuple(ops)
    blocks: list[Any] = []
    for stage in range(3):
        width = channels * 2 ** stage
        if stage:
            blocks.append(ResidualBlock(width, 2))
        blocks.extend(NB201Cell(width, cell) for _ in range(cells))
    return ArchSpec(resolution=resolution, stem=StemSpec(channels, 1, 3, "none"),
                    blocks=tuple(blocks),
                    head=HeadSpec(4 * channels, num_classes, "relu", 0.0, conv=False))


def cell_of_network(arch: ArchSpec) -> tuple[str, ...]:
    """The cell of an NB201 network (any C, N, classes and resolution); a network of another
    skeleton raises :class:`SpecError`."""
    cells = [block.ops for block in arch.blocks if isinstance(block, NB201Cell)]
    if not cells or arch.stem.activation != "none":
        raise SpecError("architecture is not an NB201 network (no NB201 cells after a stem "
                        "without activation)")
    per_stage = len(cells) // 3
    rebuilt = nb201_network(cells[0], channels=arch.stem.out_channels, cells=max(per_stage, 1),
                            num_classes=arch.num_classes, resolution=arch.resolution)
    if rebuilt != arch:
        raise SpecError("architecture is not an NB201 network: its blocks differ from the "
                        "benchmark's skeleton of its first cell")
    return cells[0]


class NB201Space:
    """The 15,625-cell NAS-Bench-201 space; architectures are 6-tuples of op indices.

    :meth:`to_arch` builds the benchmark's network of a cell (:func:`nb201_network`, C = 16,
    N = 5, CIFAR-10), :meth:`format` / :meth:`parse` are the cell's identity, the official
    string. Its device latencies are tabulated, and a LUT of this machine prices its networks
    by parts (:func:`hwnas.cost.opkey.layer_keys`).
    """

    name = "nb201"
    candidates = NB201_OPS
    edges = NB201_EDGES

    @functools.cached_property
    def decisions(self) -> Decisions:
        """One decision per edge ``j -> i`` of the cell, each one of the 5 operations."""
        return Decisions(self.name, tuple(f"edge_{j}-{i}" for j, i in NB201_EDGES),
                         (NB201_OPS,) * len(NB201_EDGES))

    def to_arch(self, choices: Sequence[int]) -> ArchSpec:
        return nb201_network([NB201_OPS[op] for op in self.decisions.checked(choices)])

    def choices_of(self, arch: ArchSpec) -> tuple[int, ...]:
        try:
            cell = cell_of_network(arch)
        except SpecError as error:
            raise SpecError(f"architecture is not in space 'nb201': {error}") from None
        if arch != self.to_arch([NB201_OPS.index(op) for op in cell]):
            raise SpecError("architecture is not in space 'nb201': it is an NB201 network at "
                            "other channels, cells, classes or resolution than C=16, N=5, "
                            "10 classes, 32 px")
        return tuple(NB201_OPS.index(op) for op in cell)

    contains = contains_arch

    def parse(self, text: str) -> tuple[int, ...]:
        return parse_arch_str(text)

    def format(self, choices: Sequence[int]) -> str:
        return format_arch_str(choices)

    def encode(self, matrix: np.ndarray) -> np.ndarray:
        """:func:`cell_features`."""
        return cell_features(self.decisions.matrix(matrix))

    resolution = 32
    num_layers, num_candidates = len(NB201_EDGES), len(NB201_OPS)  # decisions x options

    def layer_matrix(self, price: LayerPriceFunction) -> tuple[float, np.ndarray]:
        """A layer price as ``constant + sum_e matrix[e, op_e]``: exact for the reference cell
        (every edge a 3x3 conv, all live), first order elsewhere (each entry the change of one
        edge alone; a cell's parts are not additive over its edges once edges die)."""
        sums = self.layer_sums(price)
        reference = np.full(self.num_layers, NB201_OPS.index("nor_conv_3x3"))
        rows = np.repeat(reference[None], self.num_layers * self.num_candidates, axis=0)
        for edge in range(self.num_layers):
            rows[edge * self.num_candidates:(edge + 1) * self.num_candidates, edge] = np.arange(
                self.num_candidates)
        constant = float(sums(reference[None])[0])
        return constant, sums(rows).reshape(self.num_layers, self.num_candidates) - constant

    def lut_metadata(self) -> dict[str, Any]:
        return {"name": self.name, "resolution": self.resolution}

    def unique_layer_shapes(self) -> Iterator[LayerShape]:
        """Layers whose keys (:func:`hwnas.cost.opkey.layer_keys`) cover the space's: the
        stem, reductions and head, and per stage a cell holding every operation and additions
        (the parts a LUT times; no cell of the space has others)."""
        every = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect",
                 "nor_conv_3x3", "nor_conv_1x1")
        yield from walk(nb201_network(every))

    def layer_sums(self, price: LayerPriceFunction) -> ChoiceFunction:
        """``[N, 6] -> [N]``: the sum of ``price`` over each cell's network (the walk of
        15,625 networks at most, each cell once)."""
        prices: dict[tuple[Any, ...], float] = {}  # a network's 15 cells are 3 distinct layers

        def priced(layer: LayerShape) -> float:
            shape = (layer.spec, layer.in_channels, layer.in_size)
            if shape not in prices:
                prices[shape] = price(layer)
            return prices[shape]

        def sums(matrix: np.ndarray) -> np.ndarray:
            rows = self.decisions.matrix(matrix)
            unique, inverse = np.unique(rows, axis=0, return_inverse=True)
            values = np.array([sum(priced(layer) for layer in walk(self.to_arch(row)))
                               for row in unique])
            return values[inverse.reshape(-1)]
        return sums

    # ---- the benchmark's index order -------------------------------------------------------
    def indices(self, matrix: np.ndarray, data_dir: str | Path | None = None) -> np.ndarray:
        """The NB201 index (table row) of every row of a choice matrix."""
        codes = self.decisions.matrix(matrix) @ (5 ** np.arange(5, -1, -1))
        return _table_order(data_dir).rows[codes]

    def index_of(self, choices: Sequence[int], data_dir: str | Path | None = None) -> int:
        """The official NB201 index (row of the benchmark tables) of an architecture."""
        return int(self.indices(np.array([self.decisions.checked(choices)]), data_dir)[0])

    def choices_at(self, index: int, data_dir: str | Path | None = None) -> tuple[int, ...]:
        """The architecture at NB201 index ``index`` (inverse of :meth:`index_of`)."""
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not (
                0 <= index < self.decisions.size):
            raise HwnasError(f"NB201 index must be an integer in 0..{self.decisions.size - 1}, "
                             f"got {index!r}")
        return tuple(int(op) for op in self.all_choices(data_dir)[int(index)])

    def all_choices(self, data_dir: str | Path | None = None) -> np.ndarray:
        """``[15625, 6]`` op indices of every cell, row ``i`` = NB201 index ``i`` (read-only)."""
        return _table_order(data_dir).choices


@dataclass(frozen=True)
class TableOrder:
    """The NB201 index order of the tables: the cell of each row, the row of each cell."""

    choices: np.ndarray  # [15625, 6]
    rows: np.ndarray  # base-5 code of a cell -> its row


def _table_order(data_dir: str | Path | None) -> TableOrder:
    return _table_order_of(data_file(NB201_LATENCY_FILE, data_dir).resolve())


@functools.lru_cache(maxsize=4)
def _table_order_of(source: Path) -> TableOrder:
    table = load_nb201_table(source)
    choices = np.empty((len(table.keys), len(NB201_EDGES)), dtype=np.int64)
    for row, key in enumerate(table.keys):
        try:
            choices[row] = parse_arch_str(key)
        except HwnasError as error:
            raise HwnasError(f"{source.name}: row {row}: {error}") from None
    rows = np.full(5 ** len(NB201_EDGES), -1, dtype=np.int64)
    rows[choices @ (5 ** np.arange(5, -1, -1))] = np.arange(len(choices))
    if (rows < 0).any():
        raise HwnasError(f"{source.name}: arch_str values do not cover every cell once")
    choices.setflags(write=False)
    rows.setflags(write=False)
    return TableOrder(choices, rows)


#: input->output paths of the cell as edge indices (edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3)
NB201_PATHS = ((3,), (0, 4), (1, 5), (0, 2, 5))
NONE_OP, CONV1, CONV3 = 0, 2, 3


def live_paths(choices: np.ndarray) -> np.ndarray:
    """``[N, 4]``: which input->output paths of each cell hold no ``none`` op."""
    C = np.atleast_2d(np.asarray(choices, dtype=np.int64))
    return np.stack([(C[:, list(path)] != NONE_OP).all(axis=1) for path in NB201_PATHS], 1)


def connected(choices: np.ndarray) -> np.ndarray:
    """``[N]``: whether the cell's output is reached from its input (else the cell, and its
    network, computes a constant: NB201's 10 % on CIFAR-10)."""
    return live_paths(choices).any(axis=1)


def cell_features(choices: np.ndarray) -> np.ndarray:
    """One-hot (6 edges x 5 ops) plus derived cell features, ``[N, 35]``.

    A cell whose output is cut off from its input (a ``none`` on every input->output path)
    scores ~10 % whatever its other ops, which one-hot features express poorly; so five features
    computed over the *live* paths (no ``none`` op on them) are appended, scaled to [0, 2]:
    output connected, live paths / 4, 3x3 convs on live paths / 6, 1x1 convs on live paths / 6,
    and the most convs on one live path / 3. The gain of a GP on these features with the log
    error target is measured by ``benchmarks/experiments/predictor.py``.
    """
    C = np.atleast_2d(np.asarray(choices, dtype=np.int64))
    alive = live_paths(C)
    conv3 = np.zeros(len(C))
    conv1 = np.zeros(len(C))
    depth = np.zeros(len(C))
    for k, path in enumerate(NB201_PATHS):
        ops = C[:, list(path)]
        threes, ones = (ops == CONV3).sum(1), (ops == CONV1).sum(1)
        conv3 += alive[:, k] * threes
        conv1 += alive[:, k] * ones
        depth = np.maximum(depth, alive[:, k] * (threes + ones))
    extra = np.stack([alive.any(1), alive.sum(1) / 4, conv3 / 6, conv1 / 6, depth / 3], axis=1)
    one_hot = np.zeros((len(C), 30))
    one_hot[np.arange(len(C))[:, None], np.arange(6) * 5 + C] = 1.0
    return np.hstack([one_hot, 2.0 * extra])


def nb201_space() -> NB201Space:
    """The NAS-Bench-201 cell space."""
    return NB201Space()
