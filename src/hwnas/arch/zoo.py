"""Named reference architectures (MobileNetV2, the released FBNets and ChamNets) as ArchSpecs.

Every function returns a plain :class:`~hwnas.arch.spec.ArchSpec`; ``get_model_spec(name)`` looks
one up by the names in :data:`MODEL_NAMES`. The tables below are the published layer tables,
written as data; the docstring of each function cites its source and says what differs from it.
Dropout is a keyword everywhere because it changes training only, never MACs or parameters.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable

from hwnas.arch.spec import (
    ArchSpec,
    Block,
    FBNetBlock,
    HeadSpec,
    K3SepBlock,
    MBV2Block,
    SpecError,
    StemSpec,
)
from hwnas.errors import HwnasError
from hwnas.spaces.fbnet import candidate_block, fbnet_space

# MobileNetV2 (Sandler et al. 2018, Table 1): [t, c, n, s] = expansion, channels, repeats, stride.
MOBILENET_V2_GROUPS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# ChamNet keeps MobileNetV2's seven bottleneck groups and their strides.
CHAMNET_STRIDES = tuple(stride for _, _, _, stride in MOBILENET_V2_GROUPS)


# ---- MobileNetV2 and ChamNet: stacks of MobileNetV2 inverted residuals ----------------------


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` (at least ``divisor``), bumping up
    one step when rounding down would lose more than 10 % -- the rounding of the MobileNetV2
    release that every reimplementation uses for width multipliers."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _inverted_residual_blocks(
    groups: tuple[tuple[int, int, int], ...], strides: tuple[int, ...]
) -> tuple[Block, ...]:
    """Blocks of (channels, repeats, expansion) groups; only a group's first block is strided."""
    blocks: list[Block] = []
    for (channels, repeats, expansion), stride in zip(groups, strides, strict=True):
        for position in range(repeats):
            blocks.append(
                MBV2Block(
                    out_channels=channels,
                    stride=stride if position == 0 else 1,
                    kernel_size=3,
                    expansion=expansion,
                )
            )
    return tuple(blocks)


def _check_dropout(dropout: Any) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
        math.isfinite(dropout) and 0 <= dropout < 1
    ):
        raise HwnasError(f"dropout must be a number in [0, 1), got {dropout!r}")
    return float(dropout)


def mobilenet_v2(
    *,
    width_multiplier: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    dropout: float = 0.2,
) -> ArchSpec:
    """MobileNetV2 (Sandler et al., CVPR 2018, Table 1): stem 3x3 conv 32 s2, the seven
    bottleneck groups of :data:`MOBILENET_V2_GROUPS` (3x3 depthwise, ReLU6), 1x1 conv 1280 head.

    Widths (stem, groups) are ``make_divisible(c * width_multiplier, 8)``; the head is
    ``make_divisible(1280 * max(1, width_multiplier), 8)``: the paper keeps the last layer at
    1280 for multipliers below one. At 1.0 and 224 px this is 300.8 M MACs (paper: 300 M) and
    3,504,872 parameters (BN included; torchvision's count); 1.4 / 0.5 / 0.35 give 582 / 97 /
    59 M MACs, the TF-slim release's figures. Differences from the paper's graph: none; dropout
    0.2 before the classifier follows the torchvision and TF-slim releases.
    """
    return _mobilenet_v2(width_multiplier, resolution, num_classes, dropout, 2, CHAMNET_STRIDES)


#: Stem and group strides of the CIFAR setting: those of the FBNet CIFAR space (HW-NAS-Bench),
#: so 32 px inputs end at 4x4 like the searched networks.
CIFAR_STEM_STRIDE = 1
CIFAR_GROUP_STRIDES = (1, 1, 2, 2, 1, 2, 1)


def mobilenet_v2_cifar(
    *, width_multiplier: float = 1.0, num_classes: int = 10, dropout: float = 0.2
) -> ArchSpec:
    """MobileNetV2 (Sandler et al., CVPR 2018) for 32 px CIFAR inputs: the network of
    :func:`mobilenet_v2` with stem stride 1 and group strides 1/1/2/2/1/2/1 (the FBNet CIFAR
    setting of HW-NAS-Bench), the usual CIFAR adaptation (ImageNet strides would shrink 32 px to
    1x1). It is the baseline searched CIFAR networks are compared with.

    Differences from the paper: only those strides (and 32 px, 10 classes).
    """
    return _mobilenet_v2(
        width_multiplier, 32, num_classes, dropout, CIFAR_STEM_STRIDE, CIFAR_GROUP_STRIDES
    )


