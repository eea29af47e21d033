"""Answering a query from an open backend: the ranking pipeline, with every read in one place per stage.

retrieve (dense and BM25 candidates, with the dense candidates' vectors) -> rescore (best sentence) ->
fuse -> feedback (a second dense pass from the first results) -> shape (de-duplication, grouping,
score floor) -> hydrate (rows, text and highlights of the page shown). The array work of each stage
lives in ``search.ranking.rescore`` and ``search.ranking.fusion``; this module only moves data between the backend's
read view and those functions.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from search.backends.contract import (
    NO_RANKING,
    DocumentKeywordSearch,
    Filters,
    IndexLocation,
    PassageSpan,
    Prefetchable,
    Ranking,
    ReadView,
    StoredPassage,
    VectorBlocks,
)
from search.backends.registry import AnyBackend, open_backend
from search.encoding.embedder import Embedder
from search.encoding.embedding import load_embedder
from search.errors import IndexFormatError, PageNotFound, SemanticUnavailable
from search.index_settings import FIX_HINT
from search.ranking.facets import facet_counts
from search.ranking.feedback import VECTOR_FEEDBACK_PASSAGES, feedback_applies, feedback_vector
from search.ranking.fusion import FusedCandidate, FusedRanking, best_part_scores_documents, fuse_min_max, keyword_weight
from search.ranking.highlight import highlights, highlights_by_terms
from search.ranking.rescore import best_sentence_cosines, rescore_semantic
from search.ranking.rules import DEFAULT_MODE, SearchRequest, validate_request
from search.ranking.shaping import shape, shaping_candidates
from search.ranking.typos import CorrectedQuery, Correction, correct_query
from search.records import Hit, Span
from search.text.query_terms import term_specificity

# Candidates taken from each ranking before fusion (measured on Cranfield and the question sets).
_MIN_DEPTH = 200
# How often a searcher looks for commits by a writer (a cheap query on the store).
_REFRESH_SECONDS = 0.5
_DETACHED_END = re.compile(r"\s+[.?!]+$")


@dataclass(frozen=True)
class SearchResult:
    """``facets``: per facet asked for, documents per value among the ``total`` candidates (``search.ranking.facets``);
    ``corrections``: the query words corrected before ranking (``search.ranking.typos``), and ``searched`` the
    question with them in place."""

    total: int
    hits: list[Hit]
    mode: str
    notices: tuple[str, ...] = field(default_factory=tuple)
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    corrections: tuple[Correction, ...] = ()
    searched: str = ""


@dataclass(frozen=True)
class _Page:
    """The hits' rows and vectors (the one read of the hydrate stage) and, with a query vector, each hit's
    best-sentence cosine."""

    candidates: list[FusedCandidate]
    stored: dict[int, StoredPassage]
    vectors: VectorBlocks
    best_sentence: dict[int, float]

    def sentence_vectors(self, pid: int) -> np.ndarray | None:
        where = np.flatnonzero(self.vectors.ids == pid)
        return self.vectors.block(int(where[0]))[1:] if len(where) else None


class Searcher:
    """An open backend and the model that embedded it, ready to answer queries."""

    def __init__(self, backend: AnyBackend, embedder: Embedder) -> None:
        if embedder.dimension != backend.settings.dimension:
            raise IndexFormatError(
                f"model {embedder.name} makes {embedder.dimension}-dimensional vectors but the index holds "
                f"{backend.settings.dimension}; {FIX_HINT}"
            )
        self.backend = backend
        self.embedder = embedder
        self._checked_at = time.monotonic()
        self._check_lock = threading.Lock()
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @classmethod
    def open(cls, index: Path | IndexLocation, model: str | None = None) -> Searcher:
        """Open an index with its own model; a differing ``model`` is refused rather than giving nonsense."""
        location = IndexLocation.of(index)
        backend = open_backend(location)
        settings = backend.settings
        if model is not None and model != settings.model:
            raise IndexFormatError(
                f"index at {location.path} was built with model {settings.model!r}, not {model!r}; "
                f"rebuild it with `semsearch index --full --model {model}` or use its model"
            )
        return cls(backend, load_embedder(settings.model, settings.quantize))

    def warm_up(self) -> None:
        """The index read into memory (where the backend is ``Prefetchable``) and one search before serving, so the
        first users' queries do not pay for disk reads, first-call imports and allocations; then the heap
        loaded so far (modules, model, index tables) is frozen out of the garbage collector's reach. Without
        that, each full collection walked it: at 200,000 passages five of them during 200 searches took
        43-110 ms each and made the p99 (``semsearch bench scale``)."""
        if isinstance(self.backend, Prefetchable):
            self.backend.prefetch()
        if self.backend.counts().passages:
            self.search(SearchRequest("warm up", k=1))
        gc.collect()
        gc.freeze()

    def follow_writer(self) -> None:
        """Pick up commits made since the last look, at most every ``_REFRESH_SECONDS``; never waits for another caller."""
        now = time.monotonic()
        if now - self._checked_at < _REFRESH_SECONDS or not self._check_lock.acquire(blocking=False):
            return
        try:
            self._checked_at = now
            self.backend.refresh()
        finally:
            self._check_lock.release()

    def search(self, request: SearchRequest | str, k: int | None = None) -> SearchResult:
        """The ``k`` best passages after skipping ``offset``, best first."""
        if isinstance(request, str):
            request = SearchRequest(request, k=k or 10)
        validate_request(request)
        self.follow_writer()
        with self._in_flight_lock:
            self._in_flight += 1
            alone = self._in_flight == 1
        try:
            with self.backend.snapshot() as view:
                return self._search(view, request, alone)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _search(self, view: ReadView, request: SearchRequest, alone: bool) -> SearchResult:
        filters = Filters(request.doc_ids, request.date_from, request.date_to, request.types, request.folder)
        corrected = correct_query(view, _normalize_query(request.query), self.backend.settings.analyzer, self._is_word)
        query = corrected.keyword
        notices: list[str] = []
        query_vector = self._embed_query(corrected.semantic, request.mode, notices, alone)
        depth = max(_MIN_DEPTH, 5 * (request.k + request.offset))
        vectors: dict[int, VectorBlocks] = {}
        best_part = best_part_scores_documents(request.mode, request.group_by_document)
        semantic = keyword = NO_RANKING
        specificity = None
        # BM25 first: a view that reads vectors by request fetches the BM25 candidates' with the dense ones'.
        if request.mode != "semantic":
            keyword = _keyword(view, query, depth, filters, request.group_by_document)
            specificity = keyword_specificity(view, query) if request.mode == "hybrid" else None
        if request.mode != "keyword" and query_vector is not None:
            semantic = self._semantic(view, query_vector, query_vector, depth, filters, vectors, best_part)
        ranked = fuse_min_max(semantic, keyword, specificity)
        if feedback_applies(request.mode, request.group_by_document) and query_vector is not None and len(semantic[0]) and len(keyword[0]):
            seeds = ranked.rows[:VECTOR_FEEDBACK_PASSAGES]
            moved = feedback_vector(query_vector, seeds, view.vectors(seeds.tolist(), sentences=False))
            ranked = fuse_min_max(self._semantic(view, moved, query_vector, depth, filters, vectors, best_part), keyword, specificity)
        spans = view.spans(shaping_candidates(ranked, request.min_score))
        ranked = shape(ranked, spans, request.group_by_document, request.min_score)
        facets = facet_counts(_candidate_documents(view, ranked, spans), request.facets, request.folder) if request.facets else {}
        page = _hydrate(view, ranked, request, vectors, query_vector, self.backend.settings.dimension)
        terms = set(self.backend.settings.analyzer.terms(query))
        hits = [self._hit(request.offset + i, c, page, query_vector, query) for i, c in enumerate(page.candidates, start=1)]
        if request.explain:
            weight = keyword_weight(specificity)
            hits = [
                replace(hit, explain=self._explain(c, page, hit.text, terms, query_vector, weight, corrected))
                for hit, c in zip(hits, page.candidates)
            ]
        return SearchResult(len(ranked), hits, request.mode, tuple(notices), facets, corrected.corrections, corrected.semantic)

    def _semantic(
        self,
        view: ReadView,
        search_vector: np.ndarray,
        query_vector: np.ndarray,
        depth: int,
        filters: Filters,
        vectors: dict[int, VectorBlocks],
        best_part: bool,
    ) -> Ranking:
        """Retrieve the nearest passages to ``search_vector`` and rescore them against the original question;
        the vectors of candidates already read in this query are not read again."""
        ids, cosines = view.dense(search_vector, depth, filters)
        unseen = [pid for pid in ids.tolist() if pid not in vectors]
        fresh = view.vectors(unseen)
        vectors.update((pid, fresh) for pid in fresh.ids.tolist())
        blocks = VectorBlocks.joined(_blocks_of(vectors, ids.tolist()), self.backend.settings.dimension)
        return rescore_semantic(ids, cosines, blocks, query_vector, best_part)

    def _is_word(self, word: str) -> bool:
        """Whether the model's tokenizer holds ``word`` whole: a word of the language, never taken for a typo."""
        return self.embedder.count_tokens([word]) == [1]

    def _embed_query(self, query: str, mode: str, notices: list[str], alone: bool) -> np.ndarray | None:
        """The query vector; in hybrid or keyword mode a failing model is reported, not fatal."""
        try:
            return self.embedder.encode_query(query, alone)
        except Exception as exc:  # noqa: BLE001 - whatever broke inside the model, keyword ranking still works
            reason = f"the embedding model failed ({type(exc).__name__}: {exc})"
            if mode == "semantic":
                raise SemanticUnavailable(f"{reason}; semantic search is unavailable, try mode=keyword") from None
            notices.append(f"{reason}; results are ranked by keywords only and highlighted by matching words")
            return None

    def _explain(
        self,
        candidate: FusedCandidate,
        page: _Page,
        text: str,
        terms: set[str],
        query_vector: np.ndarray | None,
        weight: float,
        corrected: CorrectedQuery,
    ) -> dict:
        """Why a hit ranks where it does: the query's corrections, the fusion inputs and weights, the best
        sentence's cosine and the query terms it holds."""
        best = page.best_sentence.get(candidate.row)
        return {
            "corrections": [{"from": c.original, "to": c.corrected} for c in corrected.corrections],
            "searched": {"semantic": corrected.semantic, "keyword": corrected.keyword},
            "fused_score": candidate.score,
            "fusion": "weighted mean over the rankings that returned candidates of each one's min-max scaled score: "
            "semantic weighs 1, keyword the query's term specificity",
            "weights": {"semantic": 1.0, "keyword": round(weight, 6)},
            "fused_from": list(candidate.sources),
            "contributions": {name: round(part, 6) for name, part in candidate.contributions.items()},
            "semantic": candidate.semantic,
            "keyword": candidate.keyword,
            "best_sentence": None if best is None else round(best, 6),
            "matched_terms": sorted(terms & set(self.backend.settings.analyzer.terms(text))),
        }

    def passage(self, passage_id: str, query: str | None = None) -> tuple[StoredPassage, tuple[Span, ...]]:
        """The passage ``passage_id`` (``doc_id#ordinal``) and, with ``query``, the sentences a search for
        ``query`` highlights in it (none without); ``PageNotFound`` when the index has no such passage."""
        doc_id = passage_id.rpartition("#")[0]
        self.follow_writer()
        with self.backend.snapshot() as view:
            stored = next((p for p in view.document_passages(doc_id) if p.record.passage_id == passage_id), None)
            if stored is None:
                raise PageNotFound(f"no passage {passage_id!r} in the index")
            if query is None or not query.strip():
                return stored, ()
            corrected = correct_query(view, _normalize_query(query), self.backend.settings.analyzer, self._is_word)
            query_vector = self._embed_query(corrected.semantic, DEFAULT_MODE, [], alone=False)
            vectors = view.vectors([stored.record.key])
            return stored, self._highlights(stored, vectors.block(0)[1:] if len(vectors.ids) else None, query_vector, corrected.keyword)

    def _highlights(
        self, stored: StoredPassage, vectors: np.ndarray | None, query_vector: np.ndarray | None, query: str
    ) -> tuple[Span, ...]:
        """The answer sentence(s): closest to the query's meaning, or sharing the most of its terms without a vector."""
        if query_vector is not None and vectors is not None:
            return highlights(stored, vectors, query_vector)
        return highlights_by_terms(stored, query, self.backend.settings.analyzer)

    def _hit(self, rank: int, candidate: FusedCandidate, page: _Page, query_vector: np.ndarray | None, query: str) -> Hit:
        stored = page.stored[candidate.row]
        passage = stored.record
        spans = self._highlights(stored, page.sentence_vectors(candidate.row), query_vector, query)
        return Hit(
            rank=rank,
            score=candidate.score,
            doc_id=passage.doc_id,
            title=stored.title,
            date=stored.date,
            passage_id=passage.passage_id,
            text=stored.text,
            start=passage.start,
            end=passage.end,
            page=passage.page,
            page_end=passage.page_end,
            section=passage.section,
            scores={"semantic": candidate.semantic, "keyword": candidate.keyword},
            highlights=spans,
        )


