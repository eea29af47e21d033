"""BEIR loading and scoring: trec_eval's figures on runs whose scores are known by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evaluation.beir import load_beir, score_run
from search.errors import SemsearchError

QRELS = {"q1": {"d1": 1, "d2": 2}, "q2": {"d4": 1}}


def _write_set(folder: Path, qrels: str = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\n") -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "title": "Wings", "text": "lift"}\n{"_id": 2, "text": "drag"}\n', encoding="utf-8")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "what is lift"}\n', encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return folder


def test_load_beir_reads_corpus_queries_and_graded_qrels(tmp_path: Path) -> None:
    beir = load_beir(_write_set(tmp_path))
    assert beir.corpus["d1"].title == "Wings" and beir.corpus["d1"].text == "lift"
    assert beir.corpus["2"].title == ""
    assert beir.queries == {"q1": "what is lift"}
    assert beir.qrels == {"q1": {"d1": 1, "d2": 2}}


def test_missing_folder_and_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SemsearchError, match="does not exist"):
        load_beir(tmp_path / "nowhere")
    folder = _write_set(tmp_path / "set")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(SemsearchError, match=r"queries\.jsonl"):
        load_beir(folder)


def test_malformed_lines_are_reported_with_their_number(tmp_path: Path) -> None:
    folder = _write_set(tmp_path / "bad-qrels", qrels="query-id\tcorpus-id\tscore\nq1\td1\tvery\n")
    with pytest.raises(SemsearchError, match=r"test\.tsv line 2"):
        load_beir(folder)
    folder = _write_set(tmp_path / "bad-json")
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "lift"}\n{"_id": "d2"\n', encoding="utf-8")
    with pytest.raises(SemsearchError, match=r"corpus\.jsonl line 2"):
        load_beir(folder)
    (folder / "corpus.jsonl").write_text('{"_id": "d1"}\n', encoding="utf-8")
    with pytest.raises(SemsearchError, match="_id, text"):
        load_beir(folder)


def test_perfect_run_scores_one() -> None:
    run = {"q1": {"d2": 2.0, "d1": 1.0}, "q2": {"d4": 5.0}}
    assert score_run(run, QRELS) == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}


def test_imperfect_run_scores_known_values() -> None:
    # q1: d3 (not relevant), d1 (grade 1), d2 (grade 2); q2 missing from the run; q9 has no judgements.
    run = {"q1": {"d3": 3.0, "d1": 2.0, "d2": 1.0}, "q9": {"d1": 1.0}}
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    scores = score_run(run, QRELS)
    assert scores["ndcg@10"] == pytest.approx(dcg / ideal / 2)
    assert scores["recall@100"] == pytest.approx(0.5)
    assert scores["mrr@10"] == pytest.approx(0.25)


def test_mrr_only_counts_the_top_ten() -> None:
    run = {"q2": {f"x{i}": 100.0 - i for i in range(10)} | {"d4": 1.0}}
    scores = score_run(run, {"q2": {"d4": 1}})
    assert scores["mrr@10"] == 0.0
    assert scores["recall@100"] == 1.0


def test_no_judgements_is_an_error() -> None:
    with pytest.raises(SemsearchError, match="no query"):
        score_run({"q1": {"d1": 1.0}}, {})
