"""Configuration as data: one frozen, validated dataclass per strategy, every default once.

A *setting* is a dataclass field made by :func:`setting`: its default, a one-line help (which the
command line shows), and its rules (type from the annotation; ``minimum``, ``maximum``,
``below``, ``choices``). :func:`check` validates an instance against them, so a config type
states each value's range once and its ``__post_init__`` adds only the rules that tie fields
together. Two more facts live with a field:

* ``compared=False``: the value changes how a run executes, not what it computes (threads, the
  checkpoint interval), so ``--resume`` accepts a different one (:func:`resume_difference`);
* ``absent``: what a config written before the field existed did, when that is not the
  default, or :data:`SKIP` when it is unknown (:func:`resume_difference`, :func:`from_saved`:
  older runs still resume and still read).

Config files are YAML (or JSON) mappings of *sections*, one per strategy, e.g. ``configs/demo.yaml``
holds ``lut_build:``, ``dnas:``, ``train:`` and ``demo:``. A command reads its own section
(:func:`load_section`) and overrides it with the options given on its command line
(:func:`resolve`); every section name in a file must be one that hwnas knows.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from hwnas.errors import HwnasError
from hwnas.runs import first_difference

Config = TypeVar("Config")
#: where the presets (``configs/*.yaml``) are, when not in the repository
CONFIGS_VARIABLE = "HWNAS_CONFIGS"
#: every section a config file may hold (the strategies, the demo and the benchmarks' budgets)
SECTIONS = ("lut_build", "lut_validate", "dnas", "dmasking", "chamnet", "train", "demo",
            "benchmark", "supernet")
#: ``absent`` markers: an old config without the setting did what its default does / is not
#: compared on that setting
DEFAULT = "<default>"
SKIP = "<skip>"
#: an override that sets a setting to None (the command line's ``none``)
NONE = "<none>"


@dataclasses.dataclass(frozen=True)
class Rule:
    """What a setting may hold (see :func:`setting`)."""

    help: str
    minimum: float | None = None
    maximum: float | None = None
    below: float | None = None
    choices: tuple[Any, ...] | None = None
    option: str | None = None
    cli: bool = True
    compared: bool = True
    absent: Any = DEFAULT


def setting(default: Any, help: str, **rule: Any) -> Any:
    """A dataclass field with a default and a :class:`Rule` (keywords as its fields)."""
    return dataclasses.field(default=default, metadata={"rule": Rule(help, **rule)})


def rules(config_type: type) -> dict[str, tuple[Rule, Any]]:
    """``{field: (rule, resolved annotation)}`` of every setting of ``config_type``."""
    hints = typing.get_type_hints(config_type)
    return {field.name: (field.metadata["rule"], hints[field.name])
            for field in dataclasses.fields(config_type) if "rule" in field.metadata}


def value_type(annotation: Any) -> tuple[type, bool]:
    """``(base type, None allowed)`` of an annotation such as ``float | None``."""
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        base = [argument for argument in arguments if argument is not type(None)]
        return typing.get_origin(base[0]) or base[0], type(None) in arguments
    return typing.get_origin(annotation) or annotation, False


def _describe(kind: type) -> str:
    return {int: "an integer", float: "a finite number", str: "a string", bool: "true or false",
            tuple: "a list"}.get(kind, kind.__name__)


def check_value(name: str, value: Any, rule: Rule, annotation: Any) -> None:
    """Raise :class:`HwnasError` naming ``name`` unless ``value`` obeys ``rule``."""
    kind, optional = value_type(annotation)
    if value is None and optional:
        return
    typed = (isinstance(value, bool) if kind is bool else
             isinstance(value, (int, float)) and not isinstance(value, bool)
             and math.isfinite(value) if kind is float else
             isinstance(value, int) and not isinstance(value, bool) if kind is int else
             isinstance(value, kind))
    if rule.choices is not None and value not in rule.choices:
        raise HwnasError(f"{name} must be one of {rule.choices}, got {value!r}")
    bounds = [f">= {rule.minimum:g}" if rule.minimum is not None else "",
              f"<= {rule.maximum:g}" if rule.maximum is not None else "",
              f"< {rule.below:g}" if rule.below is not None else ""]
    wanted = " and ".join([_describe(kind) + (" " + bounds[0] if bounds[0] else "")]
                          + [bound for bound in bounds[1:] if bound])
    if not typed or (kind in (int, float) and (
            (rule.minimum is not None and value < rule.minimum)
            or (rule.maximum is not None and value > rule.maximum)
            or (rule.below is not None and value >= rule.below))):
        raise HwnasError(f"{name} must be {wanted}{' or none' if optional else ''}, "
                         f"got {value!r}")


def check(config: Any) -> None:
    """Validate every setting of a config instance (call from its ``__post_init__``)."""
    for name, (rule, annotation) in rules(type(config)).items():
        check_value(name, getattr(config, name), rule, annotation)


def to_dict(config: Any) -> dict[str, Any]:
    """The config as JSON types (tuples become lists), as its ``config.json`` holds it."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _as_annotation(value: Any, annotation: Any) -> Any:
    """JSON/YAML lists become the tuples a frozen config holds (also nested: pairs)."""
    kind, _ = value_type(annotation)
    if kind is tuple and isinstance(value, list):
        return tuple(tuple(item) if isinstance(item, list) else item for item in value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_mapping(config_type: type[Config], data: Any, source: str | None = None) -> Config:
    """A config from a mapping of field names (missing ones at their defaults); an unknown key
    or bad value raises :class:`HwnasError` naming ``source`` (a file and section)."""
    prefix = "" if source is None else f"{source}: "
    if not isinstance(data, Mapping):
        raise HwnasError(f"{prefix}expected a mapping of settings, got {data!r:.80}")
    known = {field.name: field for field in dataclasses.fields(config_type)}
    hints = typing.get_type_hints(config_type)
    unknown = [key for key in data if key not in known]
    if unknown:
        raise HwnasError(f"{prefix}unknown setting {unknown[0]!r} (known: "
                         f"{', '.join(known)})")
    values = {key: _as_annotation(value, hints[key]) for key, value in data.items()}
    try:
        return config_type(**values)
    except HwnasError as error:
        raise HwnasError(f"{prefix}{error}") from None


def load_file(path: str | Path) -> dict[str, Any]:
    """A config file's sections (YAML, or JSON for ``.json``); checked: a mapping of known
    section names to mappings."""
    from hwnas.io import read_json, read_text

    path = Path(path)
    if path.suffix == ".json":
        data = read_json(path, "config file")
    else:
        import yaml

        text = read_text(path, "config file")
        try:
            data = yaml.safe_load(text)
        except RecursionError:
            raise HwnasError(f"config file {path} is nested too deeply to read") from None
        except yaml.YAMLError as error:
            raise HwnasError(f"config file {path} is not valid YAML: "
                             f"{' '.join(str(error).split())}") from None
    if not isinstance(data, dict):
        raise HwnasError(f"config file {path}: expected sections ({', '.join(SECTIONS)})")
    for name, section in data.items():
        if name not in SECTIONS:
            raise HwnasError(f"config file {path}: unknown section {name!r} (known: "
                             f"{', '.join(SECTIONS)})")
        if not isinstance(section, dict):
            raise HwnasError(f"config file {path}: section {name!r} must be a mapping")
    return data


def preset(name: str) -> Path:
    """The preset ``configs/<name>.yaml``: in ``$HWNAS_CONFIGS``, else in the repository's
    ``configs/`` folder (beside ``src/``), else in the working directory's."""
    folders = ([Path(os.environ[CONFIGS_VARIABLE])] if os.environ.get(CONFIGS_VARIABLE) else
               [Path(__file__).resolve().parents[2] / "configs", Path("configs")])
    for folder in folders:
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    raise HwnasError(f"no preset {name}.yaml in {', '.join(map(str, folders))} (set "
                     f"${CONFIGS_VARIABLE} or pass --config)")


def load_section(config_type: type[Config], path: str | Path, section: str) -> Config:
    """Section ``section`` of the file at ``path`` as a ``config_type``."""
    sections = load_file(path)
    if section not in sections:
        raise HwnasError(f"config file {path} has no {section!r} section "
                         f"(it has: {', '.join(sections) or 'none'})")
    return from_mapping(config_type, sections[section], f"{path} [{section}]")


def resolve(config_type: type[Config], path: str | Path | None, section: str,
            overrides: Mapping[str, Any]) -> Config:
    """Defaults, then the file's section (if ``path``), then the ``overrides`` that are not
    None (the options given on the command line; :data:`NONE` sets a setting to None)."""
    base = load_section(config_type, path, section) if path is not None else config_type()
    given = {key: None if value is NONE else value for key, value in overrides.items()
             if value is not None}
    return from_mapping(config_type, {**to_dict(base), **given},
                        None if path is None else f"{path} [{section}] and options")


def replace(config: Config, **changes: Any) -> Config:
    """``dataclasses.replace`` (validated again by the type's ``__post_init__``)."""
    return dataclasses.replace(config, **changes)


def resume_difference(config_type: type, saved: Any, current: Mapping[str, Any],
                      path: str = "") -> str | None:
    """The first setting (dotted ``path``) in which a stored settings mapping and the current
    one differ, else None. Settings with ``compared=False`` are skipped; one the stored mapping
    predates counts as its ``absent`` value (else its default), or is skipped when that is
    :data:`SKIP`; stored keys the type no longer has are ignored."""
    if not isinstance(saved, Mapping):
        return path or "<root>"
    left, right = {}, {}
    for field in dataclasses.fields(config_type):
        rule = field.metadata.get("rule")
        if rule is not None and not rule.compared:
            continue
        if field.name in saved:
            left[field.name] = saved[field.name]
        else:
            absent = field.default if rule is None or rule.absent == DEFAULT else rule.absent
            if absent == SKIP:
                continue
            left[field.name] = json.loads(json.dumps(absent))
        right[field.name] = current.get(field.name)
    return first_difference(left, json.loads(json.dumps(right)), path)


def from_saved(config_type: type[Config], saved: Mapping[str, Any]) -> Config:
    """The config a run folder's stored settings describe (fields it predates at their
    ``absent`` value or default, keys the type no longer has ignored)."""
    known = {field.name: field for field in dataclasses.fields(config_type)}
    values = {key: value for key, value in saved.items() if key in known}
    for name, field in known.items():
        rule = field.metadata.get("rule")
        if name not in values and rule is not None and rule.absent not in (DEFAULT, SKIP):
            values[name] = rule.absent
    return from_mapping(config_type, values, "stored config")




def cli_fields(config_type: type) -> list[tuple[str, Rule, Any, Any]]:
    """``(name, rule, annotation, default)`` of every setting the command line offers."""
    defaults = {field.name: field.default for field in dataclasses.fields(config_type)}
    return [(name, rule, annotation, defaults[name])
            for name, (rule, annotation) in rules(config_type).items() if rule.cli]
