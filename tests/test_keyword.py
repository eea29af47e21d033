"""BM25 keyword index: exact rare terms, stemming, stop words, odd queries and a save/load round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from search.errors import IndexFormatError
from search.keyword import Analyzer, KeywordIndex

TEXTS = [
    "The delegation travelled to Istanbul for the talks.",
    "Negotiators discussed a ceasefire along the front line.",
    "Kadyrov was proposed, jokingly, to head the delegation.",
    "The Black Sea fleet moved its ships to Novorossiysk.",
]


def test_exact_rare_term_ranks_its_passage_first() -> None:
    rows, scores = KeywordIndex.build(TEXTS).search("who is Kadyrov", 10)
    assert rows.tolist() == [2]
    assert scores.dtype == np.float32 and scores[0] > 0


def test_stemming_matches_other_word_forms_and_orders_best_first() -> None:
    rows, scores = KeywordIndex.build(TEXTS).search("delegations travelling", 10)
    assert rows.tolist() == [0, 2]
    assert scores[0] > scores[1]


@pytest.mark.parametrize("query", ["", "the and of", "zzzunknown", "\x00", "😀🚀", "東京", "\ud800", "a" * 10_000])
def test_queries_without_known_terms_return_empty_arrays(query: str) -> None:
    rows, scores = KeywordIndex.build(TEXTS).search(query, 5)
    assert rows.shape == (0,) and scores.shape == (0,)


def test_k_larger_than_the_index_and_k_cut() -> None:
    index = KeywordIndex.build(TEXTS)
    assert len(index.search("delegation", 100)[0]) == 2
    assert index.search("delegation", 1)[0].tolist() == [0]
    assert len(index.search("delegation", 0)[0]) == 0


@pytest.mark.parametrize("texts", [[], ["Kadyrov"], ["", "?!"]])
def test_tiny_and_termless_indexes_round_trip(tmp_path: Path, texts: list[str]) -> None:
    index = KeywordIndex.build(texts)
    index.save(tmp_path / "kw")
    loaded = KeywordIndex.load(tmp_path / "kw")
    assert len(loaded) == len(texts)
    assert loaded.search("Kadyrov", 3)[0].tolist() == ([0] if texts == ["Kadyrov"] else [])


def test_save_load_keeps_rankings_and_the_analyzer(tmp_path: Path) -> None:
    index = KeywordIndex.build(TEXTS, Analyzer(stopwords=("the", "to")))
    index.save(tmp_path / "kw")
    assert all(path.parent == tmp_path / "kw" for path in (tmp_path).rglob("*") if path.is_file())
    loaded = KeywordIndex.load(tmp_path / "kw")
    assert loaded.analyzer == index.analyzer
    for query in ["delegation", "ships fleet", "for talks"]:
        expected, got = index.search(query, 10), loaded.search(query, 10)
        assert expected[0].tolist() == got[0].tolist()
        assert np.allclose(expected[1], got[1])


def test_damaged_or_foreign_index_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="cannot read keyword index"):
        KeywordIndex.load(tmp_path)
    KeywordIndex.build(TEXTS).save(tmp_path)
    manifest = json.loads((tmp_path / "keyword.json").read_text(encoding="utf-8"))
    (tmp_path / "keyword.json").write_text(json.dumps(manifest | {"format": 99}), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="format 99"):
        KeywordIndex.load(tmp_path)


def test_unknown_stemmer_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="english"):
        Analyzer(stemmer="klingon")
