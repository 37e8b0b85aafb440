"""Architecture specs: frozen, validated, JSON-able descriptions of a ConvNet.

An :class:`ArchSpec` is the one value that every part of hwnas passes around: search spaces
produce it, the builder turns it into an ``nn.Module``, cost models price it, results store it.

A network is ``stem -> blocks -> head -> global average pool -> (dropout) -> fully connected``:

* the stem is a ``k x k`` conv (stride s) + BN + activation (``none``: no activation);
* each block is one of the block types below, applied in order;
* the head is a 1x1 conv + BN + activation to ``head.out_channels`` channels, or, with
  ``conv: false``, BN + activation on the last block's ``out_channels`` (NAS-Bench-201's
  ``lastact``).

Block types (fields in order; every field is required in the JSON form):

``fbnet``   FBNet block (Wu et al. 2019, Table 2): 1x1 group conv (g) -> BN -> ReLU ->
            channel shuffle (g > 1) -> k x k depthwise (stride s) -> BN -> ReLU ->
            1x1 group conv (g) -> BN, residual when s == 1 and Cin == Cout. The hidden width is
            ``expansion * Cin``. ``first_pointwise=False`` is only allowed with expansion 1 and
            drops the first 1x1 conv (mobile-vision v2 semantics; paper, Caffe2 and timm keep it).
``skip``    identity when the shape is kept, else 1x1 conv (stride s) + BN + ReLU.
``k3sep``   the cascaded double-depthwise block of the released FBNet-B/C: 1x1 -> BN -> ReLU ->
            DW3x3 (stride s) -> BN -> ReLU -> DW3x3 -> BN -> ReLU -> 1x1 -> BN (+ residual).
``mbv2``    MobileNetV2 inverted residual (Sandler et al. 2018) with ReLU6; no expansion conv when
            the expansion is 1.
``nb201cell`` a NAS-Bench-201 cell (Dong & Yang 2020, Sec. 2.1) at ``out_channels`` channels and
            stride 1: nodes 0..3, node ``i`` the sum of ``op(node j)`` over its edges ``j -> i``,
            the output node 3; ``ops`` names the 6 edges' operations in the official string's
            order (0->1, 0->2, 1->2, 0->3, 1->3, 2->3), each one of :data:`CELL_OPERATIONS`:
            ``none`` (the edge is absent), ``skip_connect`` (identity), ``nor_conv_1x1`` /
            ``nor_conv_3x3`` (ReLU -> conv -> BN), ``avg_pool_3x3`` (stride 1, padding 1, padded
            positions not counted). The input must have ``out_channels`` channels.
``resnet``  the residual block NAS-Bench-201 reduces with (He et al. 2016's basic block):
            ReLU -> conv 3x3 (stride s) -> BN -> ReLU -> conv 3x3 -> BN, plus a shortcut: 2x2
            average pool (stride 2) -> 1x1 conv for s = 2, ReLU -> 1x1 conv -> BN when only the
            width changes, else the identity.

The JSON form names every field; ``head.conv`` may be left out (default true), which is how specs
written before it existed read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Union

from hwnas.arch.codec import decode_arch, encode_arch
from hwnas.errors import SpecError

ACTIVATIONS = ("relu", "relu6")
STEM_ACTIVATIONS = (*ACTIVATIONS, "none")
#: The operations of a NAS-Bench-201 cell edge, in the benchmark's index order.
CELL_OPERATIONS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
CELL_EDGES = 6
#: (source node, target node) of each cell edge, in the order of the official NB201 string
CELL_EDGE_NODES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def _check_int(where: str, name: str, value: Any, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{where}: field '{name}' must be an integer, got {value!r}")
    if value < minimum:
        raise SpecError(f"{where}: field '{name}' must be >= {minimum}, got {value!r}")


def _check_stride(where: str, value: Any) -> None:
    _check_int(where, "stride", value)
    if value not in (1, 2):
        raise SpecError(f"{where}: field 'stride' must be 1 or 2, got {value!r}")


def _check_kernel(where: str, value: Any) -> None:
    _check_int(where, "kernel_size", value)
    if value % 2 == 0:
        raise SpecError(f"{where}: field 'kernel_size' must be odd, got {value!r}")


def _check_expansion(where: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{where}: field 'expansion' must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise SpecError(f"{where}: field 'expansion' must be a positive finite number, "
                        f"got {value!r}")


def _check_bool(where: str, name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"{where}: field '{name}' must be true or false, got {value!r}")


def _check_activation(where: str, value: Any, allowed: tuple[str, ...] = ACTIVATIONS) -> None:
    if value not in allowed:
        raise SpecError(f"{where}: field 'activation' must be one of {allowed}, got {value!r}")


def hidden_channels(in_channels: int, expansion: float) -> int:
    """Width of the expanded (depthwise) part of a block: ``round(expansion * in_channels)``.

    No rounding to a divisor: mobile-vision's FBNet builder uses ``width_divisor=1`` and the
    released FBNet MAC counts only match with exact widths (e.g. 112 * 3 = 336).
    """
    return int(round(expansion * in_channels))


def _normalise_number(value: float) -> float | int:
    """Store integral expansions as ints so JSON and the string form stay canonical."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _Spec:
    """Shared JSON helpers: strict ``from_dict`` (no missing or extra fields)."""

    type_name: ClassVar[str] = ""
    #: fields the JSON form may leave out (their defaults apply): fields added later
    optional: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        data = {field.name: getattr(self, field.name)
                for field in fields(self)}  # type: ignore[arg-type]
        if self.type_name:
            return {"type": self.type_name, **data}
        return data

    @classmethod
    def _kwargs_from_dict(cls, data: Any, where: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise SpecError(f"{where}: expected an object, got {data!r}")
        names = [field.name for field in fields(cls)]  # type: ignore[arg-type]
        given = {key: value for key, value in data.items() if key != "type"}
        missing = [name for name in names if name not in given and name not in cls.optional]
        extra = [key for key in given if key not in names]
        if missing:
            raise SpecError(f"{where}: missing field '{missing[0]}'")
        if extra:
            raise SpecError(f"{where}: unknown field '{extra[0]}' = {given[extra[0]]!r}")
        return given


@dataclass(frozen=True)
class FBNetBlock(_Spec):
    """FBNet candidate block (see module docstring)."""

    type_name: ClassVar[str] = "fbnet"
    out_channels: int
    stride: int
    kernel_size: int
    expansion: float
    groups: int = 1
    first_pointwise: bool = True

    def __post_init__(self) -> None:
        where = "fbnet block"
        _check_int(where, "out_channels", self.out_channels)
        _check_stride(where, self.stride)
        _check_kernel(where, self.kernel_size)
        _check_expansion(where, self.expansion)
        object.__setattr__(self, "expansion", _normalise_number(self.expansion))
        _check_int(where, "groups", self.groups)
        _check_bool(where, "first_pointwise", self.first_pointwise)
        if self.out_channels % self.groups:
            raise SpecError(
                f"{where}: out_channels {self.out_channels} not divisible by groups {self.groups}"
            )
        if not self.first_pointwise and self.expansion != 1:
            raise SpecError(
                f"{where}: first_pointwise=false needs expansion 1, got {self.expansion!r}"
            )


@dataclass(frozen=True)
class SkipBlock(_Spec):
    """Identity, or a 1x1 conv (stride s) + BN + ReLU projection when the shape changes."""

    type_name: ClassVar[str] = "skip"
    out_channels: int
    stride: int

    def __post_init__(self) -> None:
        _check_int("skip block", "out_channels", self.out_channels)
        _check_stride("skip block", self.stride)


@dataclass(frozen=True)
class K3SepBlock(_Spec):
    """Cascaded double-depthwise block of the released FBNet-B/C (not in the 9-op space)."""

    type_name: ClassVar[str] = "k3sep"
    out_channels: int
    stride: int
    expansion: float

    def __post_init__(self) -> None:
        _check_int("k3sep block", "out_channels", self.out_channels)
        _check_stride("k3sep block", self.stride)
        _check_expansion("k3sep block", self.expansion)
        object.__setattr__(self, "expansion", _normalise_number(self.expansion))


@dataclass(frozen=True)
class MBV2Block(_Spec):
    """MobileNetV2 inverted residual with ReLU6 (Sandler et al. 2018, Table 1)."""

    type_name: ClassVar[str] = "mbv2"
    out_channels: int
    stride: int
    kernel_size: int
    expansion: float

    def __post_init__(self) -> None:
        _check_int("mbv2 block", "out_channels", self.out_channels)
        _check_stride("mbv2 block", self.stride)
        _check_kernel("mbv2 block", self.kernel_size)
        _check_expansion("mbv2 block", self.expansion)
        object.__setattr__(self, "expansion", _normalise_number(self.expansion))


@dataclass(frozen=True)
class NB201Cell(_Spec):
    """A NAS-Bench-201 cell (see module docstring); its stride is always 1."""

    type_name: ClassVar[str] = "nb201cell"
    out_channels: int
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_int("nb201cell block", "out_channels", self.out_channels)
        ops = self.ops
        if not isinstance(ops, (list, tuple)) or len(ops) != CELL_EDGES:
            raise SpecError(f"nb201cell block: field 'ops' must list {CELL_EDGES} operations, "
                            f"got {ops!r}")
        for op in ops:
            if op not in CELL_OPERATIONS:
                raise SpecError(f"nb201cell block: unknown operation {op!r} (known: "
                                f"{', '.join(CELL_OPERATIONS)})")
        object.__setattr__(self, "ops", tuple(ops))

    @property
    def stride(self) -> int:
        return 1

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "out_channels": self.out_channels,
                "ops": list(self.ops)}

    def live_edges(self) -> tuple[tuple[int, int, str], ...]:
        """``(source, target, op)`` of the edges that shape the output: not ``none``, from a
        node the input reaches, into a node that reaches the output (node 3). The others
        compute nothing the cell returns (a node no edge reaches is zeros)."""
        edges = [(source, target, op) for (source, target), op in zip(CELL_EDGE_NODES, self.ops)
                 if op != "none"]
        reached = {0}
        for source, target, _ in edges:  # edges are in topological order of their targets
            if source in reached:
                reached.add(target)
        reaching = {3}
        for source, target, _ in reversed(edges):
            if target in reaching:
                reaching.add(source)
        return tuple(edge for edge in edges if edge[0] in reached and edge[1] in reaching)


