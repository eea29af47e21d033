"""The sentences of a shown passage that best answer the query, as spans inside the passage with their page."""

from __future__ import annotations

import bisect

import numpy as np

from search.backends.contract import StoredPassage
from search.records import Span
from search.text.analyzer import Analyzer

# Sentences this close to the best one are highlighted too: two sentences often answer together.
_NEAR_BEST = 0.03


def highlights(stored: StoredPassage, sentence_vectors: np.ndarray, query_vector: np.ndarray) -> tuple[Span, ...]:
    """Spans relative to the passage start of its best-matching sentence(s)."""
    if not stored.sentences or len(sentence_vectors) != len(stored.sentences):
        return ()
    scores = sentence_vectors @ query_vector
    best = float(scores.max())
    return tuple(_relative(stored, span) for span, score in zip(stored.sentences, scores) if score >= best - _NEAR_BEST)


def highlights_by_terms(stored: StoredPassage, query: str, analyzer: Analyzer) -> tuple[Span, ...]:
    """Without a query vector: the sentence(s) sharing the most analysed terms with the query."""
    wanted = set(analyzer.terms(query))
    start = stored.record.start
    counts = [len(wanted.intersection(analyzer.terms(stored.text[a - start : b - start]))) for a, b in stored.sentences]
    if not counts or max(counts) == 0:
        return ()
    best = max(counts)
    return tuple(_relative(stored, span) for span, count in zip(stored.sentences, counts) if count == best)


def page_at(stored: StoredPassage, offset: int) -> int | None:
    """The page holding document offset ``offset`` of a passage: its own page unless it crosses pages."""
    if not stored.page_starts:
        return stored.record.page
    return bisect.bisect_right(stored.page_starts, offset) or stored.record.page


def _relative(stored: StoredPassage, span: tuple[int, int]) -> Span:
    return Span(span[0] - stored.record.start, span[1] - stored.record.start, page_at(stored, span[0]))
