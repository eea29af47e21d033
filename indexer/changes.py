"""The changes a folder's changed files make: read, chunked and embedded, then cut into commits by the work done.

A build commits what it has embedded about every two minutes, and sooner while it is young, so a build
stopped at any point (SIGKILL, a lost node) keeps nearly all its work: the next run finds the committed
files at their new stat and embeds only the rest. Each commit holds a bounded number of passages, so memory
follows the commit, not the folder.

A Ray build into a backend whose workers write rows themselves (``StagedWrites``) commits once per stage
instead: the rows are already in the backend, unseen, and the driver only holds counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from indexer.chunking import ChunkingParams
from indexer.documents import FileEntry, FileState, file_source, read_changed
from indexer.progress import BuildProgress
from indexer.upserts import IngestedBatch, IngestedFile, ingested_files
from search.backends.contract import Change, StagedRows, StagedWrites
from search.backends.registry import AnyBackend
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
# Files already indexed per stage of a Ray build whose workers write (each stage commits once, and Milvus lists
# the versions a commit replaces in its state row, which holds about 7,000).
STAGED_REPLACEMENTS = 5_000


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
    target: AnyBackend,
) -> Iterator[tuple[Change, list[IngestedFile]]]:
    """The changes the pending files make (each with the files it holds), read and embedded in this process or
    on a Ray cluster, for the backend ``target``; the ``removed`` documents go with the first.

    A known file that cannot be read now keeps its indexed version (with a warning): nothing is dropped for
    a passing read error.
    """
    if ray is not None and isinstance(target, StagedWrites):
        yield from _staged_changes(pending, known, removed, embedder, params, max_file_bytes, ray, progress, tally, target)
        return
    if ray is None:
        files = _ingested_here(pending, embedder, params, max_file_bytes, progress)
    else:
        from indexer.ray_ingest import ray_ingest

        batches = ray_ingest(ray, pending, embedder.name, embedder.quantize, params, max_file_bytes, progress)
        files = (file for batch in batches for file in batch.files)
    held: list[IngestedFile] = []
    held_passages = committed = 0
    since = time.monotonic()
    for file in _timed(files, tally):
        held.append(file)
        held_passages += file.passages
        tally.tokens += file.tokens
        if commit_due(held_passages, committed, time.monotonic() - since):
            yield _change(held, removed), held
            committed += held_passages
            held, held_passages, removed, since = [], 0, (), time.monotonic()
    if held or removed:
        yield _change(held, removed), held


def commit_due(held: int, committed: int, seconds: float) -> bool:
    """Whether ``held`` passages not yet committed, after ``committed`` and ``seconds`` of work, make a commit now."""
    return seconds >= COMMIT_SECONDS or held >= min(COMMIT_PASSAGES, max(_EARLY_PASSAGES, committed // _EARLY_SHARE))


def _staged_changes(
    pending: Pending,
    known: dict[str, FileState],
    removed: tuple[str, ...],
    embedder: Embedder,
    params: ChunkingParams,
    max_file_bytes: int,
    ray: str,
    progress: BuildProgress,
    tally: EmbeddingTally,
    target: StagedWrites,
) -> Iterator[tuple[Change, list[IngestedFile]]]:
    """One change per group of ``_stage_groups``: the workers write the rows under a stage, and the change names
    what they wrote (``Change.staged``); no passage row passes through this process."""
    from indexer.ray_ingest import ray_ingest

    for group in _stage_groups(pending, known):
        stage = target.stage(len(group))
        whole = IngestedBatch()
        started = time.perf_counter()
        for batch in ray_ingest(ray, group, embedder.name, embedder.quantize, params, max_file_bytes, progress, stage):
            whole.files += batch.files
            for part in batch.staged.values():
                whole.add_staged(part)
        tally.seconds += time.perf_counter() - started
        tally.tokens += sum(file.tokens for file in whole.files)
        yield _change(whole.files, removed, tuple(whole.staged.values())), whole.files
        removed = ()
    if removed:
        yield Change(removed=removed), []


def _stage_groups(pending: Pending, known: dict[str, FileState]) -> Iterator[Pending]:
    """The pending files in groups holding at most ``STAGED_REPLACEMENTS`` files the index already holds: each group
    commits once, and the versions it replaces must fit its backend's list of rows pending deletion."""
    group: Pending = []
    replacing = 0
    for item in pending:
        if item[0].doc_id in known:
            if replacing == STAGED_REPLACEMENTS:
                yield group
                group, replacing = [], 0
            replacing += 1
        group.append(item)
    if group:
        yield group


def _change(files: list[IngestedFile], removed: tuple[str, ...], staged: tuple[StagedRows, ...] = ()) -> Change:
    upserts, sources = [], []
    for file in files:
        entry = file.read.entry
        if file.embedded is not None:
            upserts.append(file.embedded.upsert)
        elif file.read.unchanged:
            sources.append((entry.doc_id, file_source(entry.size, entry.mtime_ns)))
    return Change(tuple(upserts), removed, tuple(sources), staged)


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
