"""Merging the semantic and the keyword ranking of the same passages into one ranking.

Pure functions on each ranking's ``(rows, scores)`` arrays, best first, so they can be tested
and compared without an index. Both rankings get equal weight: nothing here is fit to a collection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Ranking = tuple[np.ndarray, np.ndarray]
RRF_K = 60


@dataclass(frozen=True)
class FusedCandidate:
    """A passage row with its fused score and each ranking's own score (None where it was absent)."""

    row: int
    score: float
    semantic: float | None
    keyword: float | None


def top_ranking(scores: np.ndarray, k: int, allowed: np.ndarray | None = None, positive_only: bool = False) -> Ranking:
    """The ``k`` best rows of a full score array, best first (ties by row), within ``allowed`` rows."""
    rows = np.arange(len(scores), dtype=np.int64) if allowed is None else np.asarray(allowed, dtype=np.int64)
    if positive_only:
        rows = rows[scores[rows] > 0]
    if k < 1 or len(rows) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    if len(rows) > k:
        rows = rows[np.argpartition(-scores[rows], k - 1)[:k]]
    order = np.lexsort((rows, -scores[rows]))
    return rows[order], np.asarray(scores[rows[order]], dtype=np.float32)


def fuse_normalized(semantic: Ranking, keyword: Ranking) -> list[FusedCandidate]:
    """Sum of each ranking's scores divided by its best score, best first.

    Both scores have a natural zero (BM25: no shared term; cosine: unrelated), so dividing by the
    top candidate's score puts them on one 0..1 scale while keeping how far apart candidates are,
    which rank-only fusion throws away. A passage absent from a ranking gets 0 from it.
    """
    parts = [_scaled_by_best(*semantic), _scaled_by_best(*keyword)]
    return _combine(semantic, keyword, parts)


def fuse_reciprocal_rank(semantic: Ranking, keyword: Ranking, k: int = RRF_K) -> list[FusedCandidate]:
    """Reciprocal-rank fusion (Cormack et al. 2009): the sum of ``1 / (k + rank)``, best first."""
    if k < 0:
        raise ValueError(f"k must be 0 or more, not {k}")
    parts = [
        dict(zip(rows.tolist(), (1.0 / (k + np.arange(1, len(rows) + 1))).tolist()))
        for rows, _ in (semantic, keyword)
    ]
    return _combine(semantic, keyword, parts)


def _scaled_by_best(rows: np.ndarray, scores: np.ndarray) -> dict[int, float]:
    if len(rows) == 0:
        return {}
    values = np.maximum(np.asarray(scores, dtype=np.float64), 0.0)
    best = values.max()
    scaled = values / best if best > 0 else np.zeros_like(values)
    return dict(zip(rows.tolist(), scaled.tolist()))


def _combine(semantic: Ranking, keyword: Ranking, parts: list[dict[int, float]]) -> list[FusedCandidate]:
    originals = [
        dict(zip(rows.tolist(), np.asarray(scores, dtype=np.float64).tolist())) for rows, scores in (semantic, keyword)
    ]
    candidates = [
        FusedCandidate(
            row=row,
            score=sum(part.get(row, 0.0) for part in parts),
            semantic=originals[0].get(row),
            keyword=originals[1].get(row),
        )
        for row in parts[0].keys() | parts[1].keys()
    ]
    return sorted(candidates, key=lambda candidate: (-candidate.score, candidate.row))
