"""One run folder per run, shared by every command that writes one (DNAS, DMasking and ChamNet
searches, training, LUT validation). Layout: ``.lock`` (held by the writing process; JSON
``pid``/``command``/``started``), ``config.json`` (``{"command": ..., **configuration}``),
``history.jsonl`` (one JSON object per line), ``checkpoint.pt``, ``result.json`` (present once
the run has finished), plus whatever files the command adds.

Locking: :func:`open_run` takes an exclusive, non-blocking ``flock`` on ``.lock`` and holds it
until :meth:`RunFolder.close`, so a second writer (another process, or a second open in the same
one) is refused with the PID of the holder. The kernel releases the lock of a process that dies,
so the next :func:`open_run` takes the folder over; with the lock held it deletes the temporary
files that interrupted atomic writes left (hidden names ending in ``.tmp`` or ``.tmp.png``).

Resume: without ``resume`` the folder must hold nothing but ``.lock``; with it, ``config.json``
must hold a run of the same command whose configuration equals the current one (a saved config
without ``"command"``, from older versions, is accepted for any command). Every write is atomic
(:mod:`hwnas.io`) except appends to ``history.jsonl``, whose torn last line (a process killed
mid-write) is ignored on reading and cut off before the next append.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.io import atomic_write_json, atomic_write_text, read_json, read_text

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"
TEMPORARY_SUFFIXES = (".tmp", ".tmp.png")


class RunFolderError(HwnasError):
    """A run folder that cannot be opened, resumed or read; the message names the folder."""


def first_difference(saved: Any, current: Any, path: str = "") -> str | None:
    """The dotted path of the first value that differs between two JSON values
    (``"search.seed"``, ``"budgets[1]"``, ``"<root>"`` for the top level), else None."""
    if isinstance(saved, dict) and isinstance(current, dict):
        for key in list(saved) + [key for key in current if key not in saved]:
            difference = first_difference(saved.get(key), current.get(key), f"{path}.{key}")
            if difference:
                return difference
        return None
    if isinstance(saved, list) and isinstance(current, list) and len(saved) == len(current):
        for index, (left, right) in enumerate(zip(saved, current)):
            difference = first_difference(left, right, f"{path}[{index}]")
            if difference:
                return difference
        return None
    return None if saved == current else (path.lstrip(".") or "<root>")


def normalised(data: Any) -> Any:
    """``data`` as it reads back from JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(data))


def _read_json_file(path: Path) -> Any:
    try:
        return read_json(path, "run file")
    except HwnasError as error:
        raise RunFolderError(str(error)) from None


class RunFolder:
    """The files of one run folder; :func:`open_run` returns one holding the folder's lock."""

    def __init__(self, root: str | Path, command: str, lock_handle: int | None = None) -> None:
        self.root = Path(root)
        self.command = command
        self._lock_handle = lock_handle
        self.config_path = self.root / "config.json"
        self.history_path = self.root / "history.jsonl"
        self.result_path = self.root / "result.json"
        self.checkpoint_path = self.root / "checkpoint.pt"

    def path(self, name: str) -> Path:
        """The path of ``name`` (relative, without ``..``) inside the folder."""
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"not a file name inside the run folder: {name!r}")
        return self.root / relative

    def read_config(self) -> dict[str, Any]:
        """``config.json`` without its ``"command"`` key."""
        saved = _read_json_file(self.config_path)
        if not isinstance(saved, dict):
            raise RunFolderError(f"{self.config_path} does not hold a JSON object")
        saved.pop("command", None)
        return saved

    def read_history(self) -> list[dict[str, Any]]:
        """The objects of the complete lines of ``history.jsonl`` ([] when it is missing); a
        final line without its newline (torn by a killed process) is ignored."""
        if not self.history_path.exists():
            return []
        try:
            data = read_text(self.history_path, "run history")
        except HwnasError as error:
            raise RunFolderError(str(error)) from None
        records = []
        for number, line in enumerate(data.split("\n")[:-1], start=1):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # malformed, or beyond what json converts
                record = None
            if not isinstance(record, dict):
                raise RunFolderError(f"{self.history_path} line {number} is not a JSON object")
            records.append(record)
        return records

    def append_history(self, records: Sequence[dict[str, Any]]) -> None:
        """Cut off a torn last line, then append one line per record and fsync."""
        with open(self.history_path, "ab+") as file:
            file.seek(0)
            data = file.read()
            if not data.endswith(b"\n"):
                file.truncate(data.rfind(b"\n") + 1)
            file.write("".join(json.dumps(record) + "\n" for record in records).encode("utf-8"))
            file.flush()
            os.fsync(file.fileno())

    def rewrite_history(self, records: Sequence[dict[str, Any]]) -> None:
        """Replace ``history.jsonl`` atomically (on resume, to agree with a checkpoint)."""
        atomic_write_text(self.history_path, "".join(json.dumps(row) + "\n" for row in records))

    def write_json(self, name: str, data: Any) -> None:
        """Write ``data`` as JSON to the file ``name`` in the folder, atomically."""
        atomic_write_json(self.path(name), data)

    def write_result(self, data: Any) -> None:
        atomic_write_json(self.result_path, data)

    def read_result(self) -> Any | None:
        """``result.json``, or None when the run has none (yet)."""
        return _read_json_file(self.result_path) if self.has_result() else None

    def has_result(self) -> bool:
        return self.result_path.exists()

    def close(self) -> None:
        """Release the lock (idempotent); a cleanly closed ``.lock`` is left empty."""
        handle, self._lock_handle = self._lock_handle, None
        if handle is not None:
            try:
                os.ftruncate(handle, 0)
            finally:
                os.close(handle)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()


