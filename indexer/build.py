"""Building and incrementally updating an index from a documents folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.chunking import ChunkingParams, pack_passages, sentence_units
from indexer.documents import Document, read_documents, require_folder
from search.embedding import Embedder, load_embedder
from search.errors import IndexFormatError, IndexNotFound
from search.keyword import KeywordIndex
from search.index_format import (
    IndexData,
    hold_writer_lock,
    load_index,
    new_manifest,
    remove_stale_versions,
    save_index,
    vectors_from_matrix,
)
from search.records import DocumentRecord, PassageRecord, SentenceRecord

StageReporter = Callable[[str], None]


@dataclass
class BuildReport:
    """What a build did, for the CLI to print and the API to report."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    embedded_passages: int = 0
    total_passages: int = 0
    full_rebuild_reason: str | None = None
    written: bool = False
    seconds: float = 0.0


def build_index(
    docs_dir: Path,
    index_dir: Path,
    model: str,
    params: ChunkingParams,
    *,
    full: bool = False,
    max_file_bytes: int = 10_000_000,
    show_progress: bool = False,
    report_stage: StageReporter | None = None,
) -> BuildReport:
    """Bring the index at ``index_dir`` up to date with ``docs_dir``, embedding only what changed."""
    require_folder(docs_dir)
    (report_stage or _quiet)("reading documents")
    read = read_documents(docs_dir, max_file_bytes)
    report = index_documents(
        read.documents, index_dir, model, params, full=full, show_progress=show_progress, report_stage=report_stage
    )
    report.warnings[:0] = read.warnings
    return report


def index_documents(
    documents: list[Document],
    index_dir: Path,
    model: str,
    params: ChunkingParams,
    *,
    full: bool = False,
    show_progress: bool = False,
    report_stage: StageReporter | None = None,
) -> BuildReport:
    """Make ``documents`` the content of the index, re-embedding only new or changed ones."""
    started = time.perf_counter()
    stage = report_stage or _quiet
    with hold_writer_lock(index_dir):
        remove_stale_versions(index_dir)
        report = BuildReport()
        previous, report.full_rebuild_reason = _reusable_index(index_dir, model, params, full)
        _classify(documents, previous, report)
        if previous is None or report.added or report.updated or report.removed:
            stage("loading model")
            embedder = load_embedder(model)
            new_data = _assemble(documents, previous, embedder, params, report, show_progress, stage)
            stage("writing index")
            save_index(index_dir, new_data)
            report.written = True
        else:
            report.total_passages = len(previous.passages)
    report.seconds = time.perf_counter() - started
    return report


def _quiet(_stage: str) -> None:
    """Stage reporter for callers that do not follow progress."""


def _fit_to_model(params: ChunkingParams, embedder: Embedder, report: BuildReport) -> ChunkingParams:
    """A passage longer than the model's window would be silently truncated: cap the budget instead."""
    if params.max_tokens <= embedder.max_tokens:
        return params
    report.warnings.append(
        f"chunk size {params.max_tokens} tokens is over what {embedder.name} reads ({embedder.max_tokens}); using {embedder.max_tokens}"
    )
    return ChunkingParams(embedder.max_tokens, params.overlap_sentences)


def _reusable_index(index_dir: Path, model: str, params: ChunkingParams, full: bool) -> tuple[IndexData | None, str | None]:
    """The existing index if its passages and vectors can be kept, else why everything is rebuilt."""
    if full:
        return None, "--full was requested"
    try:
        previous = load_index(index_dir)
    except IndexNotFound:
        return None, "no index existed"
    except IndexFormatError as exc:
        return None, f"the existing index is unusable ({exc})"
    if previous.manifest.model != model:
        return None, f"the model changed from {previous.manifest.model} to {model}"
    if previous.manifest.chunking != params.as_dict():
        return None, "the chunking parameters changed"
    return previous, None


def _assemble(
    documents: list[Document],
    previous: IndexData | None,
    embedder: Embedder,
    params: ChunkingParams,
    report: BuildReport,
    show_progress: bool,
    stage: StageReporter,
) -> IndexData:
    """The new index: kept passages with their stored vectors, plus freshly embedded ones.

    The manifest records the requested chunking; the budget actually used is that capped to the model.
    """
    requested, params = params, _fit_to_model(params, embedder, report)
    kept = set(report.kept)
    records = {d.doc_id: DocumentRecord(d.doc_id, d.title, d.date, d.text, d.sha256) for d in documents}
    new_passages: list[PassageRecord] = []
    new_sentences: list[SentenceRecord] = []
    stage("chunking")
    for document in documents:
        if document.doc_id in kept:
            continue
        units = sentence_units(document.text, embedder.count_tokens, params.max_tokens)
        new_sentences.extend(SentenceRecord(document.doc_id, u.start, u.end) for u in units)
        for ordinal, chunk in enumerate(pack_passages(document.text, units, embedder.count_tokens, params)):
            new_passages.append(PassageRecord(f"{document.doc_id}#{ordinal}", document.doc_id, chunk.start, chunk.end))
    stage(f"embedding {len(new_passages)} passages")
    new_vectors = embedder.encode(_span_texts(records, new_passages), progress=show_progress)
    stage(f"embedding {len(new_sentences)} sentences")
    new_sentence_vectors = embedder.encode(_span_texts(records, new_sentences), progress=show_progress)
    report.embedded_passages = len(new_passages)
    passage_rows = _rows_of(previous.passages, kept) if previous else []
    sentence_rows = _rows_of(previous.sentences, kept) if previous else []
    passages = [previous.passages[row] for row in passage_rows] + new_passages
    sentences = [previous.sentences[row] for row in sentence_rows] + new_sentences
    if previous:
        matrix = np.vstack([previous.vector_matrix()[passage_rows], new_vectors])
        sentence_matrix = np.vstack([previous.sentence_vectors[sentence_rows], new_sentence_vectors])
    else:
        matrix, sentence_matrix = new_vectors, new_sentence_vectors
    report.total_passages = len(passages)
    stage("building keyword index")
    keyword = KeywordIndex.build(_span_texts(records, passages))
    manifest = new_manifest(
        model=embedder.name,
        dimension=embedder.dimension,
        chunking=requested.as_dict(),
        documents={d.doc_id: d.sha256 for d in documents},
        passage_count=len(passages),
    )
    vectors = vectors_from_matrix(matrix, embedder.dimension)
    return IndexData(manifest, vectors, passages, records, sentences, sentence_matrix, keyword)


def _classify(documents: list[Document], previous: IndexData | None, report: BuildReport) -> None:
    """Sort documents into added, updated, kept and removed by their content hash."""
    old_hashes = previous.manifest.documents if previous else {}
    for document in documents:
        if document.doc_id not in old_hashes:
            report.added.append(document.doc_id)
        elif old_hashes[document.doc_id] != document.sha256:
            report.updated.append(document.doc_id)
        else:
            report.kept.append(document.doc_id)
    report.removed = sorted(set(old_hashes) - {d.doc_id for d in documents})


def _rows_of(records: list[PassageRecord] | list[SentenceRecord], doc_ids: set[str]) -> list[int]:
    """Rows that belong to the given documents, in their stored order."""
    return [row for row, record in enumerate(records) if record.doc_id in doc_ids]


def _span_texts(records: dict[str, DocumentRecord], spans: list[PassageRecord] | list[SentenceRecord]) -> list[str]:
    """The text each passage or sentence covers in its document."""
    return [records[span.doc_id].text[span.start:span.end] for span in spans]
