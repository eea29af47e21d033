"""Ranking quality guards on the shared evaluation data (figures in the README)."""

import pytest

from evaluation.runner import RRF_REFERENCE, evaluate_beir, evaluate_questions
from indexer.chunking import ChunkingParams
from search.ranking.rules import MODES
from search.settings import Settings
from tests.conftest import ROOT, SEEDS, SHARED_EVAL

SETTINGS = Settings()
DEFAULT_PARAMS = ChunkingParams(SETTINGS.chunk_tokens, SETTINGS.overlap_sentences)
PASSAGE_QA = ROOT / "evaluation" / "passage_qa"
SEED_QA = ROOT / "evaluation" / "seed_qa"


@pytest.mark.slow
def test_seed_questions_default_mode_meets_its_targets():
    report = evaluate_questions(
        SHARED_EVAL / "seed_questions_public.jsonl", SEEDS, list(MODES), SETTINGS.model, DEFAULT_PARAMS, SETTINGS.max_file_bytes
    )
    hybrid = report.modes["hybrid"]
    assert report.queries == 12
    assert hybrid["hit@1"] >= 0.80 and hybrid["hit@5"] == 1.0
    for other in ("semantic", "keyword", RRF_REFERENCE):
        assert hybrid["mrr@10"] >= report.modes[other]["mrr@10"], other


@pytest.mark.slow
def test_cranfield_default_beats_each_single_mode_and_plain_rrf():
    report = evaluate_beir(SHARED_EVAL / "cranfield", list(MODES), SETTINGS.model, DEFAULT_PARAMS)
    ndcg = {mode: values["ndcg@10"] for mode, values in report.modes.items()}
    assert report.queries == 225
    assert ndcg["hybrid"] > max(ndcg["semantic"], ndcg["keyword"], ndcg[RRF_REFERENCE])
    assert ndcg["hybrid"] >= 0.42


@pytest.fixture(scope="module")
def passage_qa_report():
    """166 questions over six long documents of six genres (evaluation/passage_qa/PROVENANCE.md)."""
    return evaluate_questions(
        PASSAGE_QA / "questions.jsonl", PASSAGE_QA / "docs", list(MODES), SETTINGS.model, DEFAULT_PARAMS, SETTINGS.max_file_bytes
    )


@pytest.mark.slow
def test_passage_qa_default_is_at_least_as_good_as_each_mode(passage_qa_report):
    assert passage_qa_report.queries >= 150 and not passage_qa_report.skipped
    hybrid = passage_qa_report.modes["hybrid"]["mrr@10"]
    for other in ("semantic", "keyword"):
        assert hybrid >= passage_qa_report.modes[other]["mrr@10"], other


@pytest.mark.slow
def test_passage_qa_default_is_at_least_as_good_as_plain_rrf(passage_qa_report):
    assert passage_qa_report.modes["hybrid"]["mrr@10"] >= passage_qa_report.modes[RRF_REFERENCE]["mrr@10"]


@pytest.mark.slow
def test_seed_qa_default_is_at_least_as_good_as_each_mode_and_plain_rrf():
    """80 further questions over the seed documents (evaluation/seed_qa/PROVENANCE.md)."""
    report = evaluate_questions(SEED_QA / "questions.jsonl", SEEDS, list(MODES), SETTINGS.model, DEFAULT_PARAMS, SETTINGS.max_file_bytes)
    assert report.queries == 80 and not report.skipped
    hybrid = report.modes["hybrid"]
    assert hybrid["hit@1"] >= 0.75
    for other in ("semantic", "keyword", RRF_REFERENCE):
        assert hybrid["mrr@10"] >= report.modes[other]["mrr@10"], other


@pytest.mark.slow
def test_seed_questions_with_one_typo_each_score_as_the_clean_ones():
    """One seeded typo per question (``evaluation.typos``), in a word of five letters or more: hit@5 stays within
    0.05 of the clean questions' in hybrid and keyword modes."""
    report = evaluate_questions(
        SHARED_EVAL / "seed_questions_public.jsonl",
        SEEDS,
        ["hybrid", "keyword"],
        SETTINGS.model,
        DEFAULT_PARAMS,
        SETTINGS.max_file_bytes,
        typos=True,
    )
    for mode in ("hybrid", "keyword"):
        assert report.modes[f"{mode}, one typo"]["hit@5"] >= report.modes[mode]["hit@5"] - 0.05, (mode, report.modes)
