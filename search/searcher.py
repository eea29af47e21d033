"""Ranking passages of an open index for a query, in visible stages.

candidates from each ranking (vector segments, keyword index) -> semantic scores of the candidates
(passage and best-sentence cosine) -> fusion -> optional feedback pass -> shaping the page
(de-duplication, grouping, score floor) -> hits with highlights. Only candidates are read from disk.
"""

from __future__ import annotations

import bisect
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from search.embedding import Embedder, load_embedder
from search.errors import IndexFormatError, IndexLocked, SemanticUnavailable
from search.feedback import VECTOR_FEEDBACK_PASSAGES, feedback_applies, moved_query_vector
from search.fusion import (
    FusedCandidate,
    FusedRanking,
    Ranking,
    best_part_scores_documents,
    document_ranking_as_passages,
    fuse_min_max,
    rerank,
    semantic_scores,
)
from search.highlight import (
    PassageVectors,
    best_sentence,
    best_sentence_cosines,
    highlights,
    highlights_by_terms,
    load_vectors,
    passage_vectors,
)
from search.index import Index
from search.index_format import FIX_HINT, hold_writer_lock
from search.query_terms import query_term_weights
from search.records import Hit
from search.rules import DEFAULT_MODE, SearchRequest, validate_request
from search.store import PassageLocation, StoredPassage

# Passages of one region that share more than this fraction of the shorter one's text are the same answer.
_DUPLICATE_OVERLAP = 0.5
# Candidates taken from each ranking before fusion (measured on Cranfield and the question sets).
_MIN_DEPTH = 200
# How often a searcher looks for commits by a writer (a cheap query on the store).
_REFRESH_SECONDS = 0.5
_DETACHED_END = re.compile(r"\s+[.?!]+$")
_NO_RANKING: Ranking = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[Hit]
    mode: str
    notices: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class _Candidates:
    """What a query has read about its candidate passages: where their vectors lie and their best sentence's
    cosine with the question (all candidates), full rows and vectors (only the page shown)."""

    locations: dict[int, PassageLocation] = field(default_factory=dict)
    best_sentence: dict[int, float] = field(default_factory=dict)
    stored: dict[int, StoredPassage] = field(default_factory=dict)
    vectors: dict[int, PassageVectors] = field(default_factory=dict)