def _mobilenet_v2(
    width_multiplier: float,
    resolution: int,
    num_classes: int,
    dropout: float,
    stem_stride: int,
    group_strides: tuple[int, ...],
) -> ArchSpec:
    if isinstance(width_multiplier, bool) or not isinstance(width_multiplier, (int, float)) or not (
        math.isfinite(width_multiplier) and width_multiplier > 0
    ):
        raise HwnasError(f"width_multiplier must be a positive number, got {width_multiplier!r}")
    groups = tuple(
        (make_divisible(channels * width_multiplier), repeats, expansion)
        for expansion, channels, repeats, _ in MOBILENET_V2_GROUPS
    )
    return ArchSpec(
        resolution=resolution,
        stem=StemSpec(
            out_channels=make_divisible(32 * width_multiplier), stride=stem_stride, kernel_size=3,
            activation="relu6",
        ),
        blocks=_inverted_residual_blocks(groups, group_strides),
        head=HeadSpec(
            out_channels=make_divisible(1280 * max(1.0, width_multiplier)),
            num_classes=num_classes, activation="relu6", dropout=_check_dropout(dropout),
        ),
    )


# ChamNet (Dai et al., CVPR 2019), decoded from the released Caffe2 graphs (docs/reference.md
# section 2): resolution, stem width, seven (channels, repeats, expansion) groups, head width.
CHAMNET_TABLES: dict[str, tuple[int, int, tuple[tuple[int, int, int], ...], int]] = {
    "a": (224, 32, ((24, 1, 1), (40, 2, 4), (48, 3, 6), (96, 4, 4), (160, 3, 4), (248, 3, 4),
                    (480, 1, 6)), 2016),
    "b": (192, 24, ((16, 1, 1), (40, 2, 5), (40, 3, 6), (92, 3, 6), (104, 3, 6), (200, 3, 5),
                    (384, 1, 6)), 1984),
    "c": (224, 16, ((16, 1, 1), (24, 1, 4), (32, 3, 4), (64, 2, 5), (96, 3, 6), (160, 3, 6),
                    (256, 1, 4)), 1520),
    "d": (192, 8, ((8, 1, 1), (24, 1, 6), (32, 2, 4), (40, 4, 6), (80, 3, 6), (160, 3, 5),
                   (224, 1, 6)), 1600),
    # The summary's odd row "64x4 e6 (1+3)": one 64-wide block in the stride-2 group 4 and three
    # more in the stride-1 group 5 (see chamnet_e).
    "e": (160, 8, ((8, 1, 1), (24, 1, 4), (32, 3, 4), (64, 1, 6), (64, 3, 6), (96, 2, 6),
                   (128, 1, 4)), 1600),
    "f": (128, 8, ((8, 1, 1), (24, 1, 4), (32, 3, 4), (40, 1, 4), (64, 3, 4), (128, 2, 4),
                   (192, 1, 4)), 1280),
}


def _chamnet(letter: str, num_classes: int, dropout: float, first_pointwise: bool) -> ArchSpec:
    if not isinstance(first_pointwise, bool):
        raise HwnasError(f"first_pointwise must be true or false, got {first_pointwise!r}")
    resolution, stem_channels, groups, head_channels = CHAMNET_TABLES[letter]
    blocks = _inverted_residual_blocks(groups, CHAMNET_STRIDES)
    if first_pointwise:
        # The released graphs are FBNet-builder "ir_k3" blocks, whose e=1 block keeps its 1x1
        # conv (MobileNetV2 drops it); only an FBNet block can say so. It is the stem-width ->
        # stem-width 1x1 at stride 2 resolution, e.g. 12.8 M of ChamNet-A's 552.9 M MACs.
        first = blocks[0]
        blocks = (
            FBNetBlock(out_channels=first.out_channels, stride=first.stride, kernel_size=3,
                       expansion=1, first_pointwise=True),
            *blocks[1:],
        )
    return ArchSpec(
        resolution=resolution,
        stem=StemSpec(out_channels=stem_channels, stride=2, kernel_size=3, activation="relu6"),
        blocks=blocks,
        head=HeadSpec(
            out_channels=head_channels, num_classes=num_classes, activation="relu6",
            dropout=_check_dropout(dropout),
        ),
    )


