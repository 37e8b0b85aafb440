"""Where the real data lives: ``--data-dir``, else ``$HWNAS_DATA``, else ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

from hwnas.errors import HwnasError

ENVIRONMENT_VARIABLE = "HWNAS_DATA"


def _default_candidates() -> list[Path]:
    here = Path(__file__).resolve()
    # ../shared/data beside the working directory, or beside the checkout this package lives in.
    return [Path.cwd().parent / "shared" / "data", here.parents[3].parent / "shared" / "data"]


def data_dir(explicit: str | Path | None = None) -> Path:
    """The data folder. An explicit path or ``$HWNAS_DATA`` must exist; the default is searched."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_dir():
            raise HwnasError(f"data directory not found: {path}")
        return path
    if os.environ.get(ENVIRONMENT_VARIABLE):
        path = Path(os.environ[ENVIRONMENT_VARIABLE])
        if not path.is_dir():
            raise HwnasError(f"data directory not found: {path} (from ${ENVIRONMENT_VARIABLE})")
        return path
    for candidate in _default_candidates():
        if candidate.is_dir():
            return candidate
    raise HwnasError(
        "no data directory: pass --data-dir or set HWNAS_DATA "
        f"(looked in {', '.join(str(c) for c in _default_candidates())})"
    )


def data_file(name: str, explicit_dir: str | Path | None = None) -> Path:
    """``name`` inside the data folder; a missing file raises an error naming it and the folder."""
    folder = data_dir(explicit_dir)
    path = folder / name
    if not path.is_file():
        raise HwnasError(f"missing data file {name} in {folder} (set --data-dir or HWNAS_DATA)")
    return path
