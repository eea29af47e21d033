"""One search's view of a local index: candidates from FAISS and tantivy, rows from one SQLite snapshot.

Only candidates are read: their locations (cached, they never change), their float16 vector rows
(memory-mapped) and, for the page shown, their rows and text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from search.backends.contract import (
    NO_FILTERS,
    NO_RANKING,
    Filters,
    PassageSpan,
    Ranking,
    ReadView,
    StoredPassage,
    TermStatistics,
    VectorBlocks,
    Vocabulary,
)
from search.backends.local.parts import LocalParts
from search.backends.local.vector_files import VectorFiles
from search.ranking.fusion import document_ranking_as_passages
from search.text.query_terms import query_term_weights


class LocalView(ReadView):
    """Also a ``DocumentKeywordSearch`` (a tantivy index of whole documents), a ``TermVocabulary`` (tantivy's term
    dictionary) and an ``ExactDenseSearch``."""

    def __init__(self, parts: LocalParts) -> None:
        self._parts = parts
        self._allowed: dict[Filters, tuple[list[int], np.ndarray]] = {}
        self._terms: dict[str, dict[str, float]] = {}

    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        return self._dense(vector, k, filters, exact=False)

    def dense_exact(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        return self._dense(vector, k, filters, exact=True)

    def _dense(self, vector: np.ndarray, k: int, filters: Filters, exact: bool) -> Ranking:
        if not filters:
            return self._parts.vectors.search(vector, k, exact=exact)
        documents, passages = self._allowed_by(filters)
        return self._parts.vectors.search(vector, k, passages, exact) if documents else NO_RANKING

    def keyword(self, query: str, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        allowed = self._allowed_by(filters)[0] if filters else None
        if allowed is not None and not allowed:
            return NO_RANKING
        return self._parts.passage_terms.search(self._query_terms(query), k, allowed)

    def keyword_documents(self, query: str, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        allowed = self._allowed_by(filters)[0] if filters else None
        if allowed is not None and not allowed:
            return NO_RANKING
        keys, scores = self._parts.document_terms.search(self._query_terms(query), k, allowed)
        return document_ranking_as_passages((keys, scores), self._parts.store.passage_ids_by_document(keys.tolist()))

    def term_statistics(self, query: str) -> TermStatistics:
        index = self._parts.passage_terms
        return TermStatistics({term: index.document_frequency(term) for term in self._query_terms(query)}, index.size())

    def vocabulary(self) -> Vocabulary:
        return self._parts.passage_terms.vocabulary()

    def _query_terms(self, query: str) -> dict[str, float]:
        """The query's BM25 terms, analyzed once per view: the ranking and the statistics both need them."""
        if query not in self._terms:
            index = self._parts.passage_terms
            self._terms[query] = query_term_weights(self._parts.settings.analyzer.terms(query), index.document_frequency, index.size())
        return self._terms[query]

    def spans(self, ids: Iterable[int]) -> dict[int, PassageSpan]:
        return {pid: PassageSpan(where.document, where.start, where.end) for pid, where in self._parts.locations(list(ids)).items()}

    def vectors(self, ids: Iterable[int], sentences: bool = True) -> VectorBlocks:
        locations = self._parts.locations(list(ids))
        blocks = ((pid, where.vector_file, where.vector_row, 1 + where.sentences if sentences else 1) for pid, where in locations.items())
        return VectorBlocks.joined(_gathered(self._parts.vector_files, blocks), self._parts.settings.dimension)

    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        return self._parts.store.passages(ids)

    def document_passages(self, doc_id: str) -> list[StoredPassage]:
        store = self._parts.store
        found = store.passages(store.passage_ids_of_documents(store.document_keys([doc_id]).values()))
        return sorted(found.values(), key=lambda passage: passage.record.start)

    def _allowed_by(self, filters: Filters) -> tuple[list[int], np.ndarray]:
        """Document keys and passage ids that pass the filters, read once per view."""
        if filters not in self._allowed:
            store = self._parts.store
            chosen: list[set[int]] = []
            if filters.doc_ids:
                chosen.append(set(store.document_keys(filters.doc_ids).values()))
            if filters.date_from or filters.date_to:
                chosen.append(set(store.document_keys_dated(filters.date_from, filters.date_to)))
            if filters.types:
                chosen.append(set(store.document_keys_of_types(filters.types)))
            if (folder := filters.folder_range) is not None:
                chosen.append(set(store.document_keys_between(*folder)))
            documents = sorted(set.intersection(*chosen)) if chosen else []
            self._allowed[filters] = documents, np.array(store.passage_ids_of_documents(documents), dtype=np.int64)
        return self._allowed[filters]


def _gathered(files: VectorFiles, blocks: Iterable[tuple[int, int, int, int]]) -> Iterator[VectorBlocks]:
    """For ``(passage id, vector file, first row, row count)`` blocks: per vector file, one gather of their rows
    (slicing row by row costs more than reading). A file that went with its documents after the caller's snapshot
    began yields nothing."""
    by_file: dict[int, list[tuple[int, int, int]]] = {}
    for pid, file_id, first, count in blocks:
        by_file.setdefault(file_id, []).append((pid, first, count))
    for file_id, members in by_file.items():
        pids, firsts, counts = (np.array(column, dtype=np.int64) for column in zip(*members))
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        matrix = files.gather(file_id, np.repeat(firsts - offsets, counts) + np.arange(int(counts.sum())))
        if matrix is not None:
            yield VectorBlocks(pids, matrix, offsets, counts)