# Shared by the six ChamNet docstrings: source, semantics and what differs from the release.
_CHAMNET_NOTES = """Source: Dai et al., CVPR 2019, as released in Caffe2 (mobile-vision 4826a08
    ``ChamNet/models``; same tables in ``fbnet_modeldef_cls_chamnet.py`` @bfe163f; summary in
    docs/reference.md section 2). MobileNetV2 blocks with 3x3 depthwise and ReLU6, stem 3x3
    s2, group strides 1, 2, 2, 2, 1, 2, 1 as MobileNetV2. With ``first_pointwise`` (default)
    the first, e=1 block keeps its 1x1 conv as in the released graph; it is then an ``fbnet``
    block (ReLU in that block); ``first_pointwise=False`` gives the pure MobileNetV2 stack.
    Differences from the release: BN is a separate layer (folded into conv biases there), the
    activation is ReLU6 (the release's FBNet builder may use ReLU), dropout is ours."""


def chamnet_a(*, num_classes: int = 1000, dropout: float = 0.2,
              first_pointwise: bool = True) -> ArchSpec:
    """ChamNet-A (Dai et al., CVPR 2019; released Caffe2 model): 224 px, stem 32, groups 24x1
    e1, 40x2 e4, 48x3 e6, 96x4 e4, 160x3 e4, 248x3 e4, 480x1 e6, head 2016; published 552.9 M
    MACs.

    {notes}
    """
    return _chamnet("a", num_classes, dropout, first_pointwise)


def chamnet_b(*, num_classes: int = 1000, dropout: float = 0.2,
              first_pointwise: bool = True) -> ArchSpec:
    """ChamNet-B (Dai et al., CVPR 2019; released Caffe2 model): 192 px, stem 24, groups 16x1
    e1, 40x2 e5, 40x3 e6, 92x3 e6, 104x3 e6, 200x3 e5, 384x1 e6, head 1984; published 323.3 M
    MACs. (mobile-vision's PyTorch def says 224 px; the released graph and the MACs are 192 px.)

    {notes}
    """
    return _chamnet("b", num_classes, dropout, first_pointwise)


def chamnet_c(*, num_classes: int = 1000, dropout: float = 0.2,
              first_pointwise: bool = True) -> ArchSpec:
    """ChamNet-C (Dai et al., CVPR 2019; released Caffe2 model): 224 px, stem 16, groups 16x1
    e1, 24x1 e4, 32x3 e4, 64x2 e5, 96x3 e6, 160x3 e6, 256x1 e4, head 1520; published 211.6 M
    MACs.

    {notes}
    """
    return _chamnet("c", num_classes, dropout, first_pointwise)


def chamnet_d(*, num_classes: int = 1000, dropout: float = 0.2,
              first_pointwise: bool = True) -> ArchSpec:
    """ChamNet-D (Dai et al., CVPR 2019; released Caffe2 model): 192 px, stem 8, groups 8x1 e1,
    24x1 e6, 32x2 e4, 40x4 e6, 80x3 e6, 160x3 e5, 224x1 e6, head 1600; published 120.0 M MACs.

    {notes}
    """
    return _chamnet("d", num_classes, dropout, first_pointwise)


def chamnet_e(*, num_classes: int = 1000, dropout: float = 0.2,
              first_pointwise: bool = True) -> ArchSpec:
    """ChamNet-E (Dai et al., CVPR 2019; released Caffe2 model): 160 px, stem 8, groups 8x1 e1,
    24x1 e4, 32x3 e4, 64x1 e6 (s2), 64x3 e6 (s1), 96x2 e6, 128x1 e4, head 1600; published 53.7 M
    MACs. The summary table's row "64x4 e6 (1+3)" is these two groups of the same width
    (``[6, 64, 1, 2], [6, 64, 3, 1]`` in the mobile-vision def), i.e. one 4-block group whose
    first block has stride 2.

    {notes}
    """
    return _chamnet("e", num_classes, dropout, first_pointwise)


