"""Pseudo-relevance feedback: re-query with the vocabulary and the meaning of the first results.

The first fused results of a query are usually on topic even when they miss the answer; their words
(RM3, Lavrenko & Croft 2001, as in Anserini) and their vectors (Rocchio) make a second query that
reaches relevant passages phrased differently. The constants are the published defaults, not fit here.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from search.keyword import Analyzer

KEYWORD_FEEDBACK_PASSAGES = 10
EXPANSION_TERMS = 10
ORIGINAL_QUERY_WEIGHT = 0.5
VECTOR_FEEDBACK_PASSAGES = 3


def expanded_terms(query: str, feedback_texts: list[str], feedback_scores: np.ndarray, analyzer: Analyzer) -> dict[str, float]:
    """RM3 term weights: half the original query, half the terms that dominate the feedback passages."""
    query_terms = Counter(analyzer.terms(query))
    if not query_terms:
        return {}
    relevance: Counter[str] = Counter()
    for text, score in zip(feedback_texts, feedback_scores):
        terms = Counter(analyzer.terms(text))
        length = sum(terms.values()) or 1
        for term, count in terms.items():
            relevance[term] += count / length * float(score)
    expansion = dict(relevance.most_common(EXPANSION_TERMS))
    expansion_total = sum(expansion.values())
    query_total = sum(query_terms.values())
    weights = {term: ORIGINAL_QUERY_WEIGHT * count / query_total for term, count in query_terms.items()}
    if expansion_total > 0:
        for term, value in expansion.items():
            weights[term] = weights.get(term, 0.0) + (1 - ORIGINAL_QUERY_WEIGHT) * value / expansion_total
    return weights


def moved_query_vector(query_vector: np.ndarray, feedback_vectors: np.ndarray) -> np.ndarray:
    """Rocchio: the query moved towards the centroid of the first results, back to unit length."""
    if len(feedback_vectors) == 0:
        return query_vector
    moved = query_vector + feedback_vectors.mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return moved / norm if norm > 0 else query_vector