@dataclass(frozen=True)
class ResidualBlock(_Spec):
    """NAS-Bench-201's reduction block, a ResNet basic block (see module docstring)."""

    type_name: ClassVar[str] = "resnet"
    out_channels: int
    stride: int

    def __post_init__(self) -> None:
        _check_int("resnet block", "out_channels", self.out_channels)
        _check_stride("resnet block", self.stride)


Block = Union[FBNetBlock, SkipBlock, K3SepBlock, MBV2Block, NB201Cell, ResidualBlock]
BLOCK_TYPES: dict[str, type] = {
    cls.type_name: cls
    for cls in (FBNetBlock, SkipBlock, K3SepBlock, MBV2Block, NB201Cell, ResidualBlock)
}


def block_from_dict(data: Any, where: str = "block") -> Block:
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected an object, got {data!r}")
    type_name = data.get("type")
    if type_name not in BLOCK_TYPES:
        raise SpecError(
            f"{where}: unknown block type {type_name!r} (known: {', '.join(BLOCK_TYPES)})"
        )
    cls = BLOCK_TYPES[type_name]
    kwargs = cls._kwargs_from_dict(data, f"{where} ({type_name})")
    try:
        return cls(**kwargs)
    except SpecError as error:
        raise SpecError(f"{where}: {error}") from None


