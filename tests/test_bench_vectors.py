"""The benchmark's realistic vectors: deterministic per text, queries near their passages, and IVF's
recall curve on them close to the curve on the real embeddings they are mixed from."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.vectors import MixtureEmbedder, compare_curves, load_basis


def test_a_text_always_gets_the_same_unit_vector() -> None:
    texts = ["Lift of a wing in a slipstream.", "Heat transfer at hypersonic speed."]
    first, second = MixtureEmbedder().encode(texts), MixtureEmbedder().encode(texts)
    assert np.array_equal(first, second)
    assert np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert np.array_equal(MixtureEmbedder().encode(["Lift  of a wing\nin a slipstream."])[0], first[0])
    assert float(first[0] @ first[1]) < 0.99


def test_a_query_finds_the_passage_it_was_cut_from() -> None:
    passages = [f"passage number {i} about topic {i % 97}" for i in range(3000)]
    sources = {f"question {i}": passages[i] for i in range(0, 3000, 100)}
    embedder = MixtureEmbedder(sources)
    matrix = embedder.encode(passages)
    for query, passage in sources.items():
        scores = matrix @ embedder.encode_query(query)
        assert int((scores > scores[passages.index(passage)]).sum()) < 10, query


@pytest.mark.slow
def test_synthetic_recall_curve_matches_the_real_one() -> None:
    result = compare_curves(load_basis())
    assert result["vectors"] >= 5000
    for point in result["curve"]:
        assert abs(point["real"] - point["synthetic"]) <= 0.06, point
