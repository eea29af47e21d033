"""``GET /metrics`` on a real app over the seed index: counters move with requests, gauges match the index."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from search.settings import Settings
from web.app import create_app


def _client(index: Path, **settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index=str(index), **settings))) as client:
        yield client


@pytest.fixture
def client(seed_index: Path) -> Iterator[TestClient]:
    yield from _client(seed_index)


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_search_is_counted_and_timed_by_the_next_scrape(client):
    before = scrape(client)
    assert client.get("/search", params={"q": "Black Sea fleet", "mode": "keyword"}).status_code == 200
    assert client.post("/search", json={"q": "Black Sea fleet"}).status_code == 200
    after = scrape(client)
    for mode in ("keyword", "hybrid"):
        counted = value(after, "semsearch_searches_total", mode=mode, outcome="ok") - value(
            before, "semsearch_searches_total", mode=mode, outcome="ok"
        )
        timed = value(after, "semsearch_search_seconds_count", mode=mode) - value(before, "semsearch_search_seconds_count", mode=mode)
        assert (counted, timed) == (1, 1), mode
    assert value(after, "semsearch_search_seconds_sum", mode="keyword") > 0


def test_requests_are_counted_by_route_template_and_status(client):
    before = scrape(client)
    client.get("/documents/no/such/doc.md")
    client.get("/documents/other.md")
    client.get("/search", params={"q": ""})
    client.get("/no-such-page")
    after = scrape(client)

    def grew(route: str, status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        return value(after, "semsearch_http_requests_total", **labels) - value(before, "semsearch_http_requests_total", **labels)

    assert grew("/documents/{doc_id:path}", "404") == 2
    assert grew("/search", "422") == 1
    assert grew("unmatched", "404") == 1
    assert not [labels for name, labels in after if name == "semsearch_http_requests_total" and ("route", "/documents/other.md") in labels]


def test_rejected_searches_have_their_own_outcome(client):
    before = scrape(client)
    response = client.get("/search", params={"q": "   "})
    assert response.status_code == 422 and response.json()["detail"]
    after = scrape(client)
    labels = {"mode": "hybrid", "outcome": "rejected"}
    assert value(after, "semsearch_searches_total", **labels) - value(before, "semsearch_searches_total", **labels) == 1


def test_index_gauges_match_the_open_index(client):
    samples = scrape(client)
    health = client.get("/health").json()
    assert value(samples, "semsearch_documents") == health["documents"] > 0
    assert value(samples, "semsearch_passages") == health["passages"] > 0
    assert value(samples, "semsearch_segments") >= 1
    assert value(samples, "semsearch_deleted_fraction") == 0
    assert value(samples, "semsearch_index_ready") == 1
    info = {dict(labels)["version"] for name, labels in samples if name == "semsearch_index_info"}
    assert info == {health["index_version"]}


def test_concurrent_searches_fill_the_encoder_batch_histogram(client):
    before = value(scrape(client), "semsearch_encoder_batch_size_count")
    barrier = threading.Barrier(8)

    def search(i: int) -> None:
        barrier.wait()
        for j in range(3):
            assert client.get("/search", params={"q": f"question {i} {j} about ships"}).status_code == 200

    threads = [threading.Thread(target=search, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    samples = scrape(client)
    assert value(samples, "semsearch_encoder_batch_size_count") > before
    assert value(samples, "semsearch_encoder_batch_size_bucket", le="+Inf") == value(samples, "semsearch_encoder_batch_size_count")


def test_each_app_counts_only_its_own_requests(seed_index):
    settings = Settings(index=str(seed_index))
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        first.get("/search", params={"q": "fleet"})
        assert value(scrape(second), "semsearch_searches_total", mode="hybrid", outcome="ok") == 0
        assert value(scrape(first), "semsearch_searches_total", mode="hybrid", outcome="ok") == 1


def test_metrics_can_be_turned_off(seed_index):
    for client in _client(seed_index, metrics=False):
        response = client.get("/metrics")
        assert response.status_code == 404 and response.json()["detail"]
        assert client.get("/search", params={"q": "fleet"}).status_code == 200


def test_metrics_stay_open_when_a_search_token_is_set(seed_index):
    for client in _client(seed_index, search_token="read-secret"):
        assert client.get("/search", params={"q": "fleet"}).status_code == 401
        samples = scrape(client)
        assert value(samples, "semsearch_http_requests_total", method="GET", route="/search", status="401") == 1
        assert value(samples, "semsearch_searches_total", mode="hybrid", outcome="ok") == 0


def test_metrics_without_an_index_say_it_is_not_ready(tmp_path):
    for client in _client(tmp_path / "missing"):
        samples = scrape(client)
        assert value(samples, "semsearch_index_ready") == 0
        assert ("semsearch_documents", ()) not in samples
