"""Files written so that a crash leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

_TEMP_PREFIX = ".tmp-"


def write_durably(path: Path, write: Callable[[Path], None]) -> None:
    """Write a new file under a temporary name, fsync it and rename it into place."""
    temp = path.with_name(f"{_TEMP_PREFIX}{path.name}")
    write(temp)
    fsync_file(temp)
    os.replace(temp, path)
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
