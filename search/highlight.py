"""Picking the sentences of a passage that best answer the query, from sentence vectors stored at build time."""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from search.errors import IndexFormatError
from search.index_format import FIX_HINT
from search.keyword import Analyzer
from search.records import PassageRecord, SentenceRecord, Span

# Sentences this close to the best one are highlighted too: two sentences often answer together.
_NEAR_BEST = 0.03


class SentenceTable:
    """The stored sentences grouped by document, sorted by offset, for quick lookup of a passage's sentences."""

    def __init__(self, sentences: list[SentenceRecord], vectors: np.ndarray) -> None:
        self._vectors = vectors
        self._rows: dict[str, list[int]] = {}
        for row, sentence in enumerate(sentences):
            self._rows.setdefault(sentence.doc_id, []).append(row)
        self._starts: dict[str, list[int]] = {}
        for doc_id, rows in self._rows.items():
            rows.sort(key=lambda r: sentences[r].start)
            self._starts[doc_id] = [sentences[r].start for r in rows]
        self._sentences = sentences

    def highlights(self, passage: PassageRecord, query_vector: np.ndarray) -> tuple[Span, ...]:
        """Spans relative to the passage start of its best-matching sentence(s)."""
        rows = self._rows_within(passage)
        if not rows:
            return ()
        scores = self._vectors[rows] @ query_vector
        best = float(scores.max())
        chosen = [row for row, score in zip(rows, scores) if score >= best - _NEAR_BEST]
        return tuple(self._relative(passage, r) for r in chosen)

    def rows_by_passage(self, passages: list[PassageRecord]) -> tuple[np.ndarray, np.ndarray]:
        """Sentence rows of every passage, concatenated, and where each passage's run starts.

        Shaped for ``np.maximum.reduceat``; empty when the index stores no sentences. A passage always
        holds at least one whole sentence, since passages are packed from them.
        """
        if not self._sentences:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        runs = [self._rows_within(passage) for passage in passages]
        if any(not run for run in runs):
            raise IndexFormatError(f"a passage holds no stored sentence; {FIX_HINT}")
        offsets = np.cumsum([0] + [len(run) for run in runs[:-1]])
        return np.array([row for run in runs for row in run], dtype=np.int64), offsets.astype(np.int64)

    def highlights_by_terms(self, passage: PassageRecord, text: str, query: str, analyzer: Analyzer) -> tuple[Span, ...]:
        """Without a query vector: the sentence(s) sharing the most analysed terms with the query."""
        wanted = set(analyzer.terms(query))
        rows = self._rows_within(passage)
        counts = [len(wanted.intersection(analyzer.terms(text[self._sentences[r].start:self._sentences[r].end]))) for r in rows]
        if not counts or max(counts) == 0:
            return ()
        best = max(counts)
        return tuple(self._relative(passage, r) for r, count in zip(rows, counts) if count == best)

    def _relative(self, passage: PassageRecord, row: int) -> Span:
        sentence = self._sentences[row]
        return Span(sentence.start - passage.start, sentence.end - passage.start)

    def _rows_within(self, passage: PassageRecord) -> list[int]:
        rows = self._rows.get(passage.doc_id, [])
        first = bisect_left(self._starts.get(passage.doc_id, []), passage.start)
        selected = []
        for row in rows[first:]:
            sentence = self._sentences[row]
            if sentence.start >= passage.end:
                break
            if sentence.end <= passage.end:
                selected.append(row)
        return selected
