"""``POST /index`` on a real server: admin token, one job at a time, searches uninterrupted by the swap."""

import shutil
import threading
import time

import httpx
import pytest

from tests.conftest import SEEDS, start_server, stop_server, write

TOKEN = "test-admin-token-0123456789"


@pytest.fixture
def admin_server(docs_copy, tmp_path):
    server = start_server(docs_copy, tmp_path / "index", env={"SEMSEARCH_ADMIN_TOKEN": TOKEN})
    yield server
    stop_server(server)


def _wait_for_job(client, seconds=300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = client.get("/index/status").json()
        if status["state"] != "running":
            return status
        time.sleep(0.2)
    raise AssertionError("index job did not finish in time")


@pytest.mark.slow
def test_reindex_requires_the_token_runs_once_and_swaps_without_failed_searches(admin_server, docs_copy):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=admin_server.url, timeout=60) as client:
        assert client.post("/index").status_code == 401
        assert client.post("/index", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.post("/index", headers={"Authorization": TOKEN}).status_code == 401
        assert client.get("/index/status").json()["state"] == "idle"
        versions = [client.get("/health").json()["index_version"]]
        failures: list[int] = []
        searches: list[int] = []
        stop = threading.Event()

        def keep_searching():
            with httpx.Client(base_url=admin_server.url, timeout=60) as searcher:
                while not stop.is_set() and len(searches) < 5000:
                    response = searcher.get("/search", params={"q": "Black Sea fleet", "k": 3})
                    searches.append(response.status_code)
                    if response.status_code != 200 or len(response.json()["results"]) != 3:
                        failures.append(response.status_code)

        worker = threading.Thread(target=keep_searching)
        worker.start()
        try:
            for rebuild in range(3):
                write(
                    docs_copy,
                    f"fresh{rebuild}.md",
                    f"# Fresh {rebuild}\n\nThe zeppelin treaty number {rebuild} was signed by the walrus council.",
                )
                if rebuild == 0:
                    shutil.copytree(SEEDS, docs_copy / "copies")
                started = client.post("/index", headers=auth)
                assert started.status_code == 202 and started.json()["state"] == "running"
                if rebuild == 0:
                    second = client.post("/index", headers=auth)
                    assert second.status_code == 409 and "running" in second.json()["detail"]
                status = _wait_for_job(client)
                assert status["state"] == "succeeded", status
                assert status["job_id"] == started.json()["job_id"]
                assert f"fresh{rebuild}.md" in status["report"]["added"]
                versions.append(client.get("/health").json()["index_version"])
        finally:
            stop.set()
            worker.join(timeout=120)
        assert len(set(versions)) == 4, "each rebuild swapped in a new version"
        assert len(searches) > 10 and failures == []
        top = client.get("/search", params={"q": "zeppelin treaty number 2 walrus council", "k": 3}).json()["results"]
        assert "fresh2.md" in {hit["doc_id"] for hit in top}


def test_reindex_is_disabled_without_a_configured_token(live_server):
    response = httpx.post(f"{live_server.url}/index", headers={"Authorization": "Bearer anything"}, timeout=30)
    assert response.status_code == 403 and "SEMSEARCH_ADMIN_TOKEN" in response.json()["detail"]


@pytest.mark.slow
def test_searches_during_an_index_job_on_a_server_started_on_a_built_index(docs_copy, tmp_path, embedder):
    """The ``bench --during-index`` path: a server warmed up on an index built beforehand, then 40 new
    documents indexed while two clients search. Warm-up once read the SQLite store ahead and, closing its
    descriptor, dropped SQLite's own locks: the job failed and searches answered 500 ("disk I/O error")."""
    from benchmarks.speed import search_during_index
    from indexer.build import build_index
    from indexer.chunking import ChunkingParams
    from search.settings import DEFAULT_MODEL, get_settings

    settings = get_settings()  # the server's own chunking, so its job updates this index in place
    chunking = ChunkingParams(settings.chunk_tokens, settings.overlap_sentences)
    build_index(docs_copy, tmp_path / "index", DEFAULT_MODEL, chunking, embedder=embedder)
    during = search_during_index(docs_copy, tmp_path / "index", 40)
    assert during.job_state == "succeeded" and during.embedded_passages == 40
    assert during.latency.requests > 10 and during.latency.errors == 0
