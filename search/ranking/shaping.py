"""The shape stage: near-duplicate passages dropped, one per document if asked, the score floor applied."""

from __future__ import annotations

import bisect

import numpy as np

from search.backends.contract import PassageSpan
from search.ranking.fusion import FusedRanking

# Passages of one region that share more than this fraction of the shorter one's text are the same answer.
DUPLICATE_OVERLAP = 0.5


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
