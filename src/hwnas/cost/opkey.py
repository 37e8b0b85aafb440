"""Operator keys: what one latency-table entry is the latency *of*.

The LUT unit is one layer of the builder's shape walk (:func:`hwnas.arch.build.walk`): the stem,
each block, and the head (1x1 conv + pool + dropout + classifier), as in HW-NAS-Bench's
per-block FBNet table and mobile-vision's ``OpInfo(op, input_shapes)``. A key holds everything
that changes the work the layer does:

* ``kind``: ``"stem"``, ``"block"`` or ``"head"``;
* ``params``: the layer spec's own fields (block type, out channels, stride, kernel, expansion,
  groups, ...), exactly as :meth:`to_dict` of the spec gives them;
* ``input_shape``: ``(channels, height, width)`` entering the layer (batch size is a property of
  the whole table, stored in its engine metadata);
* ``dtype``: the tensor element type (``"float32"``).

Shape-keeping skip layers are identities that cost ~0; they stay keys so that a table covers every
layer explicitly and a missing entry is always an error, never a silent zero.

A NAS-Bench-201 cell is priced by parts (:func:`layer_keys`), since a stage alone has 15,625
cells: one key per live edge (a cell holding that one operation, on the edge 0 -> 3) and one per
addition a node's sum needs (a cell of three skips adding its input to itself), each at the
cell's width and input size, so that the table's keys are themselves cells that the one
builder builds and an engine times.

Keys are hashable, compare by value, and round-trip through JSON (:meth:`OpKey.to_dict` /
:meth:`OpKey.from_dict`); :attr:`OpKey.id` is a canonical, readable string used as the JSON key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hwnas.arch.build import LayerShape, walk
from hwnas.arch.spec import ArchSpec, HeadSpec, NB201Cell, StemSpec, block_from_dict
from hwnas.errors import HwnasError

KINDS = ("stem", "block", "head")
DTYPES = ("float32",)


class OpKeyError(HwnasError):
    """A malformed operator key (in a LUT file or built by hand)."""


def _scalar(value: Any) -> bool:
    if isinstance(value, tuple):  # a cell's operations
        return all(isinstance(item, str) for item in value)
    return isinstance(value, (bool, int, float, str))


def _params(items: Any) -> tuple[tuple[str, Any], ...]:
    """Key params as a hashable tuple (JSON lists become tuples)."""
    return tuple((name, tuple(value) if isinstance(value, list) else value)
                 for name, value in items)


@dataclass(frozen=True)
class OpKey:
    """One operator instance: layer kind + spec fields + input shape + dtype (see module doc)."""

    kind: str
    params: tuple[tuple[str, Any], ...]
    input_shape: tuple[int, int, int]
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise OpKeyError(f"op key: kind must be one of {KINDS}, got {self.kind!r}")
        if self.dtype not in DTYPES:
            raise OpKeyError(f"op key: dtype must be one of {DTYPES}, got {self.dtype!r}")
        shape = self.input_shape
        if (
            not isinstance(shape, tuple)
            or len(shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
        ):
            raise OpKeyError(f"op key: input_shape must be 3 positive integers, got {shape!r}")
        if not all(isinstance(name, str) and _scalar(value) for name, value in self.params):
            raise OpKeyError(f"op key: params must map names to scalars, got {self.params!r}")
        object.__setattr__(self, "params", tuple(sorted(self.params)))

    @property
    def id(self) -> str:
        """Canonical string, e.g. ``block:{"expansion":1,...,"type":"fbnet"}@16x32x32:float32``."""
        fields = json.dumps(dict(self.params), sort_keys=True, separators=(",", ":"))
        channels, height, width = self.input_shape
        return f"{self.kind}:{fields}@{channels}x{height}x{width}:{self.dtype}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": dict(self.params),
            "input_shape": list(self.input_shape),
            "dtype": self.dtype,
        }

    @classmethod
    def from_dict(cls, data: Any) -> OpKey:
        """Parse a key written by :meth:`to_dict`; anything else raises :class:`OpKeyError`."""
        if not isinstance(data, dict) or set(data) != {"kind", "params", "input_shape", "dtype"}:
            raise OpKeyError(
                f"op key: expected an object with kind, params, input_shape, dtype; got {data!r}"
            )
        if not isinstance(data["params"], dict) or not isinstance(data["input_shape"], list):
            raise OpKeyError(f"op key: params must be an object and input_shape a list: {data!r}")
        key = cls(
            kind=data["kind"],
            params=_params(data["params"].items()),
            input_shape=tuple(data["input_shape"]),
            dtype=data["dtype"],
        )
        key.layer_spec()  # the params must describe a real layer
        return key

    def layer_spec(self) -> StemSpec | HeadSpec | Any:
        """The spec object the params describe (validated by the spec classes)."""
        params = dict(self.params)
        try:
            if self.kind == "stem":
                return StemSpec(**StemSpec._kwargs_from_dict(params, "stem"))
            if self.kind == "head":
                return HeadSpec(**HeadSpec._kwargs_from_dict(params, "head"))
            return block_from_dict(params, "block")
        except HwnasError as error:
            raise OpKeyError(f"op key {self.id}: {error}") from None

    def layer_shape(self) -> LayerShape:
        """A :class:`LayerShape` that :func:`hwnas.arch.build.build_layer` can build alone."""
        from hwnas.arch.build import conv_output_size

        spec = self.layer_spec()
        channels, size, _ = self.input_shape
        name = {"stem": "stem", "head": "head"}.get(self.kind, "blocks.0")
        if self.kind == "head":
            return LayerShape(name, spec, channels, size, spec.num_classes, 1)
        out_size = conv_output_size(size, spec.stride)
        return LayerShape(name, spec, channels, size, spec.out_channels, out_size)


def _kind_of(layer: LayerShape) -> str:
    if layer.name in ("stem", "head"):
        return layer.name
    return "block"


def key_of_layer(layer: LayerShape, dtype: str = "float32") -> OpKey:
    """The key of one layer of the shape walk, as a whole."""
    return OpKey(
        kind=_kind_of(layer),
        params=_params(layer.spec.to_dict().items()),
        input_shape=(layer.in_channels, layer.in_size, layer.in_size),
        dtype=dtype,
    )


#: the part that prices one addition of a node's sum: node 1 = x, node 3 = x + x
ADDITION = ("skip_connect", "none", "none", "skip_connect", "skip_connect", "none")


def cell_parts(layer: LayerShape) -> list[LayerShape]:
    """The parts of a cell layer (module docstring): its live edges, then its additions."""
    cell = layer.spec
    edges = cell.live_edges()
    parts = [NB201Cell(cell.out_channels, ("none",) * 3 + (op,) + ("none",) * 2)
             for _, _, op in edges]
    targets = [target for _, target, _ in edges]
    additions = sum(max(targets.count(node) - 1, 0) for node in (1, 2, 3))
    parts += [NB201Cell(cell.out_channels, ADDITION)] * additions
    return [LayerShape(layer.name, part, layer.in_channels, layer.in_size, layer.out_channels,
                       layer.out_size) for part in parts]


def layer_keys(layer: LayerShape, dtype: str = "float32") -> list[OpKey]:
    """The keys whose latencies add up to one layer's: the layer's own key, or a cell's parts'
    (none for a cell whose output no edge reaches: it returns zeros)."""
    if isinstance(layer.spec, NB201Cell) and not _is_part(layer.spec):
        return [key_of_layer(part, dtype) for part in cell_parts(layer)]
    return [key_of_layer(layer, dtype)]


def _is_part(cell: NB201Cell) -> bool:
    """A cell that is its own part: the addition, or one operation on the edge 0 -> 3."""
    return cell.ops == ADDITION or (cell.ops[:3] + cell.ops[4:] == ("none",) * 5
                                    and cell.ops[3] != "none")


def op_keys(arch: ArchSpec, dtype: str = "float32") -> list[OpKey]:
    """The keys of every layer of ``arch`` in walk order (stem, blocks..., head), a cell's
    parts in its place."""
    return [key for layer in walk(arch) for key in layer_keys(layer, dtype)]


def space_keys(space: Any, dtype: str = "float32") -> list[OpKey]:
    """The unique keys of a space's layers (first-seen order of ``unique_layer_shapes``)."""
    return list(dict.fromkeys(key for layer in space.unique_layer_shapes()
                              for key in layer_keys(layer, dtype)))
