"""The keyword side of a query: its analyzed terms, weighted by how often they occur, at most ``MAX_QUERY_TERMS``.

A term repeated in the query counts as often as it occurs, as in a Lucene or tantivy query. A long query
("passages like this paragraph", up to 10,000 characters) can hold hundreds of distinct terms; BM25 then
scores the union of their postings, which grows with every common word. It keeps the ``MAX_QUERY_TERMS``
distinct terms with the highest query frequency x IDF, the rule of Lucene's ``MoreLikeThis`` (which keeps
25): the terms that say most about what the query is about. 64 is well above any question or keyword
query (Cranfield's longest has 29 distinct terms), so only long queries are cut.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable

MAX_QUERY_TERMS = 64


def query_term_weights(
    terms: Iterable[str], document_frequency: Callable[[str], int], documents: int, limit: int = MAX_QUERY_TERMS
) -> dict[str, float]:
    """Each distinct term with its count in the query; over ``limit`` terms, the ``limit`` with the highest
    count x BM25 IDF (ties by first occurrence). ``document_frequency`` is asked only when there are more."""
    counts = Counter(terms)
    if len(counts) <= limit:
        return {term: float(count) for term, count in counts.items()}
    position = {term: i for i, term in enumerate(counts)}

    def weight(term: str) -> float:
        return counts[term] * bm25_idf(document_frequency(term), documents)

    kept = sorted(counts, key=lambda term: (-weight(term), position[term]))[:limit]
    return {term: float(counts[term]) for term in sorted(kept, key=position.__getitem__)}


def bm25_idf(frequency: int, documents: int) -> float:
    """BM25's inverse document frequency, as Lucene and tantivy compute it."""
    return math.log(1 + (documents - frequency + 0.5) / (frequency + 0.5))


def term_specificity(terms: Iterable[str], document_frequency: Callable[[str], int], documents: int) -> float | None:
    """How specific the query's most specific indexed term is: its BM25 IDF over the IDF of a term found in
    a single entry, the most specific a term can be in this index (0..1]. None when no term is indexed.

    The maximum IDF of a query's terms is a published pre-retrieval predictor of how well a keyword ranking
    will do (He & Ounis 2004): a query that names something rare (a person, a term of art) gets a sharp BM25
    ranking, one whose every indexed word is common gets a ranking led by how often common words recur.
    """
    if documents < 1:
        return None
    frequencies = [frequency for frequency in map(document_frequency, set(terms)) if frequency > 0]
    if not frequencies:
        return None
    return bm25_idf(min(frequencies), documents) / bm25_idf(1, documents)
