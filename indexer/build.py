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
    LeftOut,
    file_source,
    file_states,
    list_files,
    list_named_files,
    read_changed,
    require_folder,
)
from indexer.update import apply_changes
from indexer.upserts import IngestedFile, document_upserts, ingested_files
from search.backends.checkpoints import FOLDER_WRITTEN, READING, StageReporter, quiet, reach
from search.backends.contract import Change, IndexLocation, Maintainable
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


@dataclass
class BuildReport:
    """What a build did, for the CLI to print and the API to report."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: int = 0
    warnings: list[str] = field(default_factory=list)
    left_out: dict[str, list[str]] = field(default_factory=dict)
    embedded_passages: int = 0
    total_passages: int = 0
    full_rebuild_reason: str | None = None
    written: bool = False
    compacted_segments: int = 0
    seconds: float = 0.0

    def leave_out(self, files: Iterable[LeftOut]) -> None:
        """Count files the index does not hold under their reason (``left_out``: reason -> doc ids)."""
        for file in files:
            self.left_out.setdefault(file.reason, []).append(file.doc_id)

    def problems(self) -> list[str]:
        """The warnings, then one line per file left out: what a log that has no summary line shows."""
        return [*self.warnings, *(str(LeftOut(doc_id, reason)) for reason, ids in self.left_out.items() for doc_id in ids)]


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
        kind.discard_stale(location)
        backend, report.full_rebuild_reason = _reusable_backend(location, model, quantize, params, full)
        reach(READING, report_stage)
        left_out: list[LeftOut] = []
        if only is None or backend is None:
            entries, known = list_files(docs_dir, left_out), file_states(backend.documents()) if backend else {}
        else:
            entries, known = list_named_files(docs_dir, only, left_out), file_states(backend.documents(only))
        report.leave_out(left_out)
        pending = _stat_changed(entries, known, report)
        if backend is not None and not (pending or report.removed):
            report.total_passages = backend.counts().passages
        else:
            embedder = embedder or load_embedder(model, quantize)
            pending_hashes = [(entry, known[entry.doc_id].sha256 if entry.doc_id in known else None) for entry in pending]

            def changes(fitted: ChunkingParams) -> Iterator[Change]:
                return _folder_changes(pending_hashes, known, embedder, fitted, max_file_bytes, ray, report, show_progress)

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

        def changes(fitted: ChunkingParams) -> list[Change]:
            return [Change(tuple(document_upserts(documents, embedder, fitted, show_progress)))]

        _write(location, None, embedder, params, changes, report, quiet)
    report.seconds = time.perf_counter() - started
    return report


def _write(
    location: IndexLocation,
    backend: AnyBackend | None,
    embedder: Embedder,
    params: ChunkingParams,
    changes: Callable[[ChunkingParams], Iterable[Change]],
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
        result = apply_changes(backend, changes(fitted), report_stage)
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
    ray: str | None,
    report: BuildReport,
    show_progress: bool,
) -> Iterator[Change]:
    """The changes the pending files make, read and embedded in this process (one change per
    ``LOCAL_COMMIT_BYTES`` of files) or on a Ray cluster (bounded batches as they come back); the removed
    documents go with the first.

    A known file that cannot be read now keeps its indexed version (with a warning): nothing is dropped for
    a passing read error.
    """
    if ray is None:
        batches: Iterable[list[IngestedFile]] = (
            ingested_files([read_changed(entry, indexed, max_file_bytes) for entry, indexed in group], embedder, params, show_progress)
            for group in _bounded_groups(pending)
        )
    else:
        from indexer.ray_ingest import ray_ingest

        batches = ray_ingest(ray, pending, embedder.name, embedder.quantize, params, max_file_bytes, show_progress)
    removed = tuple(report.removed)
    for files in batches:
        upserts, sources = [], []
        for file in files:
            entry, state = file.read.entry, known.get(file.read.entry.doc_id)
            report.warnings.extend(file.read.warnings)
            report.leave_out([file.read.left_out] if file.read.left_out else [])
            if file.upsert is not None:
                (report.updated if state is not None else report.added).append(entry.doc_id)
                upserts.append(file.upsert)
            elif file.read.unchanged:
                sources.append((entry.doc_id, file_source(entry.size, entry.mtime_ns)))
                report.kept += 1
            else:
                report.kept += state is not None
        yield Change(tuple(upserts), removed, tuple(sources))
        removed = ()
    if removed:
        yield Change(removed=removed)


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
