"""Fusing a semantic and a keyword ranking: the 0..1 scale, absent rankings, ties and ordering."""

from __future__ import annotations

import numpy as np
import pytest

from search.ranking.fusion import (
    KEYWORD,
    SEMANTIC,
    best_part_scores_documents,
    document_ranking_as_passages,
    fuse_min_max,
    fuse_reciprocal_rank,
    keyword_weight,
    rerank,
    semantic_scores,
)


def _ranking(rows: list[int], scores: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(rows, dtype=np.int64), np.array(scores, dtype=np.float64)


SEMANTIC_RANKING = _ranking([3, 1, 2], [0.8, 0.4, 0.2])
KEYWORD_RANKING = _ranking([1, 5, 6], [10.0, 5.0, 2.0])
EMPTY = _ranking([], [])


def test_min_max_fusion_averages_each_rankings_position_between_worst_and_best() -> None:
    by_row = {c.row: c for c in fuse_min_max(SEMANTIC_RANKING, KEYWORD_RANKING)}
    assert by_row[1].score == pytest.approx((1 / 3 + 1.0) / 2)
    assert by_row[3].score == pytest.approx(0.5)
    assert by_row[5].score == pytest.approx((3 / 8) / 2)
    assert by_row[2].score == pytest.approx(0.0)
    assert by_row[6].score == pytest.approx(0.0)


def test_ordering_is_best_first_with_ties_broken_by_row() -> None:
    fused = fuse_min_max(SEMANTIC_RANKING, KEYWORD_RANKING)
    assert [c.row for c in fused] == [1, 3, 5, 2, 6]


@pytest.mark.parametrize("fuse", [fuse_min_max, fuse_reciprocal_rank])
@pytest.mark.parametrize(
    "semantic, keyword",
    [(SEMANTIC_RANKING, KEYWORD_RANKING), (SEMANTIC_RANKING, EMPTY), (EMPTY, KEYWORD_RANKING)],
    ids=["both", "no keyword match", "model failed"],
)
def test_scores_are_on_the_zero_to_one_scale_and_the_best_possible_is_one(fuse, semantic, keyword) -> None:
    fused = fuse(semantic, keyword)
    assert fused and all(0.0 <= c.score <= 1.0 for c in fused)
    if not (len(semantic[0]) and len(keyword[0])):
        assert fused[0].score == pytest.approx(1.0)


def test_a_single_ranking_keeps_its_order_and_names_its_source() -> None:
    only_keyword = fuse_min_max(EMPTY, KEYWORD_RANKING)
    assert [c.row for c in only_keyword] == [1, 5, 6]
    assert all(c.sources == (KEYWORD,) and c.semantic is None for c in only_keyword)


def test_components_keep_original_scores_and_sources() -> None:
    by_row = {c.row: c for c in fuse_min_max(SEMANTIC_RANKING, KEYWORD_RANKING)}
    assert by_row[1].semantic == pytest.approx(0.4) and by_row[1].keyword == pytest.approx(10.0)
    assert by_row[1].sources == (SEMANTIC, KEYWORD)
    assert by_row[3].keyword is None and by_row[3].sources == (SEMANTIC,)


def test_equal_scores_all_count_as_best_and_tie_by_row() -> None:
    fused = fuse_min_max(_ranking([7, 4], [0.3, 0.3]), EMPTY)
    assert [(c.row, c.score) for c in fused] == [(4, 1.0), (7, 1.0)]


def test_negative_scores_stay_in_range() -> None:
    fused = fuse_min_max(_ranking([7, 4], [-0.1, -0.3]), EMPTY)
    assert [(c.row, c.score) for c in fused] == [(7, 1.0), (4, 0.0)]


def test_both_rankings_empty() -> None:
    assert len(fuse_min_max(EMPTY, EMPTY)) == 0
    assert len(fuse_reciprocal_rank(EMPTY, EMPTY)) == 0


def test_reciprocal_rank_fusion_is_divided_by_its_best_possible_value() -> None:
    by_row = {c.row: c for c in fuse_reciprocal_rank(SEMANTIC_RANKING, KEYWORD_RANKING, k=60)}
    assert by_row[1].score == pytest.approx((61 / 62 + 1.0) / 2)
    assert by_row[3].score == pytest.approx(0.5)


def test_negative_rrf_k_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be"):
        fuse_reciprocal_rank(SEMANTIC_RANKING, KEYWORD_RANKING, k=-1)


def test_semantic_score_is_the_mean_of_passage_and_best_sentence() -> None:
    assert semantic_scores(np.array([0.2, 0.6]), np.array([0.8, 0.6])).tolist() == pytest.approx([0.5, 0.6])
    assert semantic_scores(np.array([0.2]), None).tolist() == pytest.approx([0.2])


@pytest.mark.parametrize(
    ("mode", "ranking_documents", "expected"),
    [("hybrid", True, True), ("hybrid", False, False), ("semantic", True, False), ("keyword", True, False)],
)
def test_only_hybrid_document_rankings_score_by_the_best_part(mode, ranking_documents, expected) -> None:
    assert best_part_scores_documents(mode, ranking_documents) is expected


def test_a_document_is_scored_by_its_best_part_when_documents_are_ranked() -> None:
    passage, sentence = np.array([0.2, 0.6]), np.array([0.8, 0.5])
    assert semantic_scores(passage, sentence, best_part=True).tolist() == pytest.approx([0.8, 0.6])
    assert semantic_scores(passage, None, best_part=True).tolist() == pytest.approx([0.2, 0.6])


def test_rerank_orders_candidates_by_new_scores() -> None:
    rows, scores = rerank(np.array([5, 2, 9]), np.array([0.1, 0.7, 0.7]))
    assert rows.tolist() == [2, 9, 5] and scores.tolist() == pytest.approx([0.7, 0.7, 0.1])


def test_document_ranking_gives_every_passage_its_documents_score() -> None:
    rows, scores = document_ranking_as_passages(_ranking([1, 0], [4.0, 2.0]), {0: [0, 1], 1: [2]})
    assert rows.tolist() == [2, 0, 1] and scores.tolist() == [4.0, 2.0, 2.0]


@pytest.mark.parametrize("fuse", [fuse_min_max, fuse_reciprocal_rank])
@pytest.mark.parametrize("keyword", [KEYWORD_RANKING, EMPTY], ids=["both", "no keyword match"])
def test_each_rankings_contribution_sums_to_the_fused_score(fuse, keyword) -> None:
    for candidate in fuse(SEMANTIC_RANKING, keyword):
        assert set(candidate.contributions) == {SEMANTIC, KEYWORD}
        assert sum(candidate.contributions.values()) == pytest.approx(candidate.score)
        for name, part in candidate.contributions.items():
            assert (part > 0) <= (name in candidate.sources), "a ranking that did not return a candidate adds nothing"


def test_contributions_follow_a_selection() -> None:
    fused = fuse_min_max(SEMANTIC_RANKING, KEYWORD_RANKING)
    picked = fused.select([2, 0])
    assert [c.contributions for c in picked] == [fused[2].contributions, fused[0].contributions]


def test_the_keyword_ranking_weighs_the_querys_term_specificity() -> None:
    by_row = {c.row: c for c in fuse_min_max(SEMANTIC_RANKING, KEYWORD_RANKING, keyword_specificity=0.5)}
    assert by_row[3].score == pytest.approx(1.0 / 1.5), "first by meaning only: weight 1 of 1.5"
    assert by_row[1].score == pytest.approx((1 / 3 + 0.5 * 1.0) / 1.5)
    assert by_row[1].contributions == pytest.approx({SEMANTIC: (1 / 3) / 1.5, KEYWORD: 0.5 / 1.5})
    assert [c.row for c in fuse_min_max(SEMANTIC_RANKING, KEYWORD_RANKING, keyword_specificity=0.5)][:2] == [3, 1]
    assert [c.row for c in fuse_min_max(SEMANTIC_RANKING, KEYWORD_RANKING, keyword_specificity=1.0)][:2] == [1, 3]


@pytest.mark.parametrize("specificity", [None, 1.0])
def test_an_unknown_or_full_specificity_weighs_both_rankings_equally(specificity) -> None:
    assert keyword_weight(specificity) == 1.0
    equal = fuse_min_max(SEMANTIC_RANKING, KEYWORD_RANKING)
    weighted = fuse_min_max(SEMANTIC_RANKING, KEYWORD_RANKING, specificity)
    assert weighted.rows.tolist() == equal.rows.tolist() and weighted.scores.tolist() == pytest.approx(equal.scores.tolist())


def test_a_lone_ranking_keeps_the_full_scale_whatever_its_weight() -> None:
    only_keyword = fuse_min_max(EMPTY, KEYWORD_RANKING, keyword_specificity=0.2)
    assert only_keyword.scores.tolist() == pytest.approx([1.0, 3 / 8, 0.0])
