"""Security of the HTTP surface on real servers: the admin token, CORS, response headers, paths, body limits."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from benchmarks.server_process import ServerProcess
from tests.conftest import private_index_copy, start_server, stop_server
from tests.test_hostile_requests import send_exact

ALLOWED_ORIGIN = "http://allowed.example"
LIMIT = 64_000  # SEMSEARCH_MAX_BODY_BYTES default


@pytest.fixture(scope="module")
def client(live_server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def cors_server(live_server, tmp_path_factory) -> Iterator[ServerProcess]:
    """One allowed origin, and an admin token that is set but empty."""
    env = {"SEMSEARCH_CORS_ORIGINS": f'["{ALLOWED_ORIGIN}"]', "SEMSEARCH_ADMIN_TOKEN": ""}
    server = start_server(live_server.docs, private_index_copy(live_server, tmp_path_factory.mktemp("cors")), env=env)
    yield server
    stop_server(server)


# --- admin token ---


def test_admin_token_is_checked_and_never_logged_or_echoed(live_server, tmp_path):
    token = "st-" + secrets.token_hex(24)
    server = start_server(live_server.docs, private_index_copy(live_server, tmp_path), env={"SEMSEARCH_ADMIN_TOKEN": token})
    bodies = []
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            wrong = {
                "missing": {},
                "wrong token": {"Authorization": "Bearer not-the-token"},
                "token plus a character": {"Authorization": f"Bearer {token}x"},
                "token minus a character": {"Authorization": f"Bearer {token[:-1]}"},
                "other scheme": {"Authorization": f"Basic {token}"},
                "no scheme": {"Authorization": token},
                "scheme without token": {"Authorization": "Bearer"},
            }
            for name, headers in wrong.items():
                response = http.post("/index", headers=headers)
                bodies.append(response.text)
                assert response.status_code == 401, name
                assert response.headers["www-authenticate"] == "Bearer", name
                assert response.json()["detail"], name
            accepted = http.post("/index", headers={"Authorization": f"Bearer {token}"})
            bodies.append(accepted.text)
            assert accepted.status_code == 202 and accepted.json()["state"] == "running"
            bodies.append(_wait_for_job(http))
            bodies.append(http.get("/search", params={"q": token, "k": "abc"}).text)
        bodies.append(_send_malformed(server.url, token))
    finally:
        log = stop_server(server)
    assert "Invalid HTTP request received" in log, "the log was captured"
    assert token not in log
    assert not [body for body in bodies if token in body]


def _send_malformed(base_url: str, token: str) -> str:
    """A request with the token that uvicorn refuses itself (a header line without a colon), logging a warning."""
    parts = urlsplit(base_url)
    request = f"POST /index HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nno colon here\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as raw:
        raw.sendall(request.encode())
        return raw.recv(65536).decode(errors="replace")


def _wait_for_job(http: httpx.Client, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get("/index/status")
        if status.json()["state"] != "running":
            assert status.json()["state"] == "succeeded", status.text
            return status.text
        time.sleep(0.5)
    raise AssertionError("the index job did not finish")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer anything"}, {"Authorization": "Bearer"}])
def test_index_updates_are_off_without_a_token(live_server, cors_server, headers):
    for base in (live_server.url, cors_server.url):  # token unset, token set to ""
        response = httpx.post(f"{base}/index", headers=headers, timeout=60)
        assert response.status_code == 403 and "SEMSEARCH_ADMIN_TOKEN" in response.json()["detail"]


# --- CORS ---


def _cors_headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-allow")}


def _preflight(base_url: str, origin: str) -> httpx.Response:
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    return httpx.options(f"{base_url}/search", headers=headers, timeout=60)


@pytest.mark.parametrize("origin", [ALLOWED_ORIGIN, "http://evil.example", "null"])
def test_no_cors_by_default(live_server, origin):
    simple = httpx.get(f"{live_server.url}/search", params={"q": "fleet"}, headers={"Origin": origin}, timeout=60)
    assert simple.status_code == 200 and _cors_headers(simple) == {}
    assert _cors_headers(_preflight(live_server.url, origin)) == {}


def test_configured_origin_is_the_only_one_allowed(cors_server):
    simple = httpx.get(f"{cors_server.url}/search", params={"q": "fleet"}, headers={"Origin": ALLOWED_ORIGIN}, timeout=60)
    assert simple.status_code == 200 and simple.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    preflight = _preflight(cors_server.url, ALLOWED_ORIGIN)
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "null",
        "https://allowed.example",
        "http://allowed.example:8080",
        "http://allowed.example.evil.example",
        "http://evil.example/http://allowed.example",
    ],
)
def test_other_origins_get_no_cors_headers(cors_server, origin):
    simple = httpx.get(f"{cors_server.url}/search", params={"q": "fleet"}, headers={"Origin": origin}, timeout=60)
    assert simple.status_code == 200 and "access-control-allow-origin" not in simple.headers
    preflight = _preflight(cors_server.url, origin)
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.headers.get("access-control-allow-origin") != "*"


# --- response headers ---


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (directive.split() for directive in policy.split(";") if directive.strip())
    return {name: sources for name, *sources in parts}


def test_page_has_a_strict_content_security_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["x-content-type-options"] == "nosniff"
    policy = _directives(page.headers["content-security-policy"])
    for directive in ("script-src", "default-src"):
        assert "'unsafe-inline'" not in policy[directive] and "'unsafe-eval'" not in policy[directive]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/search", {"params": {"q": "fleet"}}, 200),
        ("POST", "/search", {"json": {"q": "fleet"}}, 200),
        ("GET", "/health", {}, 200),
        ("GET", "/documents", {}, 200),
        ("GET", "/openapi.json", {}, 200),
        ("GET", "/documents/missing.txt", {}, 404),
        ("GET", "/search", {"params": {"q": ""}}, 422),
        ("DELETE", "/search", {}, 405),
        ("POST", "/search", {"content": b"x" * (LIMIT + 1)}, 413),
    ],
)
def test_json_responses_carry_nosniff(client, method, path, kwargs, status):
    response = client.request(method, path, **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-content-type-options"] == "nosniff"


# --- document ids are never paths ---


@pytest.mark.parametrize(
    "target",
    [
        "/documents/../pyproject.toml",
        "/documents/../../../../../../etc/passwd",
        "/documents//etc/passwd",
        "/documents/%2Fetc%2Fpasswd",
        "/documents/%2e%2e%2fpyproject.toml",
        "/documents/%2E%2E%2F%2E%2E%2Fpyproject.toml",
        "/documents/..%2fpyproject.toml",
        "/documents/..%2F..%2F..%2Fetc%2Fpasswd",
        "/documents/%252e%252e%252fpyproject.toml",
        "/documents/..%252f..%252fetc%252fpasswd",
        "/documents/%2e%2e/%2e%2e/etc/passwd",
        "/documents/..%5c..%5cpyproject.toml",
        "/documents/%c0%ae%c0%ae%c0%afpyproject.toml",
        "/documents/./000_2ff6379e6f7d78c5.txt",
        "/documents/file:///etc/passwd",
        "/documents/%00../pyproject.toml",
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2fpyproject.toml",
    ],
)
def test_path_traversal_is_404_json(live_server, target):
    response = send_exact(live_server.url, "GET", target)
    assert response.status_code == 404, response.text[:200]
    assert response.headers["content-type"].startswith("application/json") and response.json()["detail"]
    assert "[build-system]" not in response.text and "root:" not in response.text


# --- body limits ---


def test_bodies_over_the_limit_get_413_with_or_without_content_length(client):
    padded = b'{"q": "fleet"}' + b" " * (LIMIT - 14)
    assert client.post("/search", content=padded, headers={"content-type": "application/json"}).status_code == 200
    declared = client.post("/search", content=padded + b" ", headers={"content-type": "application/json"})
    streamed = client.post(
        "/search",
        content=(b" " * 4096 for _ in range(4 * LIMIT // 4096)),
        headers={"content-type": "application/json"},
    )
    assert "content-length" in declared.request.headers
    assert streamed.request.headers["transfer-encoding"] == "chunked" and "content-length" not in streamed.request.headers
    for response in (declared, streamed):
        assert response.status_code == 413 and "limit" in response.json()["detail"]


# --- search token ---

READ_ROUTES = [
    ("GET", "/search", {"params": {"q": "fleet"}}),
    ("POST", "/search", {"json": {"q": "fleet"}}),
    ("GET", "/search/rules", {}),
    ("GET", "/documents", {}),
    ("GET", "/documents/004_7d52d8e344289e91.txt", {}),
]
OPEN_ROUTES = ["/health", "/metrics", "/", "/static/app.js"]


@pytest.fixture(scope="module")
def read_token() -> str:
    return "rt-" + secrets.token_hex(24)


@pytest.fixture(scope="module")
def token_server(live_server, tmp_path_factory, read_token) -> Iterator[ServerProcess]:
    """Reads behind SEMSEARCH_SEARCH_TOKEN, and a different admin token."""
    env = {"SEMSEARCH_SEARCH_TOKEN": read_token, "SEMSEARCH_ADMIN_TOKEN": "admin-" + read_token}
    server = start_server(live_server.docs, private_index_copy(live_server, tmp_path_factory.mktemp("token")), env=env)
    yield server
    stop_server(server)


@pytest.mark.parametrize(("method", "path", "kwargs"), READ_ROUTES)
def test_reads_need_the_search_token(token_server, read_token, method, path, kwargs):
    def call(headers: dict[str, str]) -> httpx.Response:
        return httpx.request(method, f"{token_server.url}{path}", headers=headers, timeout=60, **kwargs)

    missing = [call({}), call({"Authorization": "Bearer"}), call({"Authorization": f"Basic {read_token}"})]
    for response in missing:
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"] == "a search token is required"
    for wrong in ("not-the-token", f"{read_token}x", read_token[:-1], "admin-" + read_token):
        response = call({"Authorization": f"Bearer {wrong}"})
        assert response.status_code == 403 and response.json()["detail"] == "the search token is not valid"
    right = call({"Authorization": f"Bearer {read_token}"})
    assert right.status_code == 200, right.text
    assert read_token not in right.text


def test_health_metrics_and_the_page_stay_open_with_a_search_token(token_server):
    for path in OPEN_ROUTES:
        assert httpx.get(f"{token_server.url}{path}", timeout=60).status_code == 200, path


def test_the_search_token_is_not_an_admin_token(token_server, read_token):
    response = httpx.post(f"{token_server.url}/index", headers={"Authorization": f"Bearer {read_token}"}, timeout=60)
    assert response.status_code == 401


def test_no_read_is_answered_without_the_token(token_server):
    """Every GET route of the API, by its OpenAPI entry, answers a request without a token with 401, except the open ones."""
    spec = httpx.get(f"{token_server.url}/openapi.json", timeout=60).json()
    answered = []
    for path, operations in spec["paths"].items():
        if "get" not in operations or path in OPEN_ROUTES:
            continue
        concrete = path.replace("{doc_id}", "004_7d52d8e344289e91.txt")
        response = httpx.get(f"{token_server.url}{concrete}", params={"q": "fleet"}, timeout=60)
        if response.status_code != 401:
            answered.append((path, response.status_code))
    assert answered == []


@pytest.mark.parametrize(("method", "path", "kwargs"), READ_ROUTES)
def test_reads_are_open_without_a_search_token(client, method, path, kwargs):
    assert client.request(method, path, **kwargs).status_code == 200