@dataclass(frozen=True)
class StemSpec(_Spec):
    """First layer: k x k conv (stride s) + BN + activation."""

    out_channels: int
    stride: int
    kernel_size: int = 3
    activation: str = "relu"

    def __post_init__(self) -> None:
        _check_int("stem", "out_channels", self.out_channels)
        _check_stride("stem", self.stride)
        _check_kernel("stem", self.kernel_size)
        _check_activation("stem", self.activation, STEM_ACTIVATIONS)


@dataclass(frozen=True)
class HeadSpec(_Spec):
    """Last layers: 1x1 conv + BN + activation (``conv=False``: BN + activation only, at the input
    width), global average pool, dropout, linear classifier."""

    optional: ClassVar[tuple[str, ...]] = ("conv",)
    out_channels: int
    num_classes: int
    activation: str = "relu"
    dropout: float = 0.0
    conv: bool = True

    def __post_init__(self) -> None:
        _check_bool("head", "conv", self.conv)
        _check_int("head", "out_channels", self.out_channels)
        _check_int("head", "num_classes", self.num_classes)
        _check_activation("head", self.activation)
        value = self.dropout
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and 0 <= value < 1
        ):
            raise SpecError(f"head: field 'dropout' must be in [0, 1), got {value!r}")
        object.__setattr__(self, "dropout", float(value))

    def to_dict(self) -> dict[str, Any]:
        """``conv`` only when false: a head with its conv has the form (and LUT key) it had
        before the field existed."""
        data = super().to_dict()
        if self.conv:
            del data["conv"]
        return data


