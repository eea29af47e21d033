"""Ranking passages of a loaded index for a query: filters, de-duplication, grouping and highlights."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from search.embedding import Embedder, load_embedder
from search.errors import IndexFormatError, InvalidQuery, SemanticUnavailable
from search.feedback import KEYWORD_FEEDBACK_PASSAGES, VECTOR_FEEDBACK_PASSAGES, expanded_terms, moved_query_vector
from search.fusion import FusedCandidate, Ranking, fuse_normalized, top_ranking
from search.highlight import SentenceTable
from search.index_format import FIX_HINT, IndexData, load_index
from search.records import Hit, PassageRecord

MODES = ("hybrid", "semantic", "keyword")
DEFAULT_MODE = "hybrid"
MAX_K = 100
# Passages of one region that share more than this fraction of the shorter one's text are the same answer.
_DUPLICATE_OVERLAP = 0.5
# Candidates taken from each ranking before fusion; fewer costs recall (measured on Cranfield).
_MIN_DEPTH = 100
_DETACHED_END = re.compile(r"\s+[.?!]+$")
_NO_RANKING: Ranking = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


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
    mode: str = DEFAULT_MODE


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[Hit]
    mode: str
    notices: tuple[str, ...] = field(default_factory=tuple)


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
        self._max_passages_per_document = max((len(rows) for rows in self._rows_by_doc.values()), default=1)
        self._passage_vectors = index.vector_matrix()
        self._sentence_rows, self._sentence_offsets = self._sentences.rows_by_passage(index.passages)

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

    def warm_up(self) -> None:
        """One search before serving, so the first user's query does not pay for first-call allocations."""
        if self.index.passages:
            self.search(SearchRequest("warm up", k=1))

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
        query = _normalize_query(request.query)
        notices: list[str] = []
        query_vector = self._embed_query(query, request.mode, notices)
        depth = self._depth(request)
        best_sentence = None
        semantic_scores = None
        if request.mode != "keyword" and query_vector is not None:
            best_sentence = self._best_sentence_scores(query_vector)
            semantic_scores = self._semantic_scores(query_vector, best_sentence)
        keyword_scores = self.index.keyword.scores(query) if request.mode != "semantic" else None
        if request.mode == "hybrid" and semantic_scores is not None and keyword_scores is not None and keyword_scores.any():
            semantic_scores, keyword_scores = self._with_feedback(
                query, query_vector, best_sentence, semantic_scores, keyword_scores, allowed, depth
            )
        semantic = _NO_RANKING if semantic_scores is None else top_ranking(semantic_scores, depth, allowed)
        keyword = _NO_RANKING if keyword_scores is None else top_ranking(keyword_scores, depth, allowed, positive_only=True)
        ranked = self._shape(_rank(semantic, keyword, request.mode), request)
        page = ranked[request.offset:request.offset + request.k]
        hits = [self._hit(request.offset + i, c, query_vector, query) for i, c in enumerate(page, start=1)]
        return SearchResult(total=len(ranked), hits=hits, mode=request.mode, notices=tuple(notices))

    def _depth(self, request: SearchRequest) -> int:
        """Candidates per ranking: enough that de-duplication, and grouping by document, still fill the page."""
        depth = max(_MIN_DEPTH, 5 * (request.k + request.offset))
        if request.group_by_document:
            depth *= self._max_passages_per_document
        return depth

    def _embed_query(self, query: str, mode: str, notices: list[str]) -> np.ndarray | None:
        """The query vector; in hybrid or keyword mode a failing model is reported, not fatal."""
        try:
            return self.embedder.encode([query])[0]
        except Exception as exc:  # noqa: BLE001 - whatever broke inside the model, keyword ranking still works
            reason = f"the embedding model failed ({type(exc).__name__}: {exc})"
            if mode == "semantic":
                raise SemanticUnavailable(f"{reason}; semantic search is unavailable, try mode=keyword") from None
            notices.append(f"{reason}; results are ranked by keywords only and highlighted by matching words")
            return None

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

    def _best_sentence_scores(self, query_vector: np.ndarray) -> np.ndarray | None:
        """Each passage's best sentence cosine, or None when the index stores no sentences."""
        if not len(self._sentence_rows):
            return None
        sentence_scores = self.index.sentence_vectors @ query_vector
        return np.maximum.reduceat(sentence_scores[self._sentence_rows], self._sentence_offsets)

    def _semantic_scores(self, query_vector: np.ndarray, best_sentence: np.ndarray | None) -> np.ndarray:
        """Each passage scores the mean of its own cosine and its best sentence's.

        The passage vector says what the passage is about; the best sentence says whether it holds
        the answer. Either alone ranks worse (measured on Cranfield and the seed questions).
        """
        scores = self._passage_vectors @ query_vector
        return scores if best_sentence is None else (scores + best_sentence) / 2

    def _with_feedback(
        self,
        query: str,
        query_vector: np.ndarray,
        best_sentence: np.ndarray | None,
        semantic_scores: np.ndarray,
        keyword_scores: np.ndarray,
        allowed: np.ndarray | None,
        depth: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Second-pass scores: the query vector moved towards the first fused results (the sentence
        part keeps the original question), and the keyword query expanded with RM3."""
        first = fuse_normalized(
            top_ranking(semantic_scores, depth, allowed), top_ranking(keyword_scores, depth, allowed, positive_only=True)
        )
        seeds = [candidate.row for candidate in first[:VECTOR_FEEDBACK_PASSAGES]]
        moved = moved_query_vector(query_vector, self._passage_vectors[seeds])
        rows, scores = top_ranking(keyword_scores, KEYWORD_FEEDBACK_PASSAGES, allowed, positive_only=True)
        weights = expanded_terms(query, [self._passage_text(int(row)) for row in rows], scores, self.index.keyword.analyzer)
        return self._semantic_scores(moved, best_sentence), self.index.keyword.weighted_scores(weights)

    def _passage_text(self, row: int) -> str:
        passage = self.index.passages[row]
        return self.index.documents[passage.doc_id].text[passage.start:passage.end]

    def _shape(self, candidates: list[FusedCandidate], request: SearchRequest) -> list[FusedCandidate]:
        """Drop near-duplicate passages, keep one per document if asked, and apply the score floor."""
        kept: list[FusedCandidate] = []
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

    def _hit(self, rank: int, candidate: FusedCandidate, query_vector: np.ndarray | None, query: str) -> Hit:
        passage = self.index.passages[candidate.row]
        document = self.index.documents[passage.doc_id]
        if query_vector is not None:
            highlights = self._sentences.highlights(passage, query_vector)
        else:
            highlights = self._sentences.highlights_by_terms(passage, document.text, query, self.index.keyword.analyzer)
        return Hit(
            rank=rank,
            score=candidate.score,
            doc_id=passage.doc_id,
            title=document.title,
            date=document.date,
            passage_id=passage.passage_id,
            text=self._passage_text(candidate.row),
            start=passage.start,
            end=passage.end,
            scores={"semantic": candidate.semantic, "keyword": candidate.keyword},
            highlights=highlights,
        )


def _rank(semantic: Ranking, keyword: Ranking, mode: str) -> list[FusedCandidate]:
    """One ranking of candidates; a single mode keeps its own scores, hybrid fuses both."""
    if mode == "hybrid" and len(semantic[0]) and len(keyword[0]):
        return fuse_normalized(semantic, keyword)
    rows, scores = semantic if len(semantic[0]) else keyword
    from_semantic = rows is semantic[0]
    return [
        FusedCandidate(int(row), float(score), float(score) if from_semantic else None, None if from_semantic else float(score))
        for row, score in zip(rows, scores)
    ]


def _normalize_query(query: str) -> str:
    """Trim white space and a detached final mark ("... wings ."), an artefact of tokenised text."""
    return _DETACHED_END.sub("", query.strip()) or query.strip()


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
