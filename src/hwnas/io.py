"""Atomic file writes and safe reads: a crash never leaves a half-written file, and a file that
is not what hwnas reads (not a regular file, too large, not UTF-8, JSON nested too deeply or with
an integer too long to convert) is one :class:`HwnasError` naming it, never a traceback or a
hang (a named pipe or ``/dev/zero`` is refused before it is opened)."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """``path`` if hwnas can create it (before any work starts): no existing part of it but the
    last is a file, and the nearest existing folder is writable; else :class:`HwnasError`."""
    path = Path(path)
    for parent in [path, *path.parents][1:]:
        if parent.exists():
            if not parent.is_dir():
                raise HwnasError(f"{what} {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise HwnasError(f"{what} {path}: folder {parent} is not writable")
            break
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over
    ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


#: the largest text file hwnas reads whole (JSON, JSONL, YAML): far above any LUT, config or
#: result it writes (``cpu_table.json`` of the NB201 demo, the largest, is about 0.5 MB)
MAX_TEXT_BYTES = 64 * 2**20


def read_text(path: str | Path, what: str = "file", limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of the regular file ``path`` (links followed), at most ``limit`` bytes;
    anything else raises :class:`HwnasError` naming the file and the problem."""
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise HwnasError(f"{what} not found: {path}") from None
    except OSError as error:
        raise HwnasError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if stat.S_ISDIR(info.st_mode):
        raise HwnasError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise HwnasError(f"{what} {path} is not a regular file")
    if info.st_size > limit:
        raise HwnasError(f"{what} {path} is {info.st_size:,} bytes, more than the "
                         f"{limit:,} hwnas reads")
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise HwnasError(f"cannot read {what} {path}: {error.strerror or error}") from None
    if len(data) > limit:
        raise HwnasError(f"{what} {path} grew past the {limit:,} bytes hwnas reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HwnasError(f"{what} {path} is not UTF-8 text (byte {error.start})") from None


def parse_json(text: str, source: str) -> Any:
    """JSON ``text``; malformed, too deeply nested or with an over-long integer raises
    :class:`HwnasError` naming ``source``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise HwnasError(f"{source} is not valid JSON: {error}") from None
    except RecursionError:
        raise HwnasError(f"{source} is nested too deeply to read") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts
        raise HwnasError(f"{source} holds a value hwnas cannot read: "
                         f"{' '.join(str(error).split())[:120]}") from None


def read_json(path: str | Path, what: str = "file") -> Any:
    """Parse a JSON file (:func:`read_text`, :func:`parse_json`); a missing, unreadable or
    malformed file raises :class:`HwnasError` naming it."""
    return parse_json(read_text(path, what), f"{what} {path}")