def chamnet_f(*, num_classes: int = 1000, dropout: float = 0.2,
              first_pointwise: bool = True) -> ArchSpec:
    """ChamNet-F (Dai et al., CVPR 2019; released Caffe2 model): 128 px, stem 8, groups 8x1 e1,
    24x1 e4, 32x3 e4, 40x1 e4, 64x3 e4, 128x2 e4, 192x1 e4, head 1280; published 30.8 M MACs.

    {notes}
    """
    return _chamnet("f", num_classes, dropout, first_pointwise)


for _function in (chamnet_a, chamnet_b, chamnet_c, chamnet_d, chamnet_e, chamnet_f):
    if _function.__doc__:  # None under python -OO
        _function.__doc__ = _function.__doc__.format(notes=_CHAMNET_NOTES)


# ---- FBNet: the released Caffe2 models -------------------------------------------------------

# The 22 searched positions per stage (docs/reference.md section 1.3, decoded from the released
# Caffe2 graphs, mobile-vision 4826a08). Names are the FBNet space's candidates plus "k3sep_e6".
FBNET_TABLES: dict[str, tuple[tuple[str, ...], ...]] = {
    "a": (
        ("skip",),
        ("k3_e3", "k3_e1", "skip", "skip"),
        ("k5_e6", "k3_e3", "k5_e1", "k3_e3"),
        ("k5_e6", "k5_e3", "k3_e1_g2", "k5_e6"),
        ("k3_e6", "k3_e1_g2", "k5_e3", "k3_e1_g2"),
        ("k5_e6", "k5_e6", "k5_e3", "k5_e6"),
        ("k5_e6",),
    ),
    "b": (
        ("k3_e1",),
        ("k3_e6", "k5_e1", "k3_e1", "k3_e1"),
        ("k5_e6", "k5_e3", "k3_e6", "k3sep_e6"),
        ("k5_e6", "k5_e1", "skip", "k5_e3"),
        ("k5_e6", "k3_e1", "k5_e1", "k5_e3"),
        ("k5_e6", "k5_e1", "k5_e6", "k5_e6"),
        ("k3_e6",),
    ),
    "c": (
        ("k3_e1",),
        ("k3_e6", "skip", "k3_e1", "k3_e1"),
        ("k5_e6", "k5_e3", "k3sep_e6", "k3_e6"),
        ("k5_e6", "k5_e3", "k5_e6", "k5_e6"),
        ("k5_e6", "k3sep_e6", "k5_e6", "k5_e3"),
        ("k5_e6", "k5_e6", "k5_e6", "k5_e6"),
        ("k3_e6",),
    ),
}


def _fbnet_block(name: str, out_channels: int, stride: int) -> Block:
    if name == "k3sep_e6":
        return K3SepBlock(out_channels=out_channels, stride=stride, expansion=6)
    # first_pointwise=True: the Caffe2 graphs keep the first 1x1 conv of e=1 blocks.
    return candidate_block(name, out_channels, stride, first_pointwise=True)


def _fbnet(letter: str, head_channels: int, num_classes: int, resolution: int,
           dropout: float) -> ArchSpec:
    # The macro-architecture (stem 16 s2, stage widths and strides) is the FBNet ImageNet space's.
    space = fbnet_space("imagenet", num_classes=num_classes, head_channels=head_channels)
    names = [name for stage in FBNET_TABLES[letter] for name in stage]
    blocks = tuple(
        _fbnet_block(name, out_channels, stride)
        for name, (out_channels, stride) in zip(names, space.layer_shapes, strict=True)
    )
    return ArchSpec(
        resolution=resolution,
        stem=space.stem,
        blocks=blocks,
        head=HeadSpec(
            out_channels=head_channels, num_classes=num_classes, dropout=_check_dropout(dropout)
        ),
    )


