"""Bringing an index up to date with a documents folder: stat first, hash what changed, embed what is new."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexer.changes import EmbeddingTally, folder_changes
from indexer.chunking import ChunkingParams
from indexer.documents import (
    Document,
    FileEntry,
    FileState,
    LeftOut,
    file_states,
    list_files,
    list_named_files,
    require_folder,
)
from indexer.progress import QUIET, BuildProgress, ProgressDisplay
from indexer.update import apply_changes
from indexer.upserts import IngestedFile, document_upserts
from search.backends.checkpoints import FOLDER_WRITTEN, READING, StageReporter, quiet, reach
from search.backends.contract import Change, IndexLocation, Maintainable
from search.backends.registry import AnyBackend, backend_class
from search.encoding.embedder import Embedder
from search.encoding.embedding import load_embedder
from search.errors import IndexFormatError, IndexNotFound
from search.index_settings import IndexSettings
from search.settings import Settings
from search.text.analyzer import Analyzer


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
    # Tokens the encoder ran, and the seconds spent reading and embedding (commits excluded).
    embedded_tokens: int = 0
    embedding_seconds: float = 0.0
    full_rebuild_reason: str | None = None
    written: bool = False
    compacted_segments: int = 0
    seconds: float = 0.0
    rows_by_worker: dict[str, int] = field(default_factory=dict)
    """With ``--ray`` on a backend whose workers write (``StagedWrites``): the rows each worker process wrote."""
    rows_through_driver: int = 0
    """With ``--ray``: the vector rows that came back to the build's process to be written there."""

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
    progress: ProgressDisplay = QUIET,
    report_stage: StageReporter = quiet,
    embedder: Embedder | None = None,
    only: Sequence[str] | None = None,
    quantize: str | None = None,
    ray: str | None = None,
    device: str = "cpu",
) -> BuildReport:
    """Make the index at ``index_dir`` hold what ``docs_dir`` holds, re-reading only files whose stat changed.

    ``only`` names the documents known to have changed (an upload, a watcher event): then nothing else is
    even listed, so the cost is that of the change, not of the folder. ``ray`` (an address, or ``local``)
    reads and embeds the changed files on a Ray cluster (``indexer.ray_ingest``) instead of in this process;
    ``device`` (cpu or cuda) is where this process embeds.
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
        first = backend is None and not kind.exists(location)
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
            embedder = embedder or load_embedder(model, quantize, device)
            pending_hashes = [(entry, known[entry.doc_id].sha256 if entry.doc_id in known else None) for entry in pending]
            meter = BuildProgress(len(pending), sum(entry.size for entry in pending), progress)

            def changes(fitted: ChunkingParams, target: AnyBackend) -> Iterator[Change]:
                return _folder_changes(pending_hashes, known, embedder, fitted, max_file_bytes, ray, report, meter, target)

            try:
                # With no index before, nothing answers from an older one: publish at once, so every commit
                # of an interrupted first build is kept and the next run goes on from there.
                _write(location, backend, embedder, params, changes, report, report_stage, publish_first=first)
            finally:
                meter.close()
    report.seconds = time.perf_counter() - started
    return report


def build_from_settings(
    settings: Settings,
    *,
    full: bool = False,
    progress: ProgressDisplay = QUIET,
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
        progress=progress,
        report_stage=report_stage,
        only=only,
        quantize=settings.quantize,
        device=settings.device,
        # One upload or watcher event costs less to embed here than joining a cluster would.
        ray=settings.ray if only is None else None,
    )


def index_documents(
    documents: list[Document],
    index: Path | IndexLocation,
    model: str,
    params: ChunkingParams,
    *,
    progress: ProgressDisplay = QUIET,
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

        meter = BuildProgress(len(documents), sum(len(document.text) for document in documents), progress)

        def changes(fitted: ChunkingParams, target: AnyBackend) -> list[Change]:
            started = time.perf_counter()
            embedded = document_upserts(documents, embedder, fitted, meter.embedded)
            meter.files_done(
                len(documents), sum(len(document.text) for document in documents), sum(len(d.upsert.passages) for d in embedded)
            )
            report.embedded_tokens = sum(document.tokens for document in embedded)
            report.embedding_seconds = time.perf_counter() - started
            return [Change(tuple(document.upsert for document in embedded))]

        try:
            _write(location, None, embedder, params, changes, report, quiet)
        finally:
            meter.close()
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
    publish_first: bool = False,
) -> None:
    """Apply the changes (made for the chunking that fits the model) in place, or into a new index. A new
    index is published at the end, so a rebuild is all or nothing however many changes it takes, or with
    ``publish_first`` before the first change, so each change is kept as it commits."""
    fitted = _fit_to_model(params, embedder, report)
    fresh = backend is None
    if backend is None:
        settings = IndexSettings(embedder.name, embedder.dimension, params.as_dict(), Analyzer(), embedder.quantize, location.backend)
        backend = backend_class(location.backend).create(location, settings)
        if publish_first:
            backend.publish()
            backend.close()
            backend = backend_class(location.backend).open(location)
    try:
        result = apply_changes(backend, changes(fitted, backend), report_stage)
        report.embedded_passages = result.embedded_passages
        if isinstance(backend, Maintainable):
            report.compacted_segments = (backend.seal if fresh else backend.maintain)(report=report_stage).merged_segments
        report.total_passages = backend.counts().passages
        report.written = True
        if fresh and not publish_first:
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
    progress: BuildProgress,
    target: AnyBackend,
) -> Iterator[Change]:
    """``indexer.changes.folder_changes``, with each file's outcome, the embedding's cost and, on Ray, where the
    rows were written in ``report``."""
    tally = EmbeddingTally()
    removed = tuple(report.removed)
    try:
        for change, files in folder_changes(pending, known, removed, embedder, params, max_file_bytes, ray, progress, tally, target):
            _account(files, known, report)
            if ray is not None:
                report.rows_through_driver += sum(len(upsert.vectors) for upsert in change.upserts)
            for part in change.staged:
                report.rows_by_worker[part.worker] = report.rows_by_worker.get(part.worker, 0) + sum(part.rows.values())
            yield change
    finally:
        report.embedded_tokens, report.embedding_seconds = tally.tokens, tally.seconds


def _account(files: list[IngestedFile], known: dict[str, FileState], report: BuildReport) -> None:
    """Each file as added, updated or kept, with its warnings."""
    for file in files:
        doc_id = file.read.entry.doc_id
        report.warnings.extend(file.read.warnings)
        report.leave_out([file.read.left_out] if file.read.left_out else [])
        if file.new_content:
            (report.updated if doc_id in known else report.added).append(doc_id)
        elif file.read.unchanged:
            report.kept += 1
        else:
            report.kept += doc_id in known


def _fit_to_model(params: ChunkingParams, embedder: Embedder, report: BuildReport) -> ChunkingParams:
    """A passage longer than the model's window would be silently truncated: cap the budget instead."""
    if params.max_tokens <= embedder.max_tokens:
        return params
    report.warnings.append(
        f"chunk size {params.max_tokens} tokens is over what {embedder.name} reads ({embedder.max_tokens}); using {embedder.max_tokens}"
    )
    return ChunkingParams(embedder.max_tokens, params.overlap_sentences)
