"""What ``/health`` and ``/metrics`` say about the open index, read in one place.

Both read the index through ``index_stats`` only, so moving the figures to another storage backend
changes this function and nothing that reports them.
"""

from __future__ import annotations

from dataclasses import dataclass

from search.searcher import Searcher


@dataclass(frozen=True)
class IndexStats:
    """Sizes and identity of the index a searcher holds open."""

    documents: int
    passages: int
    segments: int
    deleted: int
    version: str
    model: str
    encoder: str

    @property
    def deleted_fraction(self) -> float:
        """Share of the stored vectors that belong to deleted passages (compaction drops them)."""
        stored = self.passages + self.deleted
        return self.deleted / stored if stored else 0.0


def index_stats(searcher: Searcher) -> IndexStats:
    index = searcher.index
    store = index.store
    documents, passages = store.counts()
    return IndexStats(
        documents=documents,
        passages=passages,
        segments=len(store.segments()),
        deleted=len(store.tombstones()),
        version=f"{index.folder.name}/{index.generation}",
        model=index.settings.model,
        encoder=searcher.embedder.encoder,
    )
