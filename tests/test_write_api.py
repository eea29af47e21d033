"""``PUT``/``DELETE /documents/{doc_id}`` on a real server: searchable on return, admin token, ids that must not escape."""

import http.client
import json
import threading
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import SEEDS, start_server, stop_server

TOKEN = "test-admin-token-writes-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_FILE_BYTES = 100_000


@pytest.fixture(scope="module")
def small_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by this module's tests, which each write documents of their own names."""
    folder = tmp_path_factory.mktemp("write-api") / "docs"
    folder.mkdir()
    for seed in sorted(SEEDS.iterdir())[:2]:
        (folder / seed.name).write_bytes(seed.read_bytes())
    return folder


@pytest.fixture(scope="module")
def writer(small_docs: Path):
    """Uploads allowed up to 100 kB while other bodies stay at 2 kB: the two limits are separate."""
    env = {"SEMSEARCH_ADMIN_TOKEN": TOKEN, "SEMSEARCH_MAX_FILE_BYTES": str(MAX_FILE_BYTES), "SEMSEARCH_MAX_BODY_BYTES": "2048"}
    server = start_server(small_docs, small_docs.parent / "index", env=env)
    yield server
    stop_server(server)


def _ids(client: httpx.Client, query: str, mode: str = "keyword") -> list[str]:
    response = client.get("/search", params={"q": query, "k": 100, "mode": mode})
    assert response.status_code == 200, response.text
    return [hit["doc_id"] for hit in response.json()["results"]]


def test_put_creates_then_replaces_and_delete_removes_each_searchable_on_return(writer, small_docs):
    with httpx.Client(base_url=writer.url, timeout=120) as client:
        created = client.put(
            "/documents/notes/deep/walrus.md", content=b"# Walrus\n\nThe quixotic walrus ledger lists herring.\n", headers=AUTH
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["doc_id"] == "notes/deep/walrus.md" and body["state"] == "searchable" and body["passages"] >= 1
        assert body["took_ms"] > 0
        assert (small_docs / "notes" / "deep" / "walrus.md").is_file()
        assert "notes/deep/walrus.md" in _ids(client, "quixotic walrus ledger")

        replaced = client.put("/documents/notes/deep/walrus.md", content=b"# Walrus\n\nNow the zanzibar pelican almanac.\n", headers=AUTH)
        assert replaced.status_code == 200 and replaced.json()["state"] == "searchable"
        assert "notes/deep/walrus.md" in _ids(client, "zanzibar pelican almanac")
        assert "notes/deep/walrus.md" not in _ids(client, "quixotic ledger")

        assert client.delete("/documents/notes/deep/walrus.md", headers=AUTH).status_code == 204
        assert not (small_docs / "notes" / "deep" / "walrus.md").exists()
        assert "notes/deep/walrus.md" not in _ids(client, "zanzibar pelican almanac walrus", mode="hybrid")
        again = client.delete("/documents/notes/deep/walrus.md", headers=AUTH)
        assert again.status_code == 404 and "walrus.md" in again.json()["detail"]


def test_delete_removes_a_document_already_gone_from_the_folder(writer, small_docs):
    doc_id = "gone-already.md"
    with httpx.Client(base_url=writer.url, timeout=120) as client:
        assert client.put(f"/documents/{doc_id}", content=b"# Gone\n\nSoon gone.\n", headers=AUTH).status_code == 201
        (small_docs / doc_id).unlink()
        assert client.delete(f"/documents/{doc_id}", headers=AUTH).status_code == 204
        assert client.get(f"/documents/{doc_id}").status_code == 404


def test_writes_need_the_admin_token(writer, live_server, small_docs):
    before = sorted(small_docs.rglob("*"))
    with httpx.Client(base_url=writer.url, timeout=60) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            assert client.put("/documents/x.md", content=b"text", headers=headers).status_code == 401
            assert client.delete("/documents/x.md", headers=headers).status_code == 401
    disabled = httpx.put(f"{live_server.url}/documents/x.md", content=b"text", headers=AUTH, timeout=60)
    assert disabled.status_code == 403 and "SEMSEARCH_ADMIN_TOKEN" in disabled.json()["detail"]
    assert sorted(small_docs.rglob("*")) == before


@pytest.mark.parametrize(
    "raw_path",
    [
        "/documents/../x.txt",
        "/documents//etc/passwd",
        "/documents/a/../../b.txt",
        "/documents/%2e%2e/x.txt",
        "/documents/a/%2E%2E/%2e%2e/b.txt",
        "/documents/.hidden/x.txt",
        "/documents/x.exe",
        "/documents/a%5C..%5Cx.txt",
        "/documents/a%00.txt",
        "/documents/" + "a" * 256 + ".txt",
    ],
)
def test_ids_that_could_escape_the_folder_are_422_json_and_write_nothing(writer, small_docs, raw_path):
    outside = small_docs.parent
    before = sorted(outside.rglob("*"))
    status, body = _raw_put(writer.url, raw_path, b"# Escape\n\nattempt\n")
    assert status == 422, (status, body)
    assert isinstance(body["detail"], str) and body["detail"]
    assert sorted(outside.rglob("*")) == before


def _raw_put(url: str, raw_path: str, body: bytes) -> tuple[int, dict]:
    """http.client sends the path exactly as given; httpx would resolve ``..`` before it left the client."""
    parts = urlsplit(url)
    assert parts.hostname is not None, url
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request("PUT", raw_path, body=body, headers=AUTH)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_upload_limit_is_the_file_limit_not_the_body_limit(writer, small_docs):
    with httpx.Client(base_url=writer.url, timeout=120) as client:
        words = " ".join(f"word{i}" for i in range(6000)).encode()
        assert 2048 < len(words) <= MAX_FILE_BYTES
        assert client.put("/documents/big.txt", content=words, headers=AUTH).status_code == 201
        too_big = client.put("/documents/huge.txt", content=b"x " * MAX_FILE_BYTES, headers=AUTH)
        assert too_big.status_code == 413 and str(MAX_FILE_BYTES) in too_big.json()["detail"]
        assert client.post("/search", json={"query": "x" * 3000}).status_code == 413
    assert not (small_docs / "huge.txt").exists()


@pytest.mark.parametrize(
    "doc_id, body",
    [("broken.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<garbage"), ("binary.txt", b"\x00\x01\x02" * 100), ("empty.md", b"  \n")],
)
def test_a_body_the_reader_cannot_read_is_422_and_leaves_no_file(writer, small_docs, doc_id, body):
    before = sorted(small_docs.rglob("*"))
    response = httpx.put(f"{writer.url}/documents/{doc_id}", content=body, headers=AUTH, timeout=60)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert sorted(small_docs.rglob("*")) == before


def test_concurrent_puts_are_serialized_and_all_searchable(writer):
    results: dict[int, httpx.Response] = {}

    def put(number: int) -> None:
        content = f"# Note {number}\n\nThe marmalade comet{number} registry.\n".encode()
        results[number] = httpx.put(f"{writer.url}/documents/concurrent{number}.md", content=content, headers=AUTH, timeout=120)

    threads = [threading.Thread(target=put, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert sorted(response.status_code for response in results.values()) == [201] * 4
    with httpx.Client(base_url=writer.url, timeout=60) as client:
        for number in range(4):
            assert f"concurrent{number}.md" in _ids(client, f"marmalade comet{number} registry")
