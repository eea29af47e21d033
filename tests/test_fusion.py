"""Fusing a semantic and a keyword ranking: known scores, absent components and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from search.fusion import FusedCandidate, fuse_normalized, fuse_reciprocal_rank


def _ranking(rows: list[int], scores: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(rows, dtype=np.int64), np.array(scores, dtype=np.float32)


SEMANTIC = _ranking([3, 1, 2], [0.8, 0.4, 0.2])
KEYWORD = _ranking([1, 5], [10.0, 5.0])


def test_normalized_fusion_divides_each_ranking_by_its_best_score() -> None:
    fused = fuse_normalized(SEMANTIC, KEYWORD)
    assert [c.row for c in fused] == [1, 3, 5, 2]
    by_row = {c.row: c for c in fused}
    assert by_row[1].score == pytest.approx(0.5 + 1.0)
    assert by_row[3].score == pytest.approx(1.0)
    assert by_row[5].score == pytest.approx(0.5)
    assert by_row[2].score == pytest.approx(0.25)


def test_components_keep_original_scores_and_none_where_absent() -> None:
    by_row = {c.row: c for c in fuse_normalized(SEMANTIC, KEYWORD)}
    assert by_row[1].semantic == pytest.approx(0.4) and by_row[1].keyword == pytest.approx(10.0)
    assert by_row[3].keyword is None
    assert by_row[5].semantic is None
    assert isinstance(by_row[1], FusedCandidate)


def test_reciprocal_rank_fusion_sums_reciprocal_ranks() -> None:
    fused = fuse_reciprocal_rank(SEMANTIC, KEYWORD, k=60)
    by_row = {c.row: c for c in fused}
    assert fused[0].row == 1
    assert by_row[1].score == pytest.approx(1 / 62 + 1 / 61)
    assert by_row[3].score == pytest.approx(1 / 61)
    assert by_row[5].score == pytest.approx(1 / 62)
    assert [c.row for c in fused] == [1, 3, 5, 2]


@pytest.mark.parametrize("fuse", [fuse_normalized, fuse_reciprocal_rank])
def test_one_or_both_rankings_empty(fuse) -> None:
    empty = _ranking([], [])
    assert fuse(empty, empty) == []
    only_semantic = fuse(SEMANTIC, empty)
    assert [c.row for c in only_semantic] == [3, 1, 2]
    assert all(c.keyword is None for c in only_semantic)


def test_ties_are_broken_by_row_and_zero_or_negative_scores_do_not_fail() -> None:
    fused = fuse_normalized(_ranking([7, 4], [0.0, -0.3]), _ranking([], []))
    assert [(c.row, c.score) for c in fused] == [(4, 0.0), (7, 0.0)]


def test_negative_rrf_k_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be"):
        fuse_reciprocal_rank(SEMANTIC, KEYWORD, k=-1)
