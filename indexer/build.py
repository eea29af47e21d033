"""Bringing an index up to date with a documents folder: stat first, hash what changed, embed what is new."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexer.chunking import ChunkingParams
from indexer.documents import (
    Document,
    FileEntry,
    FileState,
    file_source,
    file_states,
    list_files,
    list_named_files,
    read_changed,
    require_folder,
)
from indexer.update import apply_changes
from indexer.upserts import IngestedBatch, document_upserts, ingested_files
from search.backends.checkpoints import FOLDER_WRITTEN, READING, StageReporter, quiet, reach
from search.backends.contract import Change, IndexLocation, Maintainable, StagedWrites
from search.backends.registry import AnyBackend, backend_class
from search.encoding.embedder import Embedder
from search.encoding.embedding import load_embedder
from search.errors import IndexFormatError, IndexNotFound
from search.index_settings import IndexSettings
from search.settings import Settings
from search.text.analyzer import Analyzer

# File bytes read, chunked and embedded per commit of a local build, so its memory follows the batch, not the
# folder: one commit of 1,000,000 benchmark passages (100,000 files, 800 MB) peaked at 21.9 GB and 2,000,000
# were killed for memory (docs/benchmarks.md). 64 MB is about 80,000 such passages, a few GB.
LOCAL_COMMIT_BYTES = 64 << 20
# Files already indexed per stage of a Ray build whose workers write (each stage commits once, and Milvus lists
# the versions a commit replaces in its state row, which holds about 7,000).
STAGED_REPLACEMENTS = 5_000


@dataclass
class BuildReport:
    """What a build did, for the CLI to print and the API to report."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: int = 0
    warnings: list[str] = field(default_factory=list)
    embedded_passages: int = 0
    total_passages: int = 0
    full_rebuild_reason: str | None = None
    written: bool = False
    compacted_segments: int = 0
    seconds: float = 0.0
    rows_by_worker: dict[str, int] = field(default_factory=dict)
    """With ``--ray`` on a backend whose workers write (``StagedWrites``): the rows each worker process wrote."""
    rows_through_driver: int = 0
    """With ``--ray``: the vector rows that came back to the build's process to be written there."""


def build_index(
    docs_dir: Path,
    index: Path | IndexLocation,
    model: str,
    params: ChunkingParams,
    *,
    full: bool = False,
    max_file_bytes: int = 10_000_000,
    show_progress: bool = False,
    report_stage: StageReporter = quiet,
    embedder: Embedder | None = None,
    only: Sequence[str] | None = None,
    quantize: str | None = None,
    ray: str | None = None,
) -> BuildReport:
    """Make the index at ``index_dir`` hold what ``docs_dir`` holds, re-reading only files whose stat changed.

    ``only`` names the documents known to have changed (an upload, a watcher event): then nothing else is
    even listed, so the cost is that of the change, not of the folder. ``ray`` (an address, or ``local``)
    reads and embeds the changed files on a Ray cluster (``indexer.ray_ingest``) instead of in this process.
    """
    require_folder(docs_dir)
    location = IndexLocation.of(index)
    started = time.perf_counter()
    report = BuildReport()
    kind = backend_class(location.backend)
    with kind.writer(location):
        if only is None:  # a named change (an upload, a watcher event) leaves housekeeping to folder builds
            kind.discard_stale(location)
        backend, report.full_rebuild_reason = _reusable_backend(location, model, quantize, params, full)
        reach(READING, report_stage)
        if only is None or backend is None:
            entries, known = list_files(docs_dir, report.warnings), file_states(backend.documents()) if backend else {}
        else:
            entries, known = list_named_files(docs_dir, only, report.warnings), file_states(backend.documents(only))
        pending = _stat_changed(entries, known, report)
        if backend is not None and not (pending or report.removed):
            report.total_passages = backend.counts().passages
        else:
            embedder = embedder or load_embedder(model, quantize)
            pending_hashes = [(entry, known[entry.doc_id].sha256 if entry.doc_id in known else None) for entry in pending]

            def changes(fitted: ChunkingParams, target: AnyBackend) -> Iterator[Change]:
                if ray is not None:
                    return _ray_changes(pending_hashes, known, embedder, fitted, max_file_bytes, ray, report, show_progress, target)
                return _folder_changes(pending_hashes, known, embedder, fitted, max_file_bytes, report, show_progress)

            _write(location, backend, embedder, params, changes, report, report_stage)
    report.seconds = time.perf_counter() - started
    return report


