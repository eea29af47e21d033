"""Queries up to ``MAX_QUERY_CHARS`` (10,000 characters) answer everywhere; one character more is a clear 422,
and ``eval`` counts a query it cannot run instead of aborting."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from search.ranking.rules import MAX_QUERY_CHARS
from search.text.query_terms import MAX_QUERY_TERMS, query_term_weights
from tests.conftest import SEEDS
from tests.test_cli import run_cli


def _long_query(length: int = MAX_QUERY_CHARS) -> str:
    """A paragraph-like query of exactly ``length`` characters: the start of a seed document, "find passages like this"."""
    text = " ".join((SEEDS / "000_2ff6379e6f7d78c5.txt").read_text(encoding="utf-8").split())
    return ((text + " ") * (length // len(text) + 1))[:length]


def test_long_query_fixture_is_exactly_as_long_as_asked():
    assert len(_long_query()) == MAX_QUERY_CHARS == 10_000
    assert len(_long_query(MAX_QUERY_CHARS + 1)) == 10_001


def test_short_queries_keep_every_term_and_its_count():
    asked: list[str] = []

    def document_frequency(term: str) -> int:
        asked.append(term)
        return 1

    weights = query_term_weights(["wing", "lift", "wing"], document_frequency, 100)
    assert weights == {"wing": 2.0, "lift": 1.0} and asked == []


def test_long_queries_keep_the_terms_with_the_highest_frequency_times_idf():
    terms = [f"t{i}" for i in range(MAX_QUERY_TERMS + 10)] + ["t0"] * 3
    frequencies = {f"t{i}": (1 if i % 2 else 90) for i in range(MAX_QUERY_TERMS + 10)}
    weights = query_term_weights(terms, frequencies.__getitem__, 100)
    assert len(weights) == MAX_QUERY_TERMS
    assert weights["t0"] == 4.0, "a common term repeated often enough still counts"
    assert all(f"t{i}" in weights for i in range(1, MAX_QUERY_TERMS + 10, 2)), "every rare term is kept before common ones"
    assert list(weights) == sorted(weights, key=lambda term: terms.index(term)), "query order is kept"


@pytest.fixture(scope="module")
def client(live_server):
    with httpx.Client(base_url=live_server.url, timeout=120) as http:
        yield http


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_10000_character_query_answers_over_the_api(client, method):
    query = _long_query()
    response = client.get("/search", params={"q": query, "k": 3}) if method == "GET" else client.post("/search", json={"q": query, "k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == query and len(body["results"]) == 3
    assert body["results"][0]["doc_id"] == "000_2ff6379e6f7d78c5.txt"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_10001_character_query_is_a_clear_422(client, method):
    query = _long_query(MAX_QUERY_CHARS + 1)
    response = client.get("/search", params={"q": query}) if method == "GET" else client.post("/search", json={"q": query})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/json")
    assert "at most 10000 characters" in json.dumps(response.json()["detail"])


def test_the_rules_endpoint_states_the_limit(client):
    assert client.get("/search/rules").json()["max_query_chars"] == MAX_QUERY_CHARS


def test_a_10000_character_query_answers_on_the_command_line(seed_index):
    found = run_cli("search", _long_query(), "--index", str(seed_index), "-k", "2", "--json")
    assert found.returncode == 0, found.stderr
    assert [r["rank"] for r in json.loads(found.stdout)["results"]] == [1, 2]
    refused = run_cli("search", _long_query(MAX_QUERY_CHARS + 1), "--index", str(seed_index))
    assert refused.returncode != 0 and "longer than 10000 characters" in refused.stderr


def _beir_set(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    seed = (SEEDS / "000_2ff6379e6f7d78c5.txt").read_text(encoding="utf-8")
    corpus = [
        {"_id": "seed", "title": "", "text": seed[:3000]},
        {"_id": "wings", "title": "Wings", "text": "Lift grows with the angle of attack."},
    ]
    queries = [{"_id": "long", "text": _long_query()}, {"_id": "too-long", "text": _long_query(MAX_QUERY_CHARS + 1)}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(row) + "\n" for row in corpus), encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps(row) + "\n" for row in queries), encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nlong\tseed\t1\ntoo-long\tseed\t1\n", encoding="utf-8")
    return folder


def test_eval_runs_a_10000_character_query_and_counts_one_it_cannot_run(tmp_path):
    completed = run_cli("eval", str(_beir_set(tmp_path / "set")), "--json")
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["queries"] == 2 and report["skipped_queries"] == 1
    assert report["skipped"] == [{"query": "too-long", "reason": "the query is longer than 10000 characters"}]
    # The long query finds its document first in every mode; the refused one counts as finding nothing.
    assert all(values["mrr@10"] == pytest.approx(0.5) for values in report["modes"].values())
    printed = run_cli("eval", str(tmp_path / "set"), "--mode", "keyword")
    assert printed.returncode == 0 and "skipped 1 queries" in printed.stdout and "too-long" in printed.stdout
