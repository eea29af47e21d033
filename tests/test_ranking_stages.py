"""Each ranking stage alone, on small arrays: rescore, feedback and shape (fusion has tests_fusion)."""

from __future__ import annotations

import numpy as np
import pytest

from search.backends.contract import PassageSpan, VectorBlocks
from search.ranking.feedback import feedback_vector
from search.ranking.fusion import fuse_min_max
from search.ranking.rescore import best_sentence_cosines, rescore_semantic
from search.ranking.shaping import shape


def _unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def _blocks(rows: dict[int, list[np.ndarray]]) -> VectorBlocks:
    ids = np.array(list(rows), dtype=np.int64)
    counts = np.array([len(block) for block in rows.values()], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
    return VectorBlocks(ids, np.vstack([row for block in rows.values() for row in block]), offsets, counts)


QUERY = _unit(1, 0, 0)


def test_best_sentence_is_the_best_sentence_row_or_the_passage_without_sentences():
    blocks = _blocks(
        {
            1: [_unit(1, 0, 0), _unit(0, 1, 0), _unit(1, 1, 0)],  # passage row ignored: it has sentences
            2: [_unit(1, 1, 1)],  # no sentence: its own vector counts
        }
    )
    assert best_sentence_cosines(blocks, QUERY) == pytest.approx([1 / np.sqrt(2), 1 / np.sqrt(3)])


def test_rescore_averages_passage_and_best_sentence_and_drops_candidates_without_vectors():
    blocks = _blocks({7: [_unit(0, 1, 0), _unit(1, 0, 0)], 8: [_unit(1, 0, 0), _unit(0, 0, 1)]})
    ids, scores = rescore_semantic(np.array([8, 7, 9]), np.array([0.9, 0.5, 0.99]), blocks, QUERY)
    # 7: (0.5 + 1.0) / 2 = 0.75 beats 8: (0.9 + 0.0) / 2 = 0.45; 9 has no vectors (gone since the snapshot).
    assert ids.tolist() == [7, 8] and scores.tolist() == pytest.approx([0.75, 0.45])


def test_feedback_moves_the_query_towards_the_seeds_passage_vectors_and_stays_unit():
    blocks = _blocks({3: [_unit(0, 1, 0), _unit(1, 0, 0)], 4: [_unit(0, 0, 1)]})
    moved = feedback_vector(QUERY, np.array([3, 5]), blocks)
    assert np.linalg.norm(moved) == pytest.approx(1.0)
    assert moved == pytest.approx(_unit(1, 1, 0)), "seed 3's passage row, not its sentence; seed 5 is unknown"
    assert feedback_vector(QUERY, np.array([5]), blocks) == pytest.approx(QUERY)


def _ranked(rows: list[int]):
    return fuse_min_max((np.array(rows), np.linspace(1.0, 0.1, len(rows))), (np.zeros(0, dtype=np.int64), np.zeros(0)))


SPANS = {
    1: PassageSpan(document=10, start=0, end=100),
    2: PassageSpan(document=10, start=20, end=110),  # mostly the same text as 1
    3: PassageSpan(document=10, start=200, end=300),
    4: PassageSpan(document=11, start=0, end=50),
}


def test_shape_drops_near_duplicates_and_unknown_candidates():
    assert shape(_ranked([1, 2, 3, 4, 5]), SPANS, group_by_document=False, min_score=None).rows.tolist() == [1, 3, 4]


def test_shape_keeps_one_passage_per_document_when_grouping():
    assert shape(_ranked([3, 1, 4, 2]), SPANS, group_by_document=True, min_score=None).rows.tolist() == [3, 4]


def test_shape_applies_the_score_floor_before_anything_else():
    ranked = _ranked([1, 3, 4])
    kept = shape(ranked, SPANS, group_by_document=False, min_score=0.5)
    assert kept.rows.tolist() == [1, 3] and all(kept.scores >= 0.5)
