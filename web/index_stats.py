"""What ``/health`` and ``/metrics`` say about the open index, read in one place: the backend's own counts
with the model and encoder that answer queries; segment figures only where the backend manages segments."""

from __future__ import annotations

from dataclasses import dataclass

from search.backends.contract import SegmentStatistics
from search.ranking.searcher import Searcher


@dataclass(frozen=True)
class IndexStats:
    """Sizes and identity of the index a searcher holds open."""

    documents: int
    passages: int
    segments: int | None
    deleted_fraction: float | None
    version: str
    model: str
    encoder: str
    backend: str


def index_stats(searcher: Searcher) -> IndexStats:
    backend = searcher.backend
    counts = backend.counts()
    segments = backend.segment_counts() if isinstance(backend, SegmentStatistics) else None
    return IndexStats(
        documents=counts.documents,
        passages=counts.passages,
        segments=segments.segments if segments else None,
        deleted_fraction=segments.deleted_fraction if segments else None,
        version=counts.version,
        model=searcher.backend.settings.model,
        encoder=searcher.embedder.encoder,
        backend=searcher.backend.name,
    )