# Shared by the five FBNet docstrings: source, semantics and what differs from the release.
_FBNET_NOTES = """Source: Wu et al., CVPR 2019, as released in Caffe2 (mobile-vision 4826a08
    ``FBNet/models/FBNet-*/fp32``, decoded op by op; table in docs/reference.md section 1.3).
    Stem 3x3 16 s2 and stage widths/strides of the FBNet ImageNet space, ReLU. e=1 blocks keep
    their first 1x1 conv as in the paper and Caffe2 (the mobile-vision PyTorch defs drop it and
    differ in a few choices, hence their fewer MACs); skips that keep the shape are identities.
    Differences from the release: BN is a separate layer (folded into conv biases there) and
    dropout is ours. ``resolution`` other than 224 is a scaled variant, not a released model."""


def fbnet_a(*, num_classes: int = 1000, resolution: int = 224, dropout: float = 0.2) -> ArchSpec:
    """FBNet-A (Wu et al., CVPR 2019; released Caffe2 model): 1504-wide head, group-2 e=1 blocks
    at TBS4.3, TBS5.2 and TBS5.4; published 249.4 M MACs (paper Table 3: 249 M). TBS1 is a skip
    that keeps 16 -> 16, so an identity.

    {notes}
    """
    return _fbnet("a", 1504, num_classes, resolution, dropout)


def fbnet_b(*, num_classes: int = 1000, resolution: int = 224, dropout: float = 0.2) -> ArchSpec:
    """FBNet-B (Wu et al., CVPR 2019; released Caffe2 model): 1984-wide head; the cascaded
    double-depthwise ``k3sep`` block (e=6, not one of the 9 candidates) at TBS3.4; published
    295.6 M MACs (paper Table 3: 295 M).

    {notes}
    """
    return _fbnet("b", 1984, num_classes, resolution, dropout)


def fbnet_c(*, num_classes: int = 1000, resolution: int = 224, dropout: float = 0.2) -> ArchSpec:
    """FBNet-C (Wu et al., CVPR 2019; released Caffe2 model): 1984-wide head; ``k3sep`` blocks
    (e=6) at TBS3.3 and TBS5.2; published 383.0 M MACs (paper Table 3 says 375 M, which is
    FBNet-C1's 374.2 M).

    {notes}
    """
    return _fbnet("c", 1984, num_classes, resolution, dropout)


def fbnet_b1(*, num_classes: int = 1000, resolution: int = 224, dropout: float = 0.2) -> ArchSpec:
    """FBNet-B1 (Wu et al., CVPR 2019; released Caffe2 model): FBNet-B with a 1504-wide head;
    published 286.8 M MACs.

    {notes}
    """
    return _fbnet("b", 1504, num_classes, resolution, dropout)


def fbnet_c1(*, num_classes: int = 1000, resolution: int = 224, dropout: float = 0.2) -> ArchSpec:
    """FBNet-C1 (Wu et al., CVPR 2019; released Caffe2 model): FBNet-C with a 1504-wide head;
    published 374.2 M MACs.

    {notes}
    """
    return _fbnet("c", 1504, num_classes, resolution, dropout)


for _function in (fbnet_a, fbnet_b, fbnet_c, fbnet_b1, fbnet_c1):
    if _function.__doc__:  # None under python -OO
        _function.__doc__ = _function.__doc__.format(notes=_FBNET_NOTES)


# ---- lookup -----------------------------------------------------------------------------------

MODEL_FUNCTIONS: dict[str, Callable[..., ArchSpec]] = {
    function.__name__: function
    for function in (
        mobilenet_v2, mobilenet_v2_cifar, fbnet_a, fbnet_b, fbnet_c, fbnet_b1, fbnet_c1,
        chamnet_a, chamnet_b, chamnet_c, chamnet_d, chamnet_e, chamnet_f,
    )
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_FUNCTIONS)


def get_model_spec(name: str, **options: Any) -> ArchSpec:
    """The reference architecture ``name`` (one of :data:`MODEL_NAMES`) with keyword ``options``,
    e.g. ``get_model_spec("mobilenet_v2", width_multiplier=0.5, resolution=160)``."""
    if not isinstance(name, str) or name not in MODEL_FUNCTIONS:
        raise SpecError(f"unknown model {name!r} (known: {', '.join(MODEL_NAMES)})")
    function = MODEL_FUNCTIONS[name]
    allowed = tuple(inspect.signature(function).parameters)
    for key in options:
        if key not in allowed:
            raise HwnasError(
                f"model {name!r} has no option {key!r} (options: {', '.join(allowed)})"
            )
    return function(**options)
