"""Reading an index folder into the operating system's page cache before a server answers.

The local index's vector files and keyword index are memory-mapped and its store is read page by page, so
a server started on a cold page cache pays for its first searches in scattered disk reads: at 1,000,000
passages (5.4 GB) the first pass over 200 queries had p99 305 ms and 575 major page faults; with the files
cached, p99 25 ms and none (``semsearch bench scale``). Asking the
kernel to read ahead in the background (``posix_fadvise(WILLNEED)``) made it worse (p99 1.8 s): the
read-ahead queued in front of the searches' own reads. So the files are read once, sequentially, before
the first search (about 8 s for 5.4 GB on this disk, well under a second when they are cached already).
The pages land in the shared page cache, not in the process's resident memory, and an index larger than
half of the memory available is left alone, so reading never evicts what it would need again.

A child process does the reading. Closing a descriptor of a file drops every POSIX lock its process holds
on that file, SQLite's included: read in the server itself, the store's files lost SQLite's locks, and a
writer that then believed itself alone reset the WAL index under the readers (their searches failed with
"disk I/O error" while an index job ran, ``semsearch bench --during-index``).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

# What the first searches touch first: ANN segments, then keyword and store files, then vector files.
_ORDER = {".faiss": 0, ".npy": 2}
_CHUNK = 8 << 20
_TIMEOUT_SECONDS = 600


def read_into_page_cache(folder: Path) -> int:
    """Read every file under ``folder`` once, in a child process, if they fit in half the available memory;
    the bytes read (0 when skipped or when the child failed: reading ahead is only ever an optimisation)."""
    files = _files(folder)
    total = sum(path.stat().st_size for path in files)
    available = _available_bytes()
    if available is not None and total > available // 2:
        logger.info("index of %d MB not read ahead: %d MB of memory available", total >> 20, available >> 20)
        return 0
    try:
        child = subprocess.run(
            [sys.executable, "-m", __name__, str(folder)], capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=True
        )
        return int(child.stdout)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        logger.warning("the index was not read ahead: %s", exc)
        return 0


def _files(folder: Path) -> list[Path]:
    return sorted((path for path in folder.rglob("*") if path.is_file()), key=lambda path: _ORDER.get(path.suffix, 1))


def _read(folder: Path) -> int:
    buffer = bytearray(_CHUNK)
    read = 0
    for path in _files(folder):
        try:
            with path.open("rb", buffering=0) as handle:
                while chunk := handle.readinto(buffer):
                    read += chunk
        except OSError:  # replaced by a writer since the listing: the next reader reads the new one
            continue
    return read


def _available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


if __name__ == "__main__":
    print(_read(Path(sys.argv[1])))
