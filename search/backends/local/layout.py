"""The on-disk index layout: the only module that knows folder and file names.

::

    indexes/default/
        CURRENT                  # "format 2 i-20261125T140000-1a2b3c": the live index folder
        .lock                    # held by the one writer
        i-20261125T140000-1a2b3c/
            store.sqlite         # documents, passages, segment list, tombstones, keyword journal (WAL)
            segments/*.faiss     # FAISS segments: flat while small, IVF once sealed; named by the store
            vectors/*.npy        # float16 passage and sentence vectors, memory-mapped, named by the store
            keyword/passages     # tantivy BM25 over passages
            keyword/documents    # tantivy BM25 over whole documents
        .snapshot-<id>/          # hard links pinning one generation while a snapshot copies it

    indexes/snapshots/snapshot-<time>-<id>/
                                 # a snapshot (here by default, beside the index): snapshot.json (generation,
                                 # sha256 of every file) and one generation of the live folder's files

Updates change the live folder in place, each committed by one store transaction. A full rebuild
writes a new folder and publishes it by atomically replacing ``CURRENT``; a crash at any moment
leaves the previous folder live, and the next writer removes leftovers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from search.durability import fsync_dir, fsync_file
from search.errors import IndexFormatError, IndexLocked, IndexNotFound
from search.index_settings import FIX_HINT

FORMAT_VERSION = 3
CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
STORE_FILE = "store.sqlite"
SEGMENTS_DIR = "segments"
VECTORS_DIR = "vectors"
KEYWORD_PASSAGES_DIR = "keyword/passages"
KEYWORD_DOCUMENTS_DIR = "keyword/documents"
KEYWORD_DIRS = (KEYWORD_PASSAGES_DIR, KEYWORD_DOCUMENTS_DIR)
SNAPSHOT_MANIFEST = "snapshot.json"
_SNAPSHOT_PREFIX = ".snapshot-"
_FOLDER_PREFIX = "i-"
_LEGACY_PREFIX = "v-"
_TEMP_PREFIX = ".tmp-"


@contextmanager
def hold_writer_lock(index_dir: Path) -> Iterator[None]:
    """The one-writer guarantee: a second writer is refused at once instead of interleaving."""
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise IndexLocked(f"another process is writing the index at {index_dir}; wait for it to finish") from None
    try:
        yield
    finally:
        lock.release()


def index_exists(index_dir: Path) -> bool:
    return (index_dir / CURRENT_FILE).is_file()


def live_folder(index_dir: Path) -> Path:
    """The folder ``CURRENT`` names; an index of an older format is refused with the fix."""
    try:
        words = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").split()
    except FileNotFoundError:
        raise IndexNotFound(f"no index at {index_dir}; build one with `semsearch index`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"cannot read {index_dir / CURRENT_FILE} ({exc}); {FIX_HINT}") from None
    if len(words) == 1 and words[0].startswith(_LEGACY_PREFIX):
        raise IndexFormatError(
            f"index at {index_dir} is in format 1, written by an older semsearch; this version reads format {FORMAT_VERSION}: {FIX_HINT}"
        )
    if len(words) != 3 or words[:2] != ["format", str(FORMAT_VERSION)] or not words[2].startswith(_FOLDER_PREFIX):
        raise IndexFormatError(f"{index_dir / CURRENT_FILE} does not name a format {FORMAT_VERSION} index; {FIX_HINT}")
    folder = index_dir / words[2]
    if not folder.is_dir():
        raise IndexFormatError(f"{index_dir / CURRENT_FILE} names {words[2]}, which does not exist; {FIX_HINT}")
    return folder


def new_folder(index_dir: Path) -> Path:
    """An empty folder for a full build, invisible to readers until ``publish``."""
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"{_TEMP_PREFIX}{_FOLDER_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    folder = index_dir / name
    for sub in (SEGMENTS_DIR, VECTORS_DIR, KEYWORD_PASSAGES_DIR, KEYWORD_DOCUMENTS_DIR):
        (folder / sub).mkdir(parents=True)
    return folder


def publish(index_dir: Path, folder: Path) -> Path:
    """Make a fully written folder live: fsync it, rename it into place, then replace ``CURRENT`` atomically."""
    for path in folder.rglob("*"):
        if path.is_file():
            fsync_file(path)
    final = index_dir / folder.name.removeprefix(_TEMP_PREFIX)
    os.rename(folder, final)
    fsync_dir(index_dir)
    pointer = index_dir / f"{_TEMP_PREFIX}{CURRENT_FILE}"
    pointer.write_text(f"format {FORMAT_VERSION} {final.name}\n", encoding="utf-8")
    fsync_file(pointer)
    os.replace(pointer, index_dir / CURRENT_FILE)
    fsync_dir(index_dir)
    return final


def snapshot_staging(index_dir: Path) -> Path:
    """An empty folder beside the live one, on its file system, where a snapshot hard-links the files it copies.

    Its prefix is not one ``remove_stale_folders`` removes: a writer committing meanwhile must leave it alone.
    """
    folder = index_dir / f"{_SNAPSHOT_PREFIX}{uuid.uuid4().hex[:12]}"
    folder.mkdir()
    return folder


def snapshot_name() -> str:
    """A fresh snapshot folder name that sorts by time."""
    return f"snapshot-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def remove_stale_folders(index_dir: Path) -> list[str]:
    """Delete folders that are not live (older formats, interrupted builds); the caller holds the lock."""
    try:
        live = live_folder(index_dir).name
    except (IndexNotFound, IndexFormatError):
        live = None
    removed = []
    for entry in index_dir.iterdir():
        ours = entry.name.startswith((_FOLDER_PREFIX, _LEGACY_PREFIX, _TEMP_PREFIX))
        if ours and entry.name != live and entry.name != LOCK_FILE:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed
