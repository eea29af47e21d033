"""Applying one change (documents added, replaced or removed) to an open backend, all or nothing.

The documents are chunked and embedded here (``indexer.upserts``), then handed to the backend's commit
protocol: prepare (written, invisible), commit (one atomic step), recovery by the next writer after a
crash. Nothing here reads, rewrites or re-scores what did not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from indexer.chunking import ChunkingParams
from indexer.documents import Document
from indexer.upserts import document_upserts
from search.backends.base import Change, RetrievalBackend
from search.embedder import Embedder
from search.stages import EMBEDDING, StageReporter, quiet, reach


@dataclass
class ChangeResult:
    embedded_passages: int = 0
    removed_passages: int = 0
    stat_updates: int = 0
    generation: int = 0
    warnings: list[str] = field(default_factory=list)


def apply_change(
    backend: RetrievalBackend,
    embedder: Embedder,
    params: ChunkingParams,
    new_documents: list[Document],
    removed_doc_ids: list[str],
    touched: list[Document] | None = None,
    show_progress: bool = False,
    report: StageReporter = quiet,
) -> ChangeResult:
    """Index ``new_documents`` (replacing any with the same id), drop ``removed_doc_ids``, and record new
    file stats for ``touched`` documents whose content did not change."""
    reach(EMBEDDING, report)
    upserts = document_upserts(new_documents, embedder, params, show_progress)
    change = Change(tuple(upserts), tuple(removed_doc_ids), tuple((d.doc_id, d.size, d.mtime_ns) for d in touched or []))
    committed = backend.apply(change, report)
    return ChangeResult(committed.added_passages, committed.removed_passages, len(touched or []), committed.generation)
