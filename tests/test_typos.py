"""Typo tolerance (``search.ranking.typos``): misspelled words corrected to the index's own, real words left alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation.questions import load_questions
from evaluation.typos import with_typos
from search.ranking.rules import SearchRequest
from search.ranking.searcher import Searcher
from tests.conftest import ROOT, SHARED_EVAL


@pytest.fixture(scope="module")
def searcher(seed_index: Path) -> Iterator[Searcher]:
    opened = Searcher.open(seed_index)
    yield opened
    opened.backend.close()


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
def test_misspelled_words_are_corrected_and_find_their_passages(searcher, mode):
    result = searcher.search(SearchRequest("Istambul acords", k=3, mode=mode, explain=True))
    assert [(c.original, c.corrected) for c in result.corrections] == [("Istambul", "istanbul"), ("acords", "accords")]
    assert result.searched == "Istanbul accords"
    assert any("Istanbul" in hit.text for hit in result.hits)
    assert result.hits[0].explain["corrections"] == [{"from": "Istambul", "to": "istanbul"}, {"from": "acords", "to": "accords"}]
    assert result.hits[0].explain["searched"] == {"semantic": "Istanbul accords", "keyword": "Istambul acords istanbul accords"}


def test_correctly_spelled_questions_are_searched_as_asked(searcher):
    """A word the index knows is never corrected, nor a real word it lacks ("prisoners", "alone", "quote")."""
    questions = load_questions(SHARED_EVAL / "seed_questions_public.jsonl") + load_questions(ROOT / "evaluation/seed_qa/questions.jsonl")
    for question in ["Istanbul accords", *(q.question for q in questions)]:
        result = searcher.search(SearchRequest(question, k=1, mode="keyword"))
        assert result.corrections == () and result.searched == question.strip(), question


def test_how_far_a_word_may_be_from_its_correction(searcher):
    def corrected(question: str) -> list[tuple[str, str]]:
        return [(c.original, c.corrected) for c in searcher.search(SearchRequest(question, k=1, mode="keyword")).corrections]

    assert corrected("Ptin talks") == [], "four letters or fewer are never corrected"
    assert corrected("Pytin talks") == [("Pytin", "putin")]
    assert corrected("Istxmbxl") == [], "two edits in an eight-letter word is too far"
    assert corrected("Mearshiemer Zelenksy") == [("Mearshiemer", "mearsheimer"), ("Zelenksy", "zelensky")], "a swap is one edit"
    assert corrected("Kadyrow Kadirow") == [("Kadyrow", "kadyrov")], "up to eight letters: one edit"
    assert corrected("Abromovitch") == [("Abromovitch", "abramovich")], "nine letters or more: two edits"
    assert corrected("delegaiton preconditoins") == [("delegaiton", "delegation"), ("preconditoins", "precondition")], "in an ending"
    assert corrected("Xstanbul") == [], "the first letter stays"


def test_seeded_typos_are_real_typos(searcher):
    """The evaluation's typos: one per question, in a word the index knows, making one it does not."""
    questions = load_questions(SHARED_EVAL / "seed_questions_public.jsonl")
    analyzer = searcher.backend.settings.analyzer

    def knows(word: str) -> bool:
        with searcher.backend.snapshot() as view:
            terms = analyzer.terms(word)
            return bool(terms) and view.term_statistics(word).document_frequencies.get(terms[0], 0) > 0

    mistyped = with_typos(questions, knows)
    assert mistyped == with_typos(questions, knows), "seeded"
    for clean, typo in zip(questions, mistyped):
        changed = [(a, b) for a, b in zip(clean.question.split(), typo.question.split()) if a != b]
        assert len(changed) == 1 and len(changed[0][1]) >= 5 and knows(changed[0][0]) and not knows(changed[0][1]), changed
