"""What ``/health`` and ``/metrics`` say about the open index, read in one place: the backend's own stats
with the model and encoder that answer queries."""

from __future__ import annotations

from dataclasses import dataclass

from search.ranking.searcher import Searcher


@dataclass(frozen=True)
class IndexStats:
    """Sizes and identity of the index a searcher holds open."""

    documents: int
    passages: int
    segments: int
    deleted_fraction: float
    version: str
    model: str
    encoder: str
    backend: str


def index_stats(searcher: Searcher) -> IndexStats:
    stats = searcher.backend.stats()
    return IndexStats(
        documents=stats.documents,
        passages=stats.passages,
        segments=stats.segments,
        deleted_fraction=stats.deleted_fraction,
        version=stats.version,
        model=searcher.backend.settings.model,
        encoder=searcher.embedder.encoder,
        backend=searcher.backend.name,
    )