def _holder(handle: int) -> int | None:
    """The PID recorded in an open lock file, else None."""
    os.lseek(handle, 0, os.SEEK_SET)
    try:
        pid = json.loads(os.read(handle, 4096).decode("utf-8")).get("pid")
    except (OSError, ValueError, AttributeError):
        return None
    return pid if isinstance(pid, int) and not isinstance(pid, bool) else None


def _lock(root: Path, command: str) -> int:
    """Open ``root/.lock``, take its flock and record this process in it."""
    try:
        handle = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise RunFolderError(f"cannot open {root / LOCK_NAME}: {error.strerror}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(handle)
            holder = "another process" if pid is None else f"process {pid}"
            raise RunFolderError(
                f"run folder {root} is in use by {holder}: "
                "wait for it to finish or choose another --out"
            ) from None
        except OSError as error:
            raise RunFolderError(f"cannot lock run folder {root}: {error.strerror}") from None
        previous = _holder(handle)
        if previous is not None and previous != os.getpid():
            logger.info("taking over %s from process %s, which no longer holds it", root, previous)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(handle, 0)
        os.lseek(handle, 0, os.SEEK_SET)
        record = {"pid": os.getpid(), "command": command, "started": started}
        os.write(handle, json.dumps(record).encode("utf-8") + b"\n")
        return handle
    except BaseException:
        os.close(handle)
        raise


def open_run(
    root: str | Path, *, command: str, config: dict[str, Any], resume: bool,
    compare: Callable[[dict, dict], str | None] | None = None,
) -> RunFolder:
    """Create or resume the run folder ``root`` for ``command`` and hold its lock (module
    docstring); ``compare(saved, current)`` names the first difference (default
    :func:`first_difference`). Raises :class:`RunFolderError` when refused, writing nothing."""
    if "command" in config:
        raise ValueError("a run config must not hold a 'command' key")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise RunFolderError(f"run folder {root} is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"cannot create run folder {root}: {error.strerror}") from None
    run = RunFolder(root, command, _lock(root, command))
    try:
        for entry in root.iterdir():
            if _temporary(entry):
                entry.unlink(missing_ok=True)
        current = normalised(config)
        if resume:
            _check_resumable(run, current, compare or first_difference)
        else:
            _check_empty(run)
        atomic_write_json(run.config_path, {"command": command, **current})
        return run
    except BaseException:
        run.close()
        raise


def probe_run(root: str | Path, *, command: str, resume: bool) -> None:
    """The checks of :func:`open_run` that need no configuration (the lock, an empty folder or
    a run of ``command`` to resume), made before a command starts its work so that a refusal
    comes at once; the folder is left as it was (no folder is created)."""
    root = Path(root)
    if not root.exists():
        if resume:
            raise RunFolderError(f"nothing to resume in {root}: it does not exist")
        return
    if not root.is_dir():
        raise RunFolderError(f"run folder {root} is not a directory")
    run = RunFolder(root, command, _lock(root, command))
    try:
        if resume:
            _check_resumable(run, {}, lambda saved, current: None)
        else:
            _check_empty(run)
    finally:
        run.close()


def _temporary(entry: Path) -> bool:
    """A temporary file an interrupted atomic write left (:mod:`hwnas.io`)."""
    return entry.name.startswith(".") and entry.name.endswith(TEMPORARY_SUFFIXES) and \
        entry.is_file()


def _check_empty(run: RunFolder) -> None:
    names = sorted(entry.name for entry in run.root.iterdir()
                   if entry.name != LOCK_NAME and not _temporary(entry))
    if not names:
        return
    try:
        saved = json.loads(run.config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict) and isinstance(saved.get("command"), str):
        raise RunFolderError(
            f"run folder {run.root} already holds a {saved['command']} run; "
            "pass --resume to continue it or choose another --out"
        )
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    raise RunFolderError(
        f"run folder {run.root} is not empty (holds {shown}); choose another --out"
    )


def _check_resumable(
    run: RunFolder, current: dict[str, Any], compare: Callable[[dict, dict], str | None],
) -> None:
    if not run.config_path.exists():
        raise RunFolderError(
            f"nothing to resume in {run.root}: it holds no {run.command} run (no config.json)"
        )
    saved = _read_json_file(run.config_path)
    if not isinstance(saved, dict):
        raise RunFolderError(f"{run.config_path} does not hold a JSON object")
    saved_command = saved.pop("command", run.command)
    if saved_command != run.command:
        raise RunFolderError(
            f"cannot resume {run.root}: it holds a {saved_command} run, not a {run.command} run"
        )
    difference = compare(saved, current)
    if difference is not None:
        raise RunFolderError(
            f"cannot resume {run.root}: '{difference}' differs from its config.json"
        )
