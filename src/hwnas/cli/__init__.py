"""The ``hwnas`` command line: the root app, its error handling and the command groups.

Each command group is its own module exposing ``app = typer.Typer(...)``; :data:`COMMAND_GROUPS`
lists them. Command modules import torch inside their commands, not at the top, so that
``hwnas --help`` starts fast.

Errors: a :class:`~hwnas.errors.HwnasError` (bad architecture, LUT, option value, ...) or a
missing/unreadable user path prints one line ``error: <message>`` to stderr and exits with
status 2, without a traceback; usage errors keep typer's own message and exit status 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from hwnas.errors import HwnasError

#: (command name, module) of every command group, in the order ``hwnas --help`` lists them.
#: A name of ``None`` adds the module's commands at the top level (``hwnas train``, ``hwnas eval``).
COMMAND_GROUPS: tuple[tuple[str | None, str], ...] = (
    ("arch", "hwnas.cli.arch"),
    ("lut", "hwnas.cli.lut"),
    (None, "hwnas.cli.train"),
    ("search", "hwnas.cli.search"),
)

#: Exit status of a bad user input (the same as typer's usage errors).
USER_ERROR_STATUS = 2

#: OS errors that come from a path the user gave (an --out folder, an input file).
USER_PATH_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)

def error_message(error: BaseException) -> str:
    """The one-line message printed for a user error."""
    if isinstance(error, OSError) and error.filename is not None:
        message = f"{error.strerror or error}: {error.filename}"
    else:
        message = str(error)
    return " ".join(message.split())  # one line, whatever the message holds


class HwnasGroup(TyperGroup):
    """The root group: turns user errors raised by any subcommand into one line and status 2.

    Done in ``invoke`` rather than only in :func:`main` so that typer's ``CliRunner`` (tests)
    sees the same behaviour as the console script.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (HwnasError, *USER_PATH_ERRORS) as error:
            typer.echo(f"error: {error_message(error)}", err=True)
            raise typer.Exit(USER_ERROR_STATUS) from None


app = typer.Typer(
    name="hwnas",
    cls=HwnasGroup,
    help="Hardware-aware neural architecture search: FBNet, ChamNet, FBNetV2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def register_groups(
    root: typer.Typer, groups: tuple[tuple[str | None, str], ...] = COMMAND_GROUPS
) -> None:
    """Add each (name, module) command group to ``root``."""
    for name, module_name in groups:
        module = importlib.import_module(module_name)
        if name is None:
            root.add_typer(module.app)
        else:
            root.add_typer(module.app, name=name)


def _register_demo() -> None:
    from hwnas.cli.demo import demo

    app.command(name="demo")(demo)


register_groups(app)
_register_demo()


def main() -> None:
    """Console-script entry point (``hwnas``)."""
    try:
        app()
    except (HwnasError, *USER_PATH_ERRORS) as error:
        # Raised outside a command (e.g. while parsing); the group catches the rest.
        print(f"error: {error_message(error)}", file=sys.stderr)
        sys.exit(USER_ERROR_STATUS)
