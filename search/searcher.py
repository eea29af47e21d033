"""Ranking passages of a loaded index for a query."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.embedding import Embedder, load_embedder
from search.errors import IndexFormatError, InvalidQuery
from search.index_format import FIX_HINT, IndexData, load_index
from search.records import Hit


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[Hit]


class Searcher:
    """An index and the model that embedded it, ready to answer queries."""

    def __init__(self, index: IndexData, embedder: Embedder) -> None:
        if embedder.dimension != index.manifest.dimension:
            raise IndexFormatError(
                f"model {embedder.name} makes {embedder.dimension}-dimensional vectors but the index holds "
                f"{index.manifest.dimension}; {FIX_HINT}"
            )
        self.index = index
        self.embedder = embedder

    @classmethod
    def open(cls, index_dir: Path, model: str | None = None) -> "Searcher":
        """Load an index with its own model; a differing ``model`` is refused rather than giving nonsense."""
        index = load_index(index_dir)
        if model is not None and model != index.manifest.model:
            raise IndexFormatError(
                f"index at {index_dir} was built with model {index.manifest.model!r}, not {model!r}; "
                f"rebuild it with `semsearch index --full --model {model}` or use its model"
            )
        return cls(index, load_embedder(index.manifest.model))

    def search(self, query: str, k: int = 10, offset: int = 0) -> SearchResult:
        """The ``k`` best passages after skipping ``offset``, best first."""
        query = query.strip()
        if not query:
            raise InvalidQuery("the query is empty")
        if k < 1 or offset < 0:
            raise InvalidQuery("k must be at least 1 and offset at least 0")
        total = self.index.vectors.ntotal
        wanted = min(total, k + offset)
        if wanted <= offset:
            return SearchResult(total=total, hits=[])
        vector = self.embedder.encode([query])
        scores, rows = self.index.vectors.search(vector, wanted)
        hits = [self._hit(rank, float(score), int(row)) for rank, (score, row) in enumerate(zip(scores[0], rows[0]), start=1)]
        return SearchResult(total=total, hits=hits[offset:])

    def _hit(self, rank: int, score: float, row: int) -> Hit:
        passage = self.index.passages[row]
        document = self.index.documents[passage.doc_id]
        return Hit(
            rank=rank,
            score=round(float(np.float32(score)), 6),
            doc_id=passage.doc_id,
            title=document.title,
            date=document.date,
            passage_id=passage.passage_id,
            text=document.text[passage.start:passage.end],
            start=passage.start,
            end=passage.end,
            scores={"semantic": score},
        )
