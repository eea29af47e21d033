"""The stages of ranking as functions over arrays: rescore, feedback, shape. None of them reads storage.

    retrieve (the backend's ReadView) -> rescore -> fuse (search.ranking.fusion) -> feedback -> shape -> hydrate

``search.ranking.searcher`` runs the pipeline and does the reads; each function here can be tested alone on
small arrays. A new stage (a reranker) is a new function here and one line in the pipeline.
"""

from __future__ import annotations

import bisect

import numpy as np

from search.backends.contract import PassageSpan, Ranking, VectorBlocks
from search.ranking.feedback import moved_query_vector
from search.ranking.fusion import FusedRanking, rerank, semantic_scores

NO_RANKING: Ranking = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
# Passages of one region that share more than this fraction of the shorter one's text are the same answer.
DUPLICATE_OVERLAP = 0.5


def best_sentence_cosines(blocks: VectorBlocks, query_vector: np.ndarray) -> np.ndarray:
    """Per block, the best sentence's cosine with the query; a passage without sentences scores its own vector."""
    if not len(blocks.ids):
        return np.zeros(0)
    cosines = blocks.matrix @ query_vector
    has_sentences = blocks.counts > 1
    # A passage's own row competes only when it has no sentence row.
    cosines[blocks.offsets[has_sentences]] = -np.inf
    return np.maximum.reduceat(cosines, blocks.offsets).astype(np.float64)


def rescore_semantic(
    ids: np.ndarray, cosines: np.ndarray, blocks: VectorBlocks, query_vector: np.ndarray, best_part: bool = False
) -> Ranking:
    """Nearest passages re-scored from their own cosine and their best sentence's cosine with the question
    (``semantic_scores``: their mean, or with ``best_part`` their maximum).

    The passage vector says what the passage is about; the best sentence whether it holds the answer. Either
    alone ranks worse (measured on Cranfield and the seed questions). Candidates without vectors (gone since
    the snapshot) drop out.
    """
    best = dict(zip(blocks.ids.tolist(), best_sentence_cosines(blocks, query_vector).tolist()))
    kept = np.array([pid in best for pid in ids.tolist()], dtype=bool)
    if not kept.any():
        return NO_RANKING
    rows = np.asarray(ids, dtype=np.int64)[kept]
    return rerank(rows, semantic_scores(np.asarray(cosines)[kept], np.array([best[pid] for pid in rows.tolist()]), best_part))


def feedback_vector(query_vector: np.ndarray, seeds: np.ndarray, blocks: VectorBlocks) -> np.ndarray:
    """Rocchio: the query moved towards the passage vectors of the first fused results ``seeds``."""
    first_rows = dict(zip(blocks.ids.tolist(), blocks.offsets.tolist()))
    found = [blocks.matrix[first_rows[pid]] for pid in seeds.tolist() if pid in first_rows]
    return moved_query_vector(query_vector, np.array(found))


def shape(ranked: FusedRanking, spans: dict[int, PassageSpan], group_by_document: bool, min_score: float | None) -> FusedRanking:
    """Drop near-duplicate passages and candidates without a span, keep one per document if asked, apply the score floor."""
    positions = range(len(ranked)) if min_score is None else np.flatnonzero(ranked.scores >= min_score).tolist()
    rows = ranked.rows.tolist()
    kept: list[int] = []
    regions: dict[int, KeptRegions] = {}
    for position in positions:
        where = spans.get(rows[position])
        if where is None:
            continue
        seen = regions.setdefault(where.document, KeptRegions())
        if (group_by_document and seen.starts) or seen.overlaps_mostly(where.start, where.end):
            continue
        seen.add(where.start, where.end)
        kept.append(position)
    return ranked.select(kept)


def shaping_candidates(ranked: FusedRanking, min_score: float | None) -> list[int]:
    """The candidates whose spans shaping needs: those above the score floor."""
    rows = ranked.rows if min_score is None else ranked.rows[ranked.scores >= min_score]
    return rows.tolist()


class KeptRegions:
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


def _mostly_overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    return overlap > DUPLICATE_OVERLAP * min(a[1] - a[0], b[1] - b[0])
