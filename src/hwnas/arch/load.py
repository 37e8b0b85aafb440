"""Turn what a user types for an architecture into an :class:`ArchSpec`.

One argument accepts four forms, tried in this order:

1. a model-zoo name (``fbnet_c``; see :data:`hwnas.arch.zoo.MODEL_NAMES`), built with the given
   zoo options;
2. a path to an existing JSON file: either a spec object (``ArchSpec.to_json``) or an object
   with the spec under ``"arch"`` (what ``hwnas arch show --json`` prints);
3. an official NAS-Bench-201 cell string (``|nor_conv_3x3~0|+|...|``, it starts with ``|``):
   the benchmark's network of that cell (:func:`hwnas.spaces.nb201.nb201_network`: C = 16,
   N = 5, 10 classes at 32 px);
4. a compact architecture string (it contains ``:``; grammar in :mod:`hwnas.arch.codec`).

Anything else is an error that names the text. For forms 2 to 4, ``resolution`` and
``num_classes`` replace the spec's own values; ``width`` exists only for zoo models.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from hwnas.arch.spec import ArchSpec, SpecError
from hwnas.errors import HwnasError
from hwnas.io import read_json


#: Zoo keyword of each option ``load_arch`` takes (the CLI flag is ``--`` + key with dashes).
ZOO_KEYWORDS = {"resolution": "resolution", "num_classes": "num_classes",
                "width": "width_multiplier"}


def _zoo_model(name: str, options: dict[str, object]) -> ArchSpec:
    from hwnas.arch.zoo import MODEL_FUNCTIONS, get_model_spec

    accepted = inspect.signature(MODEL_FUNCTIONS[name]).parameters
    for option in options:
        if ZOO_KEYWORDS[option] not in accepted:
            takes = [f"--{key.replace('_', '-')}" for key, keyword in ZOO_KEYWORDS.items()
                     if keyword in accepted]
            raise HwnasError(
                f"model {name!r} has no option --{option.replace('_', '-')} "
                f"(it takes: {', '.join(takes) or 'none'})"
            )
    return get_model_spec(name, **{ZOO_KEYWORDS[key]: value for key, value in options.items()})


def _from_file(path: Path) -> ArchSpec:
    data = read_json(path, "architecture file")
    if isinstance(data, dict) and isinstance(data.get("arch"), dict):
        data = data["arch"]
    try:
        return ArchSpec.from_dict(data)
    except SpecError as error:
        raise SpecError(f"architecture file {path}: {error}") from None


def _from_string(text: str) -> ArchSpec:
    try:
        return ArchSpec.from_string(text)
    except SpecError as error:
        raise SpecError(f"architecture string {text!r}: {error}") from None


def _from_cell_string(text: str) -> ArchSpec:
    from hwnas.spaces.nb201 import NB201_OPS, nb201_network, parse_arch_str

    try:
        return nb201_network([NB201_OPS[op] for op in parse_arch_str(text)])
    except HwnasError as error:  # the message names the string and the bad part
        raise SpecError(str(error)) from None


def _with_overrides(arch: ArchSpec, options: dict[str, object]) -> ArchSpec:
    if "width" in options:
        raise HwnasError(
            "--width applies only to zoo models, not to a spec string or file "
            f"(got {options['width']!r})"
        )
    if "resolution" in options:
        arch = dataclasses.replace(arch, resolution=options["resolution"])
    if "num_classes" in options:
        head = dataclasses.replace(arch.head, num_classes=options["num_classes"])
        arch = dataclasses.replace(arch, head=head)
    return arch


def _is(path: Path, kind: str) -> bool:
    """``path.is_file()`` / ``is_dir()`` that answers False instead of raising: a full FBNet
    arch string (~450 characters) is longer than a file name may be (ENAMETOOLONG)."""
    try:
        return path.is_file() if kind == "file" else path.is_dir()
    except OSError:
        return False


def load_arch(
    text: str,
    *,
    resolution: int | None = None,
    num_classes: int | None = None,
    width: float | None = None,
) -> ArchSpec:
    """The architecture named by ``text``: a zoo name, a JSON spec file, or a compact string.

    Options left as ``None`` keep the model's defaults. Raises :class:`HwnasError` (or its
    subclass :class:`SpecError`) naming the text, file or field that is wrong.
    """
    from hwnas.arch.zoo import MODEL_NAMES

    if not isinstance(text, str) or not text.strip():
        raise HwnasError(f"architecture is empty: {text!r}")
    text = text.strip()
    given = {"resolution": resolution, "num_classes": num_classes, "width": width}
    options = {key: value for key, value in given.items() if value is not None}
    if text in MODEL_NAMES:
        return _zoo_model(text, options)
    if text.startswith("|"):
        return _with_overrides(_from_cell_string(text), options)
    path = Path(text)
    if _is(path, "file") or (":" not in text and (path.suffix == ".json" or "/" in text)):
        # An existing file, or something that looks like a path: read_json names a missing one.
        return _with_overrides(_from_file(path), options)
    if ":" in text:
        return _with_overrides(_from_string(text), options)
    if _is(path, "dir"):
        raise HwnasError(f"architecture file {path} is a directory")
    raise HwnasError(
        f"unknown architecture {text!r}: not a zoo model ({', '.join(MODEL_NAMES)}), "
        "not an existing JSON file, and not an arch string (those contain ':')"
    )