def build_from_settings(
    settings: Settings,
    *,
    full: bool = False,
    show_progress: bool = False,
    report_stage: StageReporter = quiet,
    only: Sequence[str] | None = None,
) -> BuildReport:
    """``build_index`` with everything an operator configured: the one call the CLI, the server and the watcher make."""
    return build_index(
        settings.docs,
        settings.location(),
        settings.model,
        ChunkingParams(settings.chunk_tokens, settings.overlap_sentences),
        full=full,
        max_file_bytes=settings.max_file_bytes,
        show_progress=show_progress,
        report_stage=report_stage,
        only=only,
        quantize=settings.quantize,
        # One upload or watcher event costs less to embed here than joining a cluster would.
        ray=settings.ray if only is None else None,
    )


def index_documents(
    documents: list[Document],
    index: Path | IndexLocation,
    model: str,
    params: ChunkingParams,
    *,
    show_progress: bool = False,
    embedder: Embedder | None = None,
    quantize: str | None = None,
) -> BuildReport:
    """A fresh index of exactly ``documents`` (evaluation sets and benchmarks that have no folder)."""
    location = IndexLocation.of(index)
    report = BuildReport(added=[d.doc_id for d in documents], full_rebuild_reason="a fresh index was asked for")
    started = time.perf_counter()
    kind = backend_class(location.backend)
    with kind.writer(location):
        kind.discard_stale(location)
        embedder = embedder or load_embedder(model, quantize)

        def changes(fitted: ChunkingParams, target: AnyBackend) -> list[Change]:
            return [Change(tuple(document_upserts(documents, embedder, fitted, show_progress)))]

        _write(location, None, embedder, params, changes, report, quiet)
    report.seconds = time.perf_counter() - started
    return report


def _write(
    location: IndexLocation,
    backend: AnyBackend | None,
    embedder: Embedder,
    params: ChunkingParams,
    changes: Callable[[ChunkingParams, AnyBackend], Iterable[Change]],
    report: BuildReport,
    report_stage: StageReporter,
) -> None:
    """Apply the changes (made for the chunking that fits the model) in place, or into a new index published
    at the end when rebuilding, so a fresh build is all or nothing however many changes it takes."""
    fitted = _fit_to_model(params, embedder, report)
    fresh = backend is None
    if backend is None:
        settings = IndexSettings(embedder.name, embedder.dimension, params.as_dict(), Analyzer(), embedder.quantize, location.backend)
        backend = backend_class(location.backend).create(location, settings)
    try:
        result = apply_changes(backend, changes(fitted, backend), report_stage)
        report.embedded_passages = result.embedded_passages
        if isinstance(backend, Maintainable):
            report.compacted_segments = (backend.seal if fresh else backend.maintain)(report=report_stage).merged_segments
        report.total_passages = backend.counts().passages
        report.written = True
        if fresh:
            reach(FOLDER_WRITTEN, report_stage)
            backend.publish()
    finally:
        backend.close()


def _reusable_backend(
    location: IndexLocation, model: str, quantize: str | None, params: ChunkingParams, full: bool
) -> tuple[AnyBackend | None, str | None]:
    """The live index if it can be updated in place, else why everything is rebuilt."""
    if full:
        return None, "--full was requested"
    try:
        backend = backend_class(location.backend).open(location)
    except IndexNotFound:
        return None, "no index existed"
    except IndexFormatError as exc:
        return None, f"the existing index is unusable ({exc})"
    settings = backend.settings
    reason = None
    if settings.model != model:
        reason = f"the model changed from {settings.model} to {model}"
    elif settings.quantize != quantize:
        reason = f"the encoder precision changed from {settings.quantize or 'fp32'} to {quantize or 'fp32'}"
    elif settings.chunking != params.as_dict():
        reason = "the chunking parameters changed"
    if reason is not None:
        backend.close()
        return None, reason
    backend.recover()
    return backend, None


def _stat_changed(entries: list[FileEntry], known: dict[str, FileState], report: BuildReport) -> list[FileEntry]:
    """The files whose size or mtime differ from the index's: the only ones read. Counts the rest as kept
    and fills ``removed`` with the indexed documents no longer in the folder."""
    pending = []
    for entry in entries:
        state = known.get(entry.doc_id)
        if state is not None and (state.size, state.mtime_ns) == (entry.size, entry.mtime_ns):
            report.kept += 1
        else:
            pending.append(entry)
    report.removed = sorted(set(known) - {entry.doc_id for entry in entries})
    return pending