@dataclass(frozen=True)
class ArchSpec:
    """A whole network. Hashable, comparable, and round-trips through JSON and the string form."""

    resolution: int
    stem: StemSpec
    blocks: tuple[Block, ...]
    head: HeadSpec
    in_channels: int = 3

    def __post_init__(self) -> None:
        _check_int("arch", "resolution", self.resolution)
        _check_int("arch", "in_channels", self.in_channels)
        if not isinstance(self.stem, StemSpec):
            raise SpecError(f"arch: field 'stem' must be a StemSpec, got {self.stem!r}")
        if not isinstance(self.head, HeadSpec):
            raise SpecError(f"arch: field 'head' must be a HeadSpec, got {self.head!r}")
        blocks = tuple(self.blocks)
        for index, block in enumerate(blocks):
            if not isinstance(block, tuple(BLOCK_TYPES.values())):
                raise SpecError(f"arch: blocks[{index}] is not a block spec: {block!r}")
        object.__setattr__(self, "blocks", blocks)
        self._check_groups()
        self._check_widths()

    def _check_widths(self) -> None:
        """A cell keeps its input width; a head without a conv keeps the last block's."""
        channels = self.stem.out_channels
        for index, block in enumerate(self.blocks):
            if isinstance(block, NB201Cell) and block.out_channels != channels:
                raise SpecError(f"blocks[{index}] (nb201cell): out_channels "
                                f"{block.out_channels} must equal its input's {channels}")
            channels = block.out_channels
        if not self.head.conv and self.head.out_channels != channels:
            raise SpecError(f"head: without a conv, out_channels {self.head.out_channels} must "
                            f"equal the last block's {channels}")

    def _check_groups(self) -> None:
        """Group convs need both their input and output widths divisible by the groups."""
        channels = self.stem.out_channels
        for index, block in enumerate(self.blocks):
            if isinstance(block, FBNetBlock) and block.groups > 1:
                mid = hidden_channels(channels, block.expansion)
                for name, width in (("input channels", channels), ("hidden channels", mid)):
                    if width % block.groups:
                        raise SpecError(
                            f"blocks[{index}] (fbnet): {name} {width} not divisible by "
                            f"groups {block.groups}"
                        )
            channels = block.out_channels

    # ---- JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "resolution": self.resolution,
            "in_channels": self.in_channels,
            "stem": self.stem.to_dict(),
            "blocks": [block.to_dict() for block in self.blocks],
            "head": self.head.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ArchSpec:
        if not isinstance(data, dict):
            raise SpecError(f"arch: expected an object, got {data!r}")
        expected = ("resolution", "in_channels", "stem", "blocks", "head")
        for name in expected:
            if name not in data:
                raise SpecError(f"arch: missing field '{name}'")
        for name in data:
            if name not in expected:
                raise SpecError(f"arch: unknown field '{name}' = {data[name]!r}")
        if not isinstance(data["blocks"], list):
            raise SpecError(f"arch: field 'blocks' must be a list, got {data['blocks']!r}")
        return cls(
            resolution=data["resolution"],
            in_channels=data["in_channels"],
            stem=StemSpec(**StemSpec._kwargs_from_dict(data["stem"], "stem")),
            blocks=tuple(
                block_from_dict(item, f"blocks[{index}]")
                for index, item in enumerate(data["blocks"])
            ),
            head=HeadSpec(**HeadSpec._kwargs_from_dict(data["head"], "head")),
        )

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> ArchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(f"arch: not valid JSON ({error})") from None
        except RecursionError:
            raise SpecError("arch: JSON nested too deeply to read") from None
        except ValueError as error:  # an integer of more digits than Python converts
            raise SpecError(f"arch: a value cannot be read ({str(error)[:80]})") from None
        return cls.from_dict(data)

    # ---- compact string -----------------------------------------------------------------
    def to_string(self) -> str:
        """The compact string form (:mod:`hwnas.arch.codec`)."""
        return encode_arch(self.to_dict())

    @classmethod
    def from_string(cls, text: str) -> ArchSpec:
        """Parse the compact string form; raises :class:`SpecError` naming the bad part."""
        return cls.from_dict(decode_arch(text))

    @property
    def num_classes(self) -> int:
        return self.head.num_classes
