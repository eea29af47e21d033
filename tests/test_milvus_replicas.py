"""Stateless serving replicas on one Milvus index: a write through one is searchable, or gone, through another
within 5 s (the lease that refuses a second writer is tested in ``test_milvus_backend``). Real servers: milvus-lite and two
``semsearch serve --backend milvus`` processes on 127.0.0.1."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from tests.conftest import SEEDS, start_server, stop_server

pytestmark = pytest.mark.slow

TOKEN = "replica-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VISIBLE_WITHIN_S = 5.0


def _found(url: str, query: str, doc_id: str) -> bool:
    hits = httpx.get(f"{url}/search", params={"q": query, "k": 5, "mode": "keyword"}, timeout=30).json()["results"]
    return any(hit["doc_id"] == doc_id for hit in hits)


def _seconds_until(condition) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > 30:
            return float("inf")
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_write_through_one_replica_shows_through_another_within_5_s(milvus_uri, tmp_path):
    env = {"SEMSEARCH_BACKEND": "milvus", "SEMSEARCH_MILVUS_URI": milvus_uri, "SEMSEARCH_ADMIN_TOKEN": TOKEN}
    docs_a, docs_b = tmp_path / "a" / "docs", tmp_path / "b" / "docs"
    shutil.copytree(SEEDS, docs_a)
    shutil.copytree(SEEDS, docs_b)
    # Two machines' folders, one index name: replicas share the index in Milvus, not files.
    first = start_server(docs_a, tmp_path / "a" / "replicas", env=env)
    second = start_server(docs_b, tmp_path / "b" / "replicas", env=env)
    try:
        health = httpx.get(f"{second.url}/health", timeout=30).json()
        assert health["backend"] == "milvus" and health["documents"] == 5
        body = b"# Walrus\n\nThe quixotic walrus ledger lists herring by the barrel.\n"
        put = httpx.put(f"{first.url}/documents/walrus.md", content=body, headers=AUTH, timeout=120)
        assert put.status_code == 201, put.text
        seen = _seconds_until(lambda: _found(second.url, "quixotic walrus ledger", "walrus.md"))
        assert seen <= VISIBLE_WITHIN_S, f"the other replica saw the new document after {seen:.1f} s"
        deleted = httpx.delete(f"{first.url}/documents/walrus.md", headers=AUTH, timeout=120)
        assert deleted.status_code == 204
        gone = _seconds_until(lambda: not _found(second.url, "quixotic walrus ledger", "walrus.md"))
        assert gone <= VISIBLE_WITHIN_S, f"the other replica still showed the deleted document after {gone:.1f} s"
        print(f"replica visibility: a PUT after {seen:.2f} s, a DELETE after {gone:.2f} s")
    finally:
        stop_server(first)
        stop_server(second)
