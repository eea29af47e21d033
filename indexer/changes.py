"""The changes a folder's changed files make: read, chunked and embedded, then cut into commits by the work done.

A build commits what it has embedded about every two minutes, and sooner while it is young, so a build
stopped at any point (SIGKILL, a lost node) keeps nearly all its work: the next run finds the committed
files at their new stat and embeds only the rest. Each commit holds a bounded number of passages, so memory
follows the commit, not the folder.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from indexer.chunking import ChunkingParams
from indexer.documents import FileEntry, FileState, file_source, read_changed
from indexer.progress import BuildProgress
from indexer.upserts import IngestedFile, ingested_files
from search.backends.contract import Change
from search.encoding.embedder import Embedder

Pending = list[tuple[FileEntry, str | None]]

# Commit at least this often, in seconds of reading and embedding: what an interrupted build can lose.
COMMIT_SECONDS = 120.0
# And at most this many passages per commit (about 200 MB of vectors with their sentences), for memory.
COMMIT_PASSAGES = 20_000
# While a build is young, commit once the passages not yet committed reach an eighth of those committed (at
# least 64): a build stopped halfway then keeps about 8/9 of its work, whatever its size, and one of a
# million passages still makes only about 80 such early commits.
_EARLY_SHARE = 8
_EARLY_PASSAGES = 64
# File bytes read and embedded in one call: a few dozen passages, enough for length-sorted batches.
EMBED_GROUP_BYTES = 64 << 10


@dataclass
class EmbeddingTally:
    """What the changes embedded, and the seconds spent reading and embedding (commits excluded)."""

    tokens: int = 0
    seconds: float = 0.0


def folder_changes(
    pending: Pending,
    known: dict[str, FileState],
    removed: tuple[str, ...],
    embedder: Embedder,
    params: ChunkingParams,
    max_file_bytes: int,
    ray: str | None,
    progress: BuildProgress,
    tally: EmbeddingTally,
) -> Iterator[tuple[Change, list[IngestedFile]]]:
    """The changes the pending files make (each with the files it holds), read and embedded in this process or
    on a Ray cluster; the ``removed`` documents go with the first.

    A known file that cannot be read now keeps its indexed version (with a warning): nothing is dropped for
    a passing read error.
    """
    if ray is None:
        files = _ingested_here(pending, embedder, params, max_file_bytes, progress)
    else:
        from indexer.ray_ingest import ray_ingest

        files = ray_ingest(ray, pending, embedder.name, embedder.quantize, params, max_file_bytes, progress)
    held: list[IngestedFile] = []
    held_passages = committed = 0
    since = time.monotonic()
    for file in _timed(files, tally):
        held.append(file)
        if file.embedded is not None:
            held_passages += len(file.embedded.upsert.passages)
            tally.tokens += file.embedded.tokens
        if commit_due(held_passages, committed, time.monotonic() - since):
            yield _change(held, known, removed), held
            committed += held_passages
            held, held_passages, removed, since = [], 0, (), time.monotonic()
    if held or removed:
        yield _change(held, known, removed), held


def commit_due(held: int, committed: int, seconds: float) -> bool:
    """Whether ``held`` passages not yet committed, after ``committed`` and ``seconds`` of work, make a commit now."""
    return seconds >= COMMIT_SECONDS or held >= min(COMMIT_PASSAGES, max(_EARLY_PASSAGES, committed // _EARLY_SHARE))


def _change(files: list[IngestedFile], known: dict[str, FileState], removed: tuple[str, ...]) -> Change:
    upserts, sources = [], []
    for file in files:
        entry = file.read.entry
        if file.embedded is not None:
            upserts.append(file.embedded.upsert)
        elif file.read.unchanged:
            sources.append((entry.doc_id, file_source(entry.size, entry.mtime_ns)))
    return Change(tuple(upserts), removed, tuple(sources))


def _ingested_here(
    pending: Pending, embedder: Embedder, params: ChunkingParams, max_file_bytes: int, progress: BuildProgress
) -> Iterator[IngestedFile]:
    """The pending files read and embedded in this process, a group of ``EMBED_GROUP_BYTES`` at a time."""
    for group in _groups(pending):
        files = ingested_files(
            [read_changed(entry, indexed, max_file_bytes) for entry, indexed in group], embedder, params, progress.embedded
        )
        passages = sum(len(file.embedded.upsert.passages) for file in files if file.embedded is not None)
        progress.files_done(len(group), sum(entry.size for entry, _ in group), passages)
        yield from files


def _groups(pending: Pending) -> Iterator[Pending]:
    """The pending files in groups of at most ``EMBED_GROUP_BYTES`` (or one larger file), in order."""
    group: Pending = []
    held = 0
    for item in pending:
        if group and held + item[0].size > EMBED_GROUP_BYTES:
            yield group
            group, held = [], 0
        group.append(item)
        held += item[0].size
    if group:
        yield group


def _timed(files: Iterator[IngestedFile], tally: EmbeddingTally) -> Iterator[IngestedFile]:
    """``files``, with the time spent making each added to ``tally`` (not the time the caller holds it)."""
    while True:
        started = time.perf_counter()
        file = next(files, None)
        tally.seconds += time.perf_counter() - started
        if file is None:
            return
        yield file