class Searcher:
    """An open index and the model that embedded it, ready to answer queries."""

    def __init__(self, index: Index, embedder: Embedder) -> None:
        if embedder.dimension != index.settings.dimension:
            raise IndexFormatError(
                f"model {embedder.name} makes {embedder.dimension}-dimensional vectors but the index holds "
                f"{index.settings.dimension}; {FIX_HINT}"
            )
        self.index = index
        self.embedder = embedder
        self._checked_at = time.monotonic()
        self._check_lock = threading.Lock()
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()

    @classmethod
    def open(cls, index_dir: Path, model: str | None = None) -> "Searcher":
        """Open an index with its own model; a differing ``model`` is refused rather than giving nonsense."""
        index = Index.open(index_dir)
        _recover(index_dir, index)
        if model is not None and model != index.settings.model:
            raise IndexFormatError(
                f"index at {index_dir} was built with model {index.settings.model!r}, not {model!r}; "
                f"rebuild it with `semsearch index --full --model {model}` or use its model"
            )
        return cls(index, load_embedder(index.settings.model, index.settings.quantize))

    def warm_up(self) -> None:
        """One search before serving, so the first user's query does not pay for first-call allocations."""
        if self.index.store.counts()[1]:
            self.search(SearchRequest("warm up", k=1))

    def follow_writer(self) -> None:
        """Pick up commits made since the last look, at most every ``_REFRESH_SECONDS``; never waits for another caller."""
        now = time.monotonic()
        if now - self._checked_at < _REFRESH_SECONDS or not self._check_lock.acquire(blocking=False):
            return
        try:
            self._checked_at = now
            self.index.refresh()
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
            # One read snapshot of the store for the whole query: a writer committing meanwhile must not
            # remove a passage between the moment it is ranked and the moment its text is read.
            with self.index.store.snapshot():
                return self._search(request, alone)
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def _search(self, request: SearchRequest, alone: bool) -> SearchResult:
        allowed_documents, allowed_passages = self._allowed(request)
        if allowed_documents is not None and not allowed_documents:
            return SearchResult(total=0, hits=[], mode=request.mode)
        query = _normalize_query(request.query)
        notices: list[str] = []
        query_vector = self._embed_query(query, request.mode, notices, alone)
        depth = self._depth(request)
        passage_terms = self.index.passage_terms
        terms = query_term_weights(self.index.settings.analyzer.terms(query), passage_terms.document_frequency, passage_terms.size())
        candidates = _Candidates()
        semantic = keyword = _NO_RANKING
        if request.mode != "keyword" and query_vector is not None:
            best_part = best_part_scores_documents(request.mode, request.group_by_document)
            semantic = self._semantic_ranking(query_vector, query_vector, depth, allowed_passages, candidates, best_part)
        if request.mode != "semantic":
            keyword = self._keyword_ranking(terms, request.group_by_document, depth, allowed_documents)
        ranked = fuse_min_max(semantic, keyword)
        if feedback_applies(request.mode, request.group_by_document) and len(semantic[0]) and len(keyword[0]):
            ranked = fuse_min_max(self._feedback_ranking(query_vector, ranked, depth, allowed_passages, candidates), keyword)
        ranked = self._shape(ranked, request, candidates)
        page = self._page(ranked, request, candidates)
        texts = self.index.store.passage_texts(c.row for c in page)
        titles = self.index.store.document_titles({candidates.stored[c.row].document_key for c in page})
        hits = [
            self._hit(request.offset + i, c, candidates, texts[c.row], titles, query_vector, query)
            for i, c in enumerate(page, start=1)
        ]
        if request.explain:
            hits = [replace(hit, explain=self._explain(c, candidates, hit.text, terms, query_vector)) for hit, c in zip(hits, page)]
        return SearchResult(total=len(ranked), hits=hits, mode=request.mode, notices=tuple(notices))

    def _depth(self, request: SearchRequest) -> int:
        """Candidates per ranking: enough that de-duplication, and grouping by document, still fill the page."""
        return max(_MIN_DEPTH, 5 * (request.k + request.offset))

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

    def _allowed(self, request: SearchRequest) -> tuple[list[int] | None, np.ndarray | None]:
        """Document keys and passage ids that pass the filters, or None when nothing is filtered."""
        if not (request.doc_ids or request.date_from or request.date_to):
            return None, None
        store = self.index.store
        keys: set[int] | None = None
        if request.doc_ids:
            keys = set(store.document_keys(request.doc_ids).values())
        if request.date_from or request.date_to:
            dated = set(store.document_keys_dated(request.date_from, request.date_to))
            keys = dated if keys is None else keys & dated
        documents = sorted(keys or ())
        return documents, np.array(store.passage_ids_of_documents(documents), dtype=np.int64)

    def _semantic_ranking(
        self,
        search_vector: np.ndarray,
        query_vector: np.ndarray,
        depth: int,
        allowed: np.ndarray | None,
        candidates: _Candidates,
        best_part: bool,
    ) -> Ranking:
        """Nearest passages to ``search_vector``, each scored from its own cosine and its best sentence's
        cosine with the original question (``semantic_scores``: their mean, or with ``best_part`` their maximum).
        """
        ids, cosines = self.index.vectors.search(search_vector, depth, allowed)
        ids = ids.tolist()
        self._locate(candidates, ids)
        unseen = [pid for pid in ids if pid in candidates.locations and pid not in candidates.best_sentence]
        candidates.best_sentence.update(best_sentence_cosines(
            self.index.vector_files, {pid: candidates.locations[pid] for pid in unseen}, query_vector))
        kept = np.array([pid in candidates.best_sentence for pid in ids], dtype=bool)
        if not kept.any():
            return _NO_RANKING
        rows = np.array(ids, dtype=np.int64)[kept]
        best = np.array([candidates.best_sentence[pid] for pid in rows.tolist()])
        return rerank(rows, semantic_scores(np.asarray(cosines)[kept], best, best_part))

    def _keyword_ranking(self, terms: dict[str, float], documents: bool, depth: int, allowed: list[int] | None) -> Ranking:
        """Passages by passage BM25; when documents are ranked, passages by their whole document's BM25.

        Scoring a document by its best passage alone throws away the terms its other passages hold.
        """
        if not documents:
            return self.index.passage_terms.search(terms, depth, allowed)
        keys, scores = self.index.document_terms.search(terms, depth, allowed)
        return document_ranking_as_passages((keys, scores), self.index.store.passage_ids_by_document(keys.tolist()))

    def _feedback_ranking(
        self, query_vector: np.ndarray, first: FusedRanking, depth: int, allowed: np.ndarray | None, candidates: _Candidates
    ) -> Ranking:
        """Rocchio: a second semantic ranking from the query moved towards the first fused results (the
        sentence part keeps the original question)."""
        seeds = first.rows[:VECTOR_FEEDBACK_PASSAGES].tolist()
        self._locate(candidates, seeds)
        found = passage_vectors(self.index.vector_files, {s: candidates.locations[s] for s in seeds if s in candidates.locations})
        moved = moved_query_vector(query_vector, np.array([found[s] for s in seeds if s in found]))
        return self._semantic_ranking(moved, query_vector, depth, allowed, candidates, best_part=True)

    def _locate(self, candidates: _Candidates, ids: list[int]) -> None:
        """Where passages not seen yet lie; ids deleted before the index's last refresh drop out."""
        missing = [pid for pid in ids if pid not in candidates.locations]
        if missing:
            candidates.locations.update(self.index.locations(missing))

    def _shape(self, ranked: FusedRanking, request: SearchRequest, candidates: _Candidates) -> FusedRanking:
        """Drop near-duplicate passages, keep one per document if asked, and apply the score floor.

        Only each candidate's location is needed here; vectors and text are read only for the page shown.
        """
        positions = range(len(ranked)) if request.min_score is None else np.flatnonzero(ranked.scores >= request.min_score).tolist()
        rows = ranked.rows.tolist()
        self._locate(candidates, [rows[i] for i in positions])
        kept: list[int] = []
        regions: dict[int, _KeptRegions] = {}
        for position in positions:
            where = candidates.locations.get(rows[position])
            if where is None:
                continue
            seen = regions.setdefault(where.document, _KeptRegions())
            if (request.group_by_document and seen.starts) or seen.overlaps_mostly(where.start, where.end):
                continue
            seen.add(where.start, where.end)
            kept.append(position)
        return ranked.select(kept)

    def _page(self, ranked: FusedRanking, request: SearchRequest, candidates: _Candidates) -> list[FusedCandidate]:
        """The ``k`` results after ``offset`` with their full rows and vectors (their sentences are highlighted).

        The rows come from this query's store snapshot: a passage deleted after the vector and keyword indexes
        were last refreshed is missing there and is replaced by the next result.
        """
        page: list[FusedCandidate] = []
        position = request.offset
        while len(page) < request.k and position < len(ranked):
            wanted = ranked[position:position + request.k - len(page)]
            position += len(wanted)
            stored = self.index.store.passages(c.row for c in wanted)
            candidates.stored.update(stored)
            candidates.vectors.update(load_vectors(self.index.vector_files, stored))
            page += [c for c in wanted if c.row in stored and c.row in candidates.vectors]
        return page

    def _explain(
        self, candidate: FusedCandidate, candidates: _Candidates, text: str, terms: dict[str, float], query_vector: np.ndarray | None
    ) -> dict:
        """Why a hit ranks where it does: the fusion inputs, the best sentence's cosine and the query terms it holds."""
        vectors = candidates.vectors.get(candidate.row)
        return {
            "fused_score": candidate.score,
            "fusion": "mean over the rankings that returned candidates of each one's min-max scaled score",
            "fused_from": list(candidate.sources),
            "contributions": {name: round(part, 6) for name, part in candidate.contributions.items()},
            "semantic": candidate.semantic,
            "keyword": candidate.keyword,
            "best_sentence": None if query_vector is None or vectors is None else round(best_sentence(vectors, query_vector), 6),
            "matched_terms": sorted(set(terms) & set(self.index.settings.analyzer.terms(text))),
        }

    def _hit(
        self,
        rank: int,
        candidate: FusedCandidate,
        candidates: _Candidates,
        text: str,
        titles: dict[int, tuple[str, str | None]],
        query_vector: np.ndarray | None,
        query: str,
    ) -> Hit:
        stored = candidates.stored[candidate.row]
        passage = stored.record
        title, date = titles[stored.document_key]
        vectors = candidates.vectors.get(candidate.row)
        if query_vector is not None and vectors is not None:
            spans = highlights(stored, vectors, query_vector)
        else:
            spans = highlights_by_terms(stored, text, query, self.index.settings.analyzer)
        return Hit(
            rank=rank,
            score=candidate.score,
            doc_id=passage.doc_id,
            title=title,
            date=date,
            passage_id=passage.passage_id,
            text=text,
            start=passage.start,
            end=passage.end,
            page=passage.page,
            page_end=passage.page_end,
            section=passage.section,
            scores={"semantic": candidate.semantic, "keyword": candidate.keyword},
            highlights=spans,
        )


