"""The compact string form of an :class:`~hwnas.arch.spec.ArchSpec`, to and from its JSON form.

The codec reads and writes the JSON objects of :meth:`ArchSpec.to_dict` (so it needs no spec
class, and ``ArchSpec.to_string`` / ``from_string`` validate through ``from_dict``).

A network is its parts joined by ``:``::

    r32:stem_k3_c16_s1:ir_k3_e1_c16_s1:skip_c24_s1:ir_k5_e6_g1_c32_s2:...:head_c1504_n10

Each part is a code followed by ``_``-separated fields; a field is one letter and a number, or a
flag word. Every code and field is listed here and nowhere else:

=========  =====================================  ==========================================
part       form                                   meaning
=========  =====================================  ==========================================
input      ``r{res}[_i{ch}]``                     input resolution; input channels (default 3)
stem       ``stem_k{k}_c{c}_s{s}[_relu6|_noact]`` conv k x k, c channels, stride s
fbnet      ``ir_k{k}_e{e}[_g{g}]_c{c}_s{s}[_nopw]`` FBNet block; ``nopw`` drops the first 1x1
skip       ``skip_c{c}_s{s}``                     identity or 1x1 projection
k3sep      ``sep_e{e}_c{c}_s{s}``                 cascaded double-depthwise 3x3 block
mbv2       ``mb_k{k}_e{e}_c{c}_s{s}``             MobileNetV2 inverted residual (ReLU6)
nb201cell  ``cell_c{c}_{ops}``                    NAS-Bench-201 cell; ops: 6 letters, below
resnet     ``res_c{c}_s{s}``                      ResNet basic block (NB201's reduction)
head       ``head_c{c}_n{classes}[_relu6][_d{p}][_noconv]`` 1x1 conv to c (``noconv``: none),
                                                  classifier, dropout p
=========  =====================================  ==========================================

Letters: k kernel, e expansion, g groups (omitted when 1), c output channels, s stride,
n classes, d dropout (omitted when 0), r resolution, i input channels (omitted when 3).
A cell's ops are one letter per edge in the official string's edge order: ``n`` none, ``s``
skip_connect, ``1`` nor_conv_1x1, ``3`` nor_conv_3x3, ``p`` avg_pool_3x3 (``cell_c16_3s13np``).
Numbers are integers, or the shortest float that reads back exactly. ``decode(encode(a)) == a``.
"""

from __future__ import annotations

import re

from typing import Any

from hwnas.errors import SpecError

_FIELD = re.compile(r"^([a-z])(-?[0-9][0-9.e+-]*|nan|inf)$")
_FLAGS = ("nopw", "relu6", "noact", "noconv")
#: one letter per NB201 cell operation (order of hwnas.arch.spec.CELL_OPERATIONS)
CELL_LETTERS = {"none": "n", "skip_connect": "s", "nor_conv_1x1": "1", "nor_conv_3x3": "3",
                "avg_pool_3x3": "p"}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _encode_block(block: dict[str, Any]) -> str:
    kind = block["type"]
    if kind == "nb201cell":
        return f"cell_c{block['out_channels']}_" + "".join(CELL_LETTERS[op] for op in block["ops"])
    shape = f"_c{block['out_channels']}_s{block['stride']}"
    if kind == "fbnet":
        groups = f"_g{block['groups']}" if block["groups"] != 1 else ""
        flag = "" if block["first_pointwise"] else "_nopw"
        return f"ir_k{block['kernel_size']}_e{_number(block['expansion'])}{groups}{shape}{flag}"
    if kind == "skip":
        return f"skip{shape}"
    if kind == "k3sep":
        return f"sep_e{_number(block['expansion'])}{shape}"
    if kind == "mbv2":
        return f"mb_k{block['kernel_size']}_e{_number(block['expansion'])}{shape}"
    if kind == "resnet":
        return f"res{shape}"
    raise SpecError(f"cannot encode block {block!r}")


def encode_arch(arch: dict[str, Any]) -> str:
    """The compact string of an architecture's JSON form (grammar in the module docstring)."""
    head, stem = arch["head"], arch["stem"]
    parts = [f"r{arch['resolution']}"
             + ("" if arch["in_channels"] == 3 else f"_i{arch['in_channels']}")]
    parts.append(f"stem_k{stem['kernel_size']}_c{stem['out_channels']}_s{stem['stride']}"
                 + {"relu6": "_relu6", "none": "_noact"}.get(stem["activation"], ""))
    parts.extend(_encode_block(block) for block in arch["blocks"])
    parts.append(f"head_c{head['out_channels']}_n{head['num_classes']}"
                 + ("_relu6" if head["activation"] == "relu6" else "")
                 + (f"_d{_number(head['dropout'])}" if head["dropout"] else "")
                 + ("" if head.get("conv", True) else "_noconv"))
    return ":".join(parts)


def _parse_value(part: str, letter: str, text: str) -> int | float:
    try:
        number = float(text)
    except ValueError:
        raise SpecError(f"part {part!r}: field '{letter}' has a bad number {text!r}") from None
    if number.is_integer() and re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return number


