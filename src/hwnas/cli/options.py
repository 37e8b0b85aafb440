"""Command-line options made from config types, and the options several commands share.

:func:`config_command` gives a command one option per setting of its config type (named after
the field, ``--weight-lr``, unless the setting names its own) plus ``--config FILE``; none of
them has a default of its own: an option not given takes the file's value, else the config
type's default (:func:`hwnas.settings.resolve`), so the command line, the presets in
``configs/`` and the library cannot disagree. The command function receives the resolved config
as its first argument.
"""

from __future__ import annotations

import functools
import inspect
import typing
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from hwnas import settings

ConfigFile = Annotated[Optional[Path], typer.Option(
    "--config", help="YAML/JSON file whose section for this command sets defaults (e.g. "
    "configs/demo.yaml); options given here override it.")]
def output_path(value: Optional[Path]) -> Optional[Path]:
    """The callback of every ``--out``: checked creatable before any work starts."""
    from hwnas.io import check_output_path

    return None if value is None else check_output_path(value, "--out")


Out = Annotated[Optional[Path], typer.Option("--out", help="Run folder.", callback=output_path)]
Resume = Annotated[bool, typer.Option(
    "--resume", help="Continue the run in --out (its config must match).")]
DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="Data folder (else $HWNAS_DATA, else ../shared/data).")]
Cifar = Annotated[Optional[Path], typer.Option(
    "--cifar", help="Official CIFAR-10 python/binary distribution folder, or a JPEG .npz, "
    "instead of the data folder's cifar10_jpeg_all.npz.")]
Seed = Annotated[int, typer.Option(min=0)]
Threads = Annotated[int, typer.Option(min=1, help="torch threads.")]


def _option(name: str, rule: settings.Rule, annotation: Any, default: Any) -> inspect.Parameter:
    kind, _ = settings.value_type(annotation)
    shown = "none" if default is None else f"{default:g}" if kind is float else default
    option = typer.Option(rule.option or f"--{name.replace('_', '-')}", show_default=False,
                          help=f"{rule.help} \\[default: {shown}]")
    kind = kind if kind in (int, float, str, bool) else str
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[kind], option])


def config_command(config_type: type, section: str) -> Callable[[Callable], Callable]:
    """Decorate ``function(config, **options)``: the command takes ``--config`` and one option
    per command-line setting of ``config_type`` (module docstring)."""
    fields = settings.cli_fields(config_type)

    def decorate(function: Callable) -> Callable:
        hints = typing.get_type_hints(function, include_extras=True)  # in its own module
        own = [parameter.replace(annotation=hints[parameter.name])
               for parameter in list(inspect.signature(function).parameters.values())[1:]]
        parameters = own + [inspect.Parameter("config_file", inspect.Parameter.KEYWORD_ONLY,
                                              default=None, annotation=ConfigFile)]
        parameters += [_option(*field) for field in fields]

        @functools.wraps(function)
        def command(**given: Any) -> Any:
            overrides = {name: settings.NONE if given[name] == "none" else given.pop(name)
                         for name, *_ in fields}
            for name in overrides:
                given.pop(name, None)
            config = settings.resolve(config_type, given.pop("config_file"), section, overrides)
            return function(config, **given)

        command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in parameters}
        del command.__wrapped__  # typer must read the new signature, not the function's
        return command

    return decorate
