"""The JSON API against a real uvicorn server on 127.0.0.1 with the real model."""

import httpx
import pytest

from tests.conftest import XSS_DOCUMENT

QUESTION = "What happened to Russia's Black Sea fleet?"


@pytest.fixture(scope="module")
def client(live_server):
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        yield http


def test_search_result_shape_offsets_and_highlights(client):
    response = client.get("/search", params={"q": QUESTION, "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["query"] == QUESTION and body["k"] == 5 and body["offset"] == 0
    assert body["total"] >= 5 and body["took_ms"] >= 0 and len(body["results"]) == 5
    documents: dict[str, str] = {}
    for rank, result in enumerate(body["results"], start=1):
        assert result["rank"] == rank
        assert {"score", "doc_id", "title", "date", "passage_id", "text", "start", "end", "highlights", "scores"} <= set(result)
        doc_id = result["doc_id"]
        documents.setdefault(doc_id, client.get(f"/documents/{doc_id}").json()["text"])
        assert documents[doc_id][result["start"] : result["end"]] == result["text"]
        assert result["highlights"], "every passage gets at least one highlighted sentence"
        for span in result["highlights"]:
            assert 0 <= span["start"] < span["end"] <= len(result["text"])
    top = body["results"][0]
    marked = [top["text"][s["start"] : s["end"]] for s in top["highlights"]]
    assert any("Black Sea fleet" in sentence for sentence in marked)


def test_post_equals_get(client):
    got = client.get("/search", params={"q": QUESTION, "k": 3}).json()["results"]
    posted = client.post("/search", json={"q": QUESTION, "k": 3}).json()["results"]
    assert [r["passage_id"] for r in got] == [r["passage_id"] for r in posted]


def test_paging_continues_the_ranking(client):
    first = client.get("/search", params={"q": QUESTION, "k": 6}).json()["results"]
    second = client.get("/search", params={"q": QUESTION, "k": 3, "offset": 3}).json()["results"]
    assert [r["passage_id"] for r in second] == [r["passage_id"] for r in first[3:]]
    assert [r["rank"] for r in second] == [4, 5, 6]


def test_doc_id_filter_applies_before_the_cut(client):
    wanted = ["004_7d52d8e344289e91.txt", "xss.md"]
    body = client.get("/search", params={"q": QUESTION, "k": 10, "doc_id": wanted}).json()
    assert len(body["results"]) == 10, "a filter never turns a full page into an empty one"
    assert {r["doc_id"] for r in body["results"]} <= set(wanted)


def test_date_filters(client):
    body = client.post("/search", json={"q": "peace negotiations", "k": 10, "date_from": "2025-01-01"}).json()
    assert body["results"] and all(r["date"] >= "2025-01-01" for r in body["results"])
    body = client.post("/search", json={"q": "peace negotiations", "k": 10, "date_to": "2024-01-01"}).json()
    assert body["results"] and all(r["date"] <= "2024-01-01" for r in body["results"])
    body = client.post("/search", json={"q": "peace", "date_from": "2030-01-01"}).json()
    assert body["results"] == [] and body["total"] == 0


def test_group_by_document_and_min_score(client):
    grouped = client.get("/search", params={"q": QUESTION, "k": 10, "group_by": "document"}).json()["results"]
    doc_ids = [r["doc_id"] for r in grouped]
    assert len(doc_ids) == len(set(doc_ids)) == 6
    floor = client.get("/search", params={"q": QUESTION, "k": 100}).json()["results"][2]["score"]
    limited = client.get("/search", params={"q": QUESTION, "k": 100, "min_score": floor}).json()["results"]
    assert len(limited) >= 3 and all(r["score"] >= floor for r in limited)


def test_documents_listing_and_full_text(client, live_docs):
    listing = client.get("/documents").json()
    assert {d["doc_id"] for d in listing} == {p.name for p in live_docs.iterdir()}
    for entry in listing:
        assert entry["length"] > 0 and entry["passages"] >= 1
    document = client.get("/documents/xss.md").json()
    assert document["text"] == XSS_DOCUMENT and document["title"] == "Hostile payload sample"


@pytest.mark.parametrize(
    "path",
    [
        "/documents/nope.txt",
        "/documents/../seeds/000_2ff6379e6f7d78c5.txt",
        "/documents/%2e%2e%2fpyproject.toml",
        "/documents//etc/passwd",
        "/documents/%2Fetc%2Fpasswd",
        "/documents/..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_unknown_and_escaping_document_ids_are_404(client, path):
    response = client.get(path)
    assert response.status_code == 404 and "detail" in response.json()


def test_health_reports_ready_with_counts(client):
    body = client.get("/health").json()
    assert body["status"] == "ready" and body["documents"] == 6 and body["passages"] > 100
    assert body["model"] == "all-MiniLM-L6-v2" and body["index_version"].startswith("i-")
    assert body["encoder"] in ("onnx", "onnx-int8", "torch") and body["backend"] == "local"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/search", {"params": {"q": ""}}, 422),
        ("get", "/search", {"params": {"q": "   "}}, 422),
        ("get", "/search", {}, 422),
        ("get", "/search", {"params": {"q": "x" * 10_001}}, 422),
        ("get", "/search", {"params": {"q": "x", "k": 0}}, 422),
        ("get", "/search", {"params": {"q": "x", "k": 101}}, 422),
        ("get", "/search", {"params": {"q": "x", "k": "abc"}}, 422),
        ("get", "/search", {"params": {"q": "x", "offset": -1}}, 422),
        ("get", "/search", {"params": {"q": "x", "date_from": "yesterday"}}, 422),
        ("get", "/search", {"params": {"q": "x", "group_by": "sentence"}}, 422),
        ("post", "/search", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("post", "/search", {"json": {"q": "x", "unexpected": 1}}, 422),
        ("post", "/search", {"content": b"x" * 200_000, "headers": {"content-type": "application/json"}}, 413),
        ("get", "/documents/missing.md", {}, 404),
        ("post", "/index", {}, 403),
        ("get", "/no-such-endpoint", {}, 404),
        ("delete", "/search", {}, 405),
    ],
)
def test_error_cases_return_json_detail(client, method, path, kwargs, status):
    response = client.request(method.upper(), path, **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"]


def test_page_and_static_files_are_served_with_security_headers(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/search"]
    assert "access-control-allow-origin" not in client.get("/search", params={"q": "x"}, headers={"Origin": "http://evil.example"}).headers


def test_facets_count_documents_and_type_and_folder_filter(client):
    body = client.get("/search", params={"q": QUESTION, "k": 3, "facets": "type,folder,year"}).json()
    assert set(body["facets"]) == {"type", "folder", "year"}
    documents = {summary["doc_id"]: summary for summary in client.get("/documents").json()}
    assert sum(body["facets"]["type"].values()) <= len(documents) and set(body["facets"]["type"]) <= {"txt", "md"}
    assert body["facets"]["folder"] == {}, "the seeds lie at the top of the folder"
    posted = client.post("/search", json={"q": QUESTION, "k": 3, "facets": "type,folder,year"}).json()
    assert posted["facets"] == body["facets"]
    assert client.get("/search", params={"q": QUESTION}).json()["facets"] == {}
    only_md = client.get("/search", params={"q": QUESTION, "type": "md"}).json()
    assert only_md["results"] and {r["doc_id"] for r in only_md["results"]} == {"xss.md"}
    assert client.get("/search", params={"q": QUESTION, "folder": "nowhere"}).json()["results"] == []
    for params in ({"facets": "type,colour"}, {"type": "p.df"}, {"folder": "/notes"}):
        assert client.get("/search", params={"q": QUESTION, **params}).status_code == 422, params


def test_misspelled_words_are_corrected_and_said_so(client):
    body = client.get("/search", params={"q": "Istambul acords", "k": 3, "mode": "keyword", "explain": "true"}).json()
    assert body["corrections"] == [{"from": "Istambul", "to": "istanbul"}, {"from": "acords", "to": "accords"}]
    assert body["searched"] == "Istanbul accords" and body["query"] == "Istambul acords"
    assert any("Istanbul" in result["text"] for result in body["results"])
    assert body["results"][0]["explain"]["corrections"] == body["corrections"]
    plain = client.post("/search", json={"q": "Istanbul accords", "k": 3}).json()
    assert plain["corrections"] == [] and plain["searched"] == "Istanbul accords"