def _parse_part(part: str) -> tuple[str, dict[str, int | float], set[str]]:
    """Split ``ir_k3_e6_c24_s2`` into ("ir", {"k": 3, ...}, flags)."""
    code, *tokens = part.split("_")
    values: dict[str, int | float] = {}
    flags: set[str] = set()
    for token in tokens:
        if token in _FLAGS:
            flags.add(token)
            continue
        match = _FIELD.match(token)
        if not match:
            raise SpecError(f"part {part!r}: unknown field {token!r}")
        letter, text = match.groups()
        if letter in values:
            raise SpecError(f"part {part!r}: field '{letter}' given twice")
        values[letter] = _parse_value(part, letter, text)
    return code, values, flags


def _take(part: str, values: dict, flags: set, required: str, optional: dict, allowed_flags=()):
    """Check the letters of a part against what its code allows and return them in order."""
    for letter in values:
        if letter not in required and letter not in optional:
            raise SpecError(f"part {part!r}: field '{letter}' is not allowed here")
    for flag in flags:
        if flag not in allowed_flags:
            raise SpecError(f"part {part!r}: flag {flag!r} is not allowed here")
    missing = [letter for letter in required if letter not in values]
    if missing:
        raise SpecError(f"part {part!r}: missing field '{missing[0]}'")
    return {**optional, **values}


def _decode_cell(part: str) -> dict[str, Any]:
    """``cell_c16_3s13np``: the ops word is no letter-number field, so it is read apart."""
    code, *tokens = part.split("_")
    word = tokens.pop() if tokens else ""
    letters = {letter: op for op, letter in CELL_LETTERS.items()}
    if len(word) != 6 or any(letter not in letters for letter in word):
        raise SpecError(f"part {part!r}: a cell ends with 6 op letters out of "
                        f"{''.join(letters)} (n none, s skip, 1/3 conv, p pool), got {word!r}")
    _, values, flags = _parse_part("_".join([code, *tokens]))
    v = _take(part, values, flags, "c", {})
    return {"type": "nb201cell", "out_channels": v["c"], "ops": [letters[c] for c in word]}


def _decode_block(part: str) -> dict[str, Any]:
    if part.split("_", 1)[0] == "cell":
        return _decode_cell(part)
    code, values, flags = _parse_part(part)
    if code == "ir":
        v = _take(part, values, flags, "kecs", {"g": 1}, ("nopw",))
        return {"type": "fbnet", "out_channels": v["c"], "stride": v["s"], "kernel_size": v["k"],
                "expansion": v["e"], "groups": v["g"], "first_pointwise": "nopw" not in flags}
    if code == "skip":
        v = _take(part, values, flags, "cs", {})
        return {"type": "skip", "out_channels": v["c"], "stride": v["s"]}
    if code == "sep":
        v = _take(part, values, flags, "ecs", {})
        return {"type": "k3sep", "out_channels": v["c"], "stride": v["s"], "expansion": v["e"]}
    if code == "mb":
        v = _take(part, values, flags, "kecs", {})
        return {"type": "mbv2", "out_channels": v["c"], "stride": v["s"], "kernel_size": v["k"],
                "expansion": v["e"]}
    if code == "res":
        v = _take(part, values, flags, "cs", {})
        return {"type": "resnet", "out_channels": v["c"], "stride": v["s"]}
    raise SpecError(f"unknown block code {code!r} in part {part!r} "
                    f"(known: ir, skip, sep, mb, cell, res)")


def decode_arch(text: str) -> dict[str, Any]:
    """Parse the compact string form into the JSON form; a syntax error raises
    :class:`SpecError` naming the bad part (values are checked by ``ArchSpec.from_dict``)."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"arch string is empty or not a string: {text!r}")
    parts = text.strip().split(":")
    if len(parts) < 3:
        raise SpecError(f"arch string needs at least input, stem and head parts: {text!r}")
    code, values, flags = _parse_part(parts[0])
    if code[:1] != "r" or not code[1:].isdigit():
        raise SpecError(f"first part must be the input 'r<resolution>', got {parts[0]!r}")
    resolution = int(code[1:])
    inputs = _take(parts[0], values, flags, "", {"i": 3})
    code, values, stem_flags = _parse_part(parts[1])
    if code != "stem":
        raise SpecError(f"second part must be the stem 'stem_k3_c16_s2', got {parts[1]!r}")
    stem = _take(parts[1], values, stem_flags, "kcs", {}, ("relu6", "noact"))
    if {"relu6", "noact"} <= stem_flags:
        raise SpecError(f"part {parts[1]!r}: flags 'relu6' and 'noact' exclude each other")
    code, values, head_flags = _parse_part(parts[-1])
    if code != "head":
        raise SpecError(f"last part must be the head 'head_c1504_n10', got {parts[-1]!r}")
    head = _take(parts[-1], values, head_flags, "cn", {"d": 0.0}, ("relu6", "noconv"))
    return {
        "resolution": resolution, "in_channels": inputs["i"],
        "stem": {"out_channels": stem["c"], "stride": stem["s"], "kernel_size": stem["k"],
                 "activation": "relu6" if "relu6" in stem_flags else
                 "none" if "noact" in stem_flags else "relu"},
        "blocks": [_decode_block(part) for part in parts[2:-1]],
        "head": {"out_channels": head["c"], "num_classes": head["n"],
                 "activation": "relu6" if "relu6" in head_flags else "relu",
                 "dropout": head["d"], "conv": "noconv" not in head_flags},
    }
