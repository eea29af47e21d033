"""BM25 keyword index (tantivy over analyzed terms): rare terms, stemming, stop words, odd queries, updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from search.backends.local.term_index import TermIndex
from search.text.analyzer import Analyzer
from search.text.query_terms import bm25_idf, term_specificity

TEXTS = [
    "The delegation travelled to Istanbul for the talks.",
    "Negotiators discussed a ceasefire along the front line.",
    "Kadyrov was proposed, jokingly, to head the delegation.",
    "The Black Sea fleet moved its ships to Novorossiysk.",
]
ANALYZER = Analyzer()


def _index(folder: Path, texts: list[str] = TEXTS) -> TermIndex:
    index = TermIndex(folder)
    index.apply([(key, 100 + key, " ".join(ANALYZER.terms(text))) for key, text in enumerate(texts, start=1)], [])
    return index


def _search(index: TermIndex, query: str, k: int = 10, allowed: list[int] | None = None):
    return index.search({term: 1.0 for term in ANALYZER.terms(query)}, k, allowed)


def test_exact_rare_term_ranks_its_passage_first(tmp_path: Path) -> None:
    keys, scores = _search(_index(tmp_path), "who is Kadyrov")
    assert keys.tolist() == [3]
    assert scores.dtype == np.float32 and scores[0] > 0


def test_stemming_matches_other_word_forms_and_orders_best_first(tmp_path: Path) -> None:
    keys, scores = _search(_index(tmp_path), "delegations travelling")
    assert keys.tolist() == [1, 3]
    assert scores[0] > scores[1]


@pytest.mark.parametrize("query", ["", "the and of", "zzzunknown", "\x00", "😀🚀", "東京", "\ud800", "a" * 10_000])
def test_queries_without_known_terms_return_empty_arrays(tmp_path: Path, query: str) -> None:
    keys, scores = _search(_index(tmp_path), query, 5)
    assert keys.shape == (0,) and scores.shape == (0,)


def test_k_larger_than_the_index_and_k_cut(tmp_path: Path) -> None:
    index = _index(tmp_path)
    assert len(_search(index, "delegation", 100)[0]) == 2
    assert _search(index, "delegation", 1)[0].tolist() == [1]
    assert len(_search(index, "delegation", 0)[0]) == 0


def test_filter_by_document_applies_before_the_cut(tmp_path: Path) -> None:
    index = _index(tmp_path)
    assert _search(index, "delegation", 1, allowed=[103])[0].tolist() == [3]
    assert _search(index, "delegation", 5, allowed=[])[0].tolist() == []
    unfiltered = dict(zip(*(a.tolist() for a in _search(index, "delegation"))))
    filtered = dict(zip(*(a.tolist() for a in _search(index, "delegation", allowed=[103]))))
    assert filtered[3] == pytest.approx(unfiltered[3]), "a filter does not change scores"


def test_weights_scale_each_terms_contribution(tmp_path: Path) -> None:
    index = _index(tmp_path)
    plain = dict(zip(*(a.tolist() for a in index.search({"deleg": 1.0}, 5))))
    doubled = dict(zip(*(a.tolist() for a in index.search({"deleg": 2.0}, 5))))
    assert doubled[1] == pytest.approx(2 * plain[1], rel=1e-5)


def test_updates_delete_and_re_add_by_key_and_survive_reopening(tmp_path: Path) -> None:
    index = _index(tmp_path)
    index.apply([(2, 102, " ".join(ANALYZER.terms("Kadyrov again")))], [3])
    assert _search(index, "Kadyrov")[0].tolist() == [2]
    index.apply([(2, 102, " ".join(ANALYZER.terms("Kadyrov again")))], [3])
    reopened = TermIndex(tmp_path)
    assert reopened.size() == 3, "replaying the same change is harmless"
    assert _search(reopened, "Kadyrov")[0].tolist() == [2]


def test_analyzer_round_trips_through_a_dict() -> None:
    analyzer = Analyzer(stopwords=("the", "to"))
    assert Analyzer.from_dict(analyzer.as_dict()) == analyzer
    assert analyzer.terms("The ships TO Novorossiysk") == ["ship", "novorossiysk"]


def test_unknown_stemmer_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="english"):
        Analyzer(stemmer="klingon")


def test_term_specificity_is_the_most_specific_indexed_terms_idf_over_the_highest_possible(tmp_path: Path) -> None:
    index = _index(tmp_path)
    specificity = lambda query: term_specificity(ANALYZER.terms(query), index.document_frequency, index.size())  # noqa: E731
    assert specificity("Kadyrov and the delegation") == pytest.approx(1.0), "a term held by one passage is as specific as can be"
    assert specificity("delegation") == pytest.approx(bm25_idf(2, 4) / bm25_idf(1, 4))
    delegation = specificity("delegation")
    assert delegation is not None and 0 < delegation < 1
    assert specificity("zzzunknown") is None and specificity("") is None
    assert term_specificity(["delegation"], index.document_frequency, 0) is None