def _keyword(view: ReadView, query: str, depth: int, filters: Filters, by_document: bool) -> Ranking:
    """BM25 over passages; grouped by document, over whole documents where the backend indexes them, else each
    document ranked by its best passage (shaping keeps one per document)."""
    if by_document and isinstance(view, DocumentKeywordSearch):
        return view.keyword_documents(query, depth, filters)
    return view.keyword(query, depth, filters)


def keyword_specificity(view: ReadView, query: str) -> float | None:
    """The query's term specificity (``search.text.query_terms.term_specificity``) from the view's term statistics."""
    statistics = view.term_statistics(query)
    frequencies = statistics.document_frequencies
    return term_specificity(frequencies, frequencies.__getitem__, statistics.passages)


def _candidate_documents(view: ReadView, ranked: FusedRanking, spans: dict[int, PassageSpan]) -> list[tuple[str, str | None]]:
    """``(doc_id, date)`` of each document among the candidates, read from one passage of each."""
    representatives: dict[int, int] = {}
    for row in ranked.rows.tolist():
        representatives.setdefault(spans[row].document, row)
    return [(p.record.doc_id, p.date) for p in view.passages(representatives.values()).values()]


def _hydrate(
    view: ReadView,
    ranked: FusedRanking,
    request: SearchRequest,
    held: dict[int, VectorBlocks],
    query_vector: np.ndarray | None,
    dimension: int,
) -> _Page:
    """The ``k`` results after ``offset`` with their rows and vectors (their sentences are highlighted); vectors
    the semantic stage already read (``held``) are not read again.

    Rows come from the query's read view: a passage deleted after the backend was last refreshed is missing
    there and is replaced by the next result.
    """
    page: list[FusedCandidate] = []
    stored: dict[int, StoredPassage] = {}
    blocks: dict[int, np.ndarray] = {}
    position = request.offset
    while len(page) < request.k and position < len(ranked):
        wanted = ranked[position : position + request.k - len(page)]
        position += len(wanted)
        rows = view.passages(c.row for c in wanted)
        stored.update(rows)
        for pid in rows:
            if (block := _held_block(held, pid)) is not None:
                blocks[pid] = block
        found = view.vectors([pid for pid in rows if pid not in blocks])
        blocks.update((pid, found.block(i)) for i, pid in enumerate(found.ids.tolist()))
        page += [c for c in wanted if c.row in rows and c.row in blocks]
    shown = [c.row for c in page]
    vectors = VectorBlocks.stacked(shown, [blocks[pid] for pid in shown], dimension)
    best = {} if query_vector is None else dict(zip(shown, best_sentence_cosines(vectors, query_vector).tolist()))
    return _Page(page, stored, vectors, best)


def _held_block(held: dict[int, VectorBlocks], pid: int) -> np.ndarray | None:
    blocks = held.get(pid)
    if blocks is None:
        return None
    where = np.flatnonzero(blocks.ids == pid)
    return blocks.block(int(where[0])) if len(where) else None


def _blocks_of(vectors: dict[int, VectorBlocks], ids: list[int]) -> list[VectorBlocks]:
    """The distinct block sets holding ``ids``."""
    seen: dict[int, VectorBlocks] = {}
    for pid in ids:
        blocks = vectors.get(pid)
        if blocks is not None:
            seen.setdefault(id(blocks), blocks)
    return list(seen.values())


def _normalize_query(query: str) -> str:
    """Trim white space and a detached final mark ("... wings ."), an artefact of tokenised text."""
    return _DETACHED_END.sub("", query.strip()) or query.strip()


__all__ = ["DEFAULT_MODE", "SearchRequest", "SearchResult", "Searcher"]