def _folder_changes(
    pending: list[tuple[FileEntry, str | None]],
    known: dict[str, FileState],
    embedder: Embedder,
    params: ChunkingParams,
    max_file_bytes: int,
    report: BuildReport,
    show_progress: bool,
) -> Iterator[Change]:
    """The changes the pending files make, read and embedded in this process, one change per
    ``LOCAL_COMMIT_BYTES`` of files; the removed documents go with the first."""
    batches = (
        ingested_files([read_changed(entry, indexed, max_file_bytes) for entry, indexed in group], embedder, params, show_progress)
        for group in _bounded_groups(pending)
    )
    yield from _changes((IngestedBatch(files) for files in batches), known, report, tuple(report.removed))


def _ray_changes(
    pending: list[tuple[FileEntry, str | None]],
    known: dict[str, FileState],
    embedder: Embedder,
    params: ChunkingParams,
    max_file_bytes: int,
    ray: str,
    report: BuildReport,
    show_progress: bool,
    backend: AnyBackend,
) -> Iterator[Change]:
    """The same changes read, chunked and embedded on a Ray cluster (``indexer.ray_ingest``). Where the backend's
    workers write rows themselves (``StagedWrites``), each group of ``_stage_groups`` is one stage and one commit,
    and the driver receives counts only; otherwise bounded batches of embedded documents come back to commit."""
    from indexer.ray_ingest import ray_ingest

    removed = tuple(report.removed)
    if not isinstance(backend, StagedWrites):
        batches = ray_ingest(ray, pending, embedder.name, embedder.quantize, params, max_file_bytes, show_progress)
        yield from _changes(batches, known, report, removed)
        return
    for group in _stage_groups(pending, known):
        stage = backend.stage(len(group))
        yield from _changes(
            ray_ingest(ray, group, embedder.name, embedder.quantize, params, max_file_bytes, show_progress, stage), known, report, removed
        )
        removed = ()
    if removed:
        yield Change(removed=removed)


def _changes(
    batches: Iterable[IngestedBatch], known: dict[str, FileState], report: BuildReport, removed: tuple[str, ...]
) -> Iterator[Change]:
    """One change per batch of ingested files; ``removed`` goes with the first.

    A known file that cannot be read now keeps its indexed version (with a warning): nothing is dropped for
    a passing read error.
    """
    for batch in batches:
        upserts, sources = [], []
        for file in batch.files:
            entry, state = file.read.entry, known.get(file.read.entry.doc_id)
            report.warnings.extend(file.read.warnings)
            if file.new_content:
                (report.updated if state is not None else report.added).append(entry.doc_id)
                if file.upsert is not None:
                    upserts.append(file.upsert)
                    report.rows_through_driver += len(file.upsert.vectors)
            elif file.read.unchanged:
                sources.append((entry.doc_id, file_source(entry.size, entry.mtime_ns)))
                report.kept += 1
            else:
                report.kept += state is not None
        for part in batch.staged.values():
            report.rows_by_worker[part.worker] = report.rows_by_worker.get(part.worker, 0) + sum(part.rows.values())
        yield Change(tuple(upserts), removed, tuple(sources), tuple(batch.staged.values()))
        removed = ()
    if removed:
        yield Change(removed=removed)


def _stage_groups(pending: list[tuple[FileEntry, str | None]], known: dict[str, FileState]) -> Iterator[list[tuple[FileEntry, str | None]]]:
    """The pending files in groups holding at most ``STAGED_REPLACEMENTS`` files the index already holds: each group
    commits once, and the versions it replaces must fit its backend's list of rows pending deletion."""
    group: list[tuple[FileEntry, str | None]] = []
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


def _bounded_groups(pending: list[tuple[FileEntry, str | None]]) -> Iterator[list[tuple[FileEntry, str | None]]]:
    """The pending files in groups of at most ``LOCAL_COMMIT_BYTES`` (or one larger file), in order."""
    group: list[tuple[FileEntry, str | None]] = []
    held = 0
    for item in pending:
        if group and held + item[0].size > LOCAL_COMMIT_BYTES:
            yield group
            group, held = [], 0
        group.append(item)
        held += item[0].size
    if group:
        yield group


def _fit_to_model(params: ChunkingParams, embedder: Embedder, report: BuildReport) -> ChunkingParams:
    """A passage longer than the model's window would be silently truncated: cap the budget instead."""
    if params.max_tokens <= embedder.max_tokens:
        return params
    report.warnings.append(
        f"chunk size {params.max_tokens} tokens is over what {embedder.name} reads ({embedder.max_tokens}); using {embedder.max_tokens}"
    )
    return ChunkingParams(embedder.max_tokens, params.overlap_sentences)
