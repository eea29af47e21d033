"""Ranking passages of a loaded index for a query: filters, de-duplication, grouping and highlights."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import faiss
import numpy as np

from search.embedding import Embedder, load_embedder
from search.errors import IndexFormatError, InvalidQuery
from search.highlight import SentenceTable
from search.index_format import FIX_HINT, IndexData, load_index
from search.records import Hit, PassageRecord

MODES = ("semantic",)
MAX_K = 100
# Passages of one region that share more than this fraction of the shorter one's text are the same answer.
_DUPLICATE_OVERLAP = 0.5
_MIN_DEPTH = 200


@dataclass(frozen=True)
class SearchRequest:
    """A query and everything that narrows or shapes its results."""

    query: str
    k: int = 10
    offset: int = 0
    doc_ids: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    group_by_document: bool = False
    min_score: float | None = None
    mode: str = "semantic"


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[Hit]
    mode: str
    notices: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class _Candidate:
    row: int
    score: float
    components: dict[str, float | None]


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
        self._sentences = SentenceTable(index.sentences, index.sentence_vectors)
        self._rows_by_doc: dict[str, list[int]] = {}
        for row, passage in enumerate(index.passages):
            self._rows_by_doc.setdefault(passage.doc_id, []).append(row)

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

    def passage_count(self, doc_id: str) -> int:
        return len(self._rows_by_doc.get(doc_id, ()))

    def search(self, request: SearchRequest | str, k: int | None = None) -> SearchResult:
        """The ``k`` best passages after skipping ``offset``, best first."""
        if isinstance(request, str):
            request = SearchRequest(request, k=k or 10)
        _validate(request)
        allowed = self._allowed_rows(request)
        if allowed is not None and len(allowed) == 0:
            return SearchResult(total=0, hits=[], mode=request.mode)
        query_vector = self.embedder.encode([request.query.strip()])[0]
        candidates = self._semantic(query_vector, allowed, request)
        ranked = self._shape(candidates, request)
        page = ranked[request.offset:request.offset + request.k]
        hits = [self._hit(request.offset + i, c, query_vector) for i, c in enumerate(page, start=1)]
        return SearchResult(total=len(ranked), hits=hits, mode=request.mode)

    def _allowed_rows(self, request: SearchRequest) -> np.ndarray | None:
        """Rows that pass the filters, or None when nothing is filtered; applied before ranking."""
        if not (request.doc_ids or request.date_from or request.date_to):
            return None
        doc_ids = request.doc_ids or tuple(self._rows_by_doc)
        rows = []
        for doc_id in doc_ids:
            document = self.index.documents.get(doc_id)
            if document is None or not _date_allowed(document.date, request):
                continue
            rows.extend(self._rows_by_doc.get(doc_id, []))
        return np.array(sorted(set(rows)), dtype=np.int64)

    def _semantic(self, query_vector: np.ndarray, allowed: np.ndarray | None, request: SearchRequest) -> list[_Candidate]:
        available = self.index.vectors.ntotal if allowed is None else len(allowed)
        depth = min(available, max(_MIN_DEPTH, 5 * (request.k + request.offset)))
        if depth == 0:
            return []
        params = None if allowed is None else faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        scores, rows = self.index.vectors.search(query_vector[None, :], depth, params=params)
        return [
            _Candidate(int(row), float(score), {"semantic": float(score)})
            for score, row in zip(scores[0], rows[0])
            if row >= 0
        ]

    def _shape(self, candidates: list[_Candidate], request: SearchRequest) -> list[_Candidate]:
        """Drop near-duplicate passages, keep one per document if asked, and apply the score floor."""
        kept: list[_Candidate] = []
        spans_by_doc: dict[str, list[PassageRecord]] = {}
        for candidate in candidates:
            if request.min_score is not None and candidate.score < request.min_score:
                continue
            passage = self.index.passages[candidate.row]
            seen = spans_by_doc.setdefault(passage.doc_id, [])
            if request.group_by_document and seen:
                continue
            if any(_mostly_overlaps(passage, other) for other in seen):
                continue
            seen.append(passage)
            kept.append(candidate)
        return kept

    def _hit(self, rank: int, candidate: _Candidate, query_vector: np.ndarray) -> Hit:
        passage = self.index.passages[candidate.row]
        document = self.index.documents[passage.doc_id]
        return Hit(
            rank=rank,
            score=candidate.score,
            doc_id=passage.doc_id,
            title=document.title,
            date=document.date,
            passage_id=passage.passage_id,
            text=document.text[passage.start:passage.end],
            start=passage.start,
            end=passage.end,
            scores=dict(candidate.components),
            highlights=self._sentences.highlights(passage, query_vector),
        )


def _validate(request: SearchRequest) -> None:
    if not request.query.strip():
        raise InvalidQuery("the query is empty")
    if not 1 <= request.k <= MAX_K:
        raise InvalidQuery(f"k must be between 1 and {MAX_K}")
    if request.offset < 0:
        raise InvalidQuery("offset must be 0 or more")
    if request.mode not in MODES:
        raise InvalidQuery(f"unknown mode {request.mode!r}; choose one of {', '.join(MODES)}")
    for name in ("date_from", "date_to"):
        value = getattr(request, name)
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise InvalidQuery(f"{name} must be a date like 2025-01-31, not {value!r}") from None


def _date_allowed(document_date: str | None, request: SearchRequest) -> bool:
    if not (request.date_from or request.date_to):
        return True
    if document_date is None:
        return False
    return (request.date_from or "") <= document_date <= (request.date_to or "9999-12-31")


def _mostly_overlaps(a: PassageRecord, b: PassageRecord) -> bool:
    overlap = min(a.end, b.end) - max(a.start, b.start)
    return overlap > _DUPLICATE_OVERLAP * min(a.end - a.start, b.end - b.start)
