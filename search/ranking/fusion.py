"""Merging the semantic and the keyword ranking of the same passages into one ranking.

Pure functions on each ranking's candidates, ``(rows, scores)`` arrays best first, as a
candidate-based engine returns them (the top N of a vector store, of a BM25 index): nothing here
needs a score for every passage. Every fused score is on one scale, whatever rankings were
available, so a ``min_score`` means the same in every mode:

    score = weighted mean over the available rankings of (s - worst) / (best - worst)

where best and worst are that ranking's best and worst candidate scores and a candidate absent
from a ranking gets 0 from it. 1.0 is "first in every ranking", 0.0 "last or absent everywhere".
A ranking is available when it returned candidates: an empty keyword ranking (no query term in the
index) or a missing semantic one (the model failed) leaves the other one alone.

Why min-max (Lee 1997; Fox & Shaw 1994 CombSUM): BM25 has no upper bound and cosine never reaches 0
or 1 in practice, so each ranking is mapped to 0..1 over its own candidates. The semantic ranking
weighs 1; the keyword ranking weighs the query's term specificity (``keyword_weight``), 1 when the
query names something rare, less when every word of it that the index holds is common. No weight is
fitted to a collection. Measured against dividing by the best score, z-scores, distribution-based
scaling and reciprocal-rank fusion (k=60) on every public set (docs/ranking.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from search.backends.contract import Ranking

SEMANTIC = "semantic"
KEYWORD = "keyword"
# Cormack, Clarke & Buettcher 2009; kept for comparison runs, it is not the default.
RRF_K = 60


@dataclass(frozen=True)
class FusedCandidate:
    """A passage row, its fused 0..1 score, each ranking's own score (None where absent), the rankings the
    candidate came from and what each ranking added to the fused score (the contributions sum to it)."""

    row: int
    score: float
    semantic: float | None
    keyword: float | None
    sources: tuple[str, ...] = ()
    contributions: dict[str, float] = field(default_factory=dict)


class FusedRanking(Sequence[FusedCandidate]):
    """Fused candidates best first, held as arrays: a ``FusedCandidate`` is built only for the ones read one by
    one (a page), because building hundreds of objects per query cost more than the fusion itself.

    ``semantic`` and ``keyword`` hold each ranking's own score, NaN where the candidate was absent from it;
    ``parts`` (one column per ranking, semantic first) what each ranking added to the fused score.
    """

    def __init__(
        self, rows: np.ndarray, scores: np.ndarray, semantic: np.ndarray, keyword: np.ndarray, parts: np.ndarray | None = None
    ) -> None:
        self.rows, self.scores, self.semantic, self.keyword = rows, scores, semantic, keyword
        self.parts = np.zeros((len(rows), 2)) if parts is None else parts

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, position: int) -> FusedCandidate: ...

    @overload
    def __getitem__(self, position: slice) -> list[FusedCandidate]: ...

    def __getitem__(self, position: int | slice) -> FusedCandidate | list[FusedCandidate]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        semantic, keyword = float(self.semantic[position]), float(self.keyword[position])
        in_semantic, in_keyword = semantic == semantic, keyword == keyword  # NaN is not equal to itself
        return FusedCandidate(
            row=int(self.rows[position]),
            score=float(self.scores[position]),
            semantic=semantic if in_semantic else None,
            keyword=keyword if in_keyword else None,
            sources=tuple(name for name, present in ((SEMANTIC, in_semantic), (KEYWORD, in_keyword)) if present),
            contributions={SEMANTIC: float(self.parts[position, 0]), KEYWORD: float(self.parts[position, 1])},
        )

    def select(self, positions: np.ndarray | list[int]) -> FusedRanking:
        """The candidates at ``positions``, in that order."""
        keep = np.asarray(positions, dtype=np.int64)
        return FusedRanking(self.rows[keep], self.scores[keep], self.semantic[keep], self.keyword[keep], self.parts[keep])


def semantic_scores(passage_cosine: np.ndarray, best_sentence: np.ndarray | None, best_part: bool = False) -> np.ndarray:
    """A candidate's semantic score from its passage cosine and its best sentence cosine.

    Ranking passages (the answer to a question): their mean. The passage vector says what the passage
    is about, the best sentence whether it holds the answer; the mean beat the passage cosine alone on
    the seed and manual questions (hit@1 0.50 -> 0.75 and equal on the manuals).

    Ranking documents in hybrid mode (``best_part``, see ``best_part_scores_documents``): their maximum.
    """
    cosine = np.asarray(passage_cosine, dtype=np.float64)
    if best_sentence is None:
        return cosine
    sentence = np.asarray(best_sentence, dtype=np.float64)
    return np.maximum(cosine, sentence) if best_part else (cosine + sentence) / 2


def best_part_scores_documents(mode: str, ranking_documents: bool) -> bool:
    """Whether a candidate's semantic score is the maximum, not the mean, of its passage and best-sentence cosine.

    In hybrid ranking of documents: a document is relevant when any part of it is, the MaxP principle of
    passage-based document ranking (Callan 1994; Dai & Callan 2019), while whole-document BM25 supplies the
    topical evidence. Cranfield nDCG@10 0.4156 -> 0.4209; passage rankings are not touched. Semantic mode
    keeps the mean: alone, with no term evidence beside it, the maximum lost (Cranfield 0.369 -> 0.340).
    """
    return mode == "hybrid" and ranking_documents


def rerank(rows: np.ndarray, scores: np.ndarray) -> Ranking:
    """Candidates re-ordered best first by new scores (ties by row)."""
    return _best_first(np.asarray(rows, dtype=np.int64), np.asarray(scores))


def document_ranking_as_passages(documents: Ranking, rows_by_document: dict[int, list[int]]) -> Ranking:
    """A ranking of documents (e.g. BM25 over whole documents) as a ranking of their passages.

    Every passage of a document carries the document's score, so fusing it with the semantic
    passage ranking ranks a document by its best passage plus the whole document's term evidence
    (Callan 1994): splitting a document into passages would otherwise throw term evidence away.
    """
    doc_ids, doc_scores = documents
    rows: list[int] = []
    scores: list[float] = []
    for doc, score in zip(np.asarray(doc_ids).tolist(), np.asarray(doc_scores, dtype=np.float64).tolist()):
        passages = rows_by_document.get(doc, [])
        rows.extend(passages)
        scores.extend([score] * len(passages))
    return np.asarray(rows, dtype=np.int64), np.asarray(scores, dtype=np.float64)


def keyword_weight(specificity: float | None) -> float:
    """The keyword ranking's weight beside the semantic one's 1: the query's term specificity
    (``search.text.query_terms.term_specificity``), or 1 where the backend cannot tell.

    BM25 over passages of long prose rewards passages where the query's common words recur (names of the
    countries and leaders a collection is about, question words): min-max stretches such a ranking to the
    full 0..1, and its spread then outweighs meaning. A query's most specific term says how far its keyword
    ranking can be trusted (maximum IDF, He & Ounis 2004): a rare name keeps equal weights, a question in
    common words leans on meaning. Measured on every public set (issue 17): Cranfield nDCG@10 0.4209 ->
    0.4284, seed questions unchanged (0.958), 80 further seed questions MRR@10 0.807 -> 0.814, passage-QA
    0.763 -> 0.771.
    """
    return 1.0 if specificity is None else float(specificity)


def fuse_min_max(semantic: Ranking, keyword: Ranking, keyword_specificity: float | None = None) -> FusedRanking:
    """The default fusion: each candidate's min-max scores, averaged over the available rankings with the
    semantic ranking weighing 1 and the keyword ranking ``keyword_weight(keyword_specificity)``."""
    parts = [_min_max(scores) for _, scores in (semantic, keyword)]
    return _combine(semantic, keyword, parts, (1.0, keyword_weight(keyword_specificity)))


def fuse_reciprocal_rank(semantic: Ranking, keyword: Ranking, k: int = RRF_K) -> FusedRanking:
    """Reciprocal-rank fusion (Cormack et al. 2009), divided by its best possible value so it is 0..1."""
    if k < 0:
        raise ValueError(f"k must be 0 or more, not {k}")
    return _combine(semantic, keyword, [(k + 1) / (k + np.arange(1, len(rows) + 1)) for rows, _ in (semantic, keyword)])


def _min_max(scores: np.ndarray) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if len(values) == 0:
        return values
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.ones_like(values)


def _best_first(rows: np.ndarray, scores: np.ndarray) -> Ranking:
    order = np.lexsort((rows, -np.asarray(scores, dtype=np.float64)))
    return rows[order], np.asarray(scores, dtype=np.float64)[order]


def _combine(semantic: Ranking, keyword: Ranking, parts: list[np.ndarray], weights: tuple[float, float] = (1.0, 1.0)) -> FusedRanking:
    """Candidates of both rankings with the weighted mean of their parts over the rankings that returned any."""
    rankings = [(np.asarray(rows, dtype=np.int64), np.asarray(scores, dtype=np.float64)) for rows, scores in (semantic, keyword)]
    rows, inverse = np.unique(np.concatenate([r for r, _ in rankings]), return_inverse=True)
    positions = np.split(inverse, [len(rankings[0][0])])
    contributions = np.zeros((len(rows), 2))
    originals = []
    available = sum(weight for part, weight in zip(parts, weights) if len(part)) or 1.0
    for column, ((_, scores), part, where) in enumerate(zip(rankings, parts, positions)):
        contributions[where, column] = part * weights[column] / available
        original = np.full(len(rows), np.nan)
        original[where] = scores
        originals.append(original)
    fused = contributions.sum(axis=1)
    order = np.lexsort((rows, -fused))
    return FusedRanking(rows[order], fused[order], originals[0][order], originals[1][order], contributions[order])