class _KeptRegions:
    """The spans kept so far in one document, sorted by start: a new span is compared only with those it can
    overlap, found by bisection, not with every kept span of its document."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self._ends: list[int] = []
        self._longest = 0

    def overlaps_mostly(self, start: int, end: int) -> bool:
        # Kept spans starting at or before ``start - longest`` end at or before ``start``: none further back overlaps.
        position = bisect.bisect_left(self.starts, end) - 1
        while position >= 0 and self.starts[position] + self._longest > start:
            if _mostly_overlaps((start, end), (self.starts[position], self._ends[position])):
                return True
            position -= 1
        return False

    def add(self, start: int, end: int) -> None:
        position = bisect.bisect_left(self.starts, start)
        self.starts.insert(position, start)
        self._ends.insert(position, end)
        self._longest = max(self._longest, end - start)


def _recover(index_dir: Path, index: Index) -> None:
    """A writer killed between its store and keyword commits left a journal: replay it unless a writer is busy
    (that writer replays it itself)."""
    if not index.keyword_pending():
        return
    try:
        with hold_writer_lock(index_dir):
            index.replay_keyword_journal()
    except IndexLocked:
        pass


def _normalize_query(query: str) -> str:
    """Trim white space and a detached final mark ("... wings ."), an artefact of tokenised text."""
    return _DETACHED_END.sub("", query.strip()) or query.strip()


def _mostly_overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    return overlap > _DUPLICATE_OVERLAP * min(a[1] - a[0], b[1] - b[0])


__all__ = ["DEFAULT_MODE", "SearchRequest", "SearchResult", "Searcher"]
