"""Bad requests against a real server: each gets a normal 200 or a JSON 4xx, never a 5xx, and the server lives on."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

MB = 1_000_000
LIMIT = 64_000  # SEMSEARCH_MAX_BODY_BYTES default
SEARCH_FIELDS = {"query", "k", "offset", "total", "took_ms", "mode", "notices", "searched", "corrections", "facets", "results"}
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Hostile:
    """One request, with the target sent byte for byte (``%zz`` stays ``%zz``) and the status it must get."""

    name: str
    method: str
    target: str
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    # httpx refuses URL parts over 64 KB and resolves "../"; such targets go out through http.client instead.
    exact: bool = False


def _post(name: str, body: bytes, status: int, headers: dict[str, str] = JSON, **extra) -> Hostile:
    return Hostile(name, "POST", "/search", status, body=body, headers=headers, **extra)


def _body(payload: object) -> bytes:
    return json.dumps(payload).encode()


HOSTILE = [
    # empty and whitespace queries
    Hostile("empty q", "GET", "/search?q=", 422),
    Hostile("q without value", "GET", "/search?q", 422),
    Hostile("no q at all", "GET", "/search", 422),
    Hostile("whitespace q", "GET", "/search?q=%20%09%0A%E3%80%80", 422),
    _post("whitespace q in JSON", _body({"q": " \t\n\u2003"}), 422),
    Hostile("only separators", "GET", "/search?=&&&==", 422),
    # a 1 MB query, in the request line and in a body
    Hostile("1 MB query string", "GET", "/search?q=" + "x" * MB, 422, exact=True),
    _post("1 MB JSON body", _body({"q": "x" * MB}), 413),
    # NUL, control characters, broken percent-encoding, emoji, right-to-left text
    Hostile("NUL in q", "GET", "/search?q=war%00peace", 200),
    Hostile("control characters in q", "GET", "/search?q=fleet%01%02%1B%5B31m%7F%08", 200),
    _post("NUL and controls in JSON", _body({"q": "fleet\u0000\u0007\u001b[2J"}), 200),
    Hostile("%zz", "GET", "/search?q=%zz", 200),
    Hostile("lone %", "GET", "/search?q=%", 200),
    Hostile("truncated UTF-8 %e2%82", "GET", "/search?q=%e2%82", 200),
    Hostile("overlong UTF-8", "GET", "/search?q=%c0%af%c0%ae", 200),
    Hostile("broken escape in k", "GET", "/search?q=x&k=%zz", 422),
    Hostile("emoji", "GET", "/search?q=%F0%9F%9A%A2%F0%9F%92%A5%F0%9F%87%BA%F0%9F%87%A6", 200),
    Hostile("right-to-left text", "GET", "/search?q=%D8%A7%D9%84%D8%A3%D8%B3%D8%B7%D9%88%D9%84%E2%80%AE%D7%A9%D7%9C%D7%95%D7%9D", 200),
    # k, offset, mode, min_score out of range or of the wrong type
    Hostile("k=0", "GET", "/search?q=x&k=0", 422),
    Hostile("k=-1", "GET", "/search?q=x&k=-1", 422),
    Hostile("k=10^9", "GET", "/search?q=x&k=1000000000", 422),
    Hostile("k=abc", "GET", "/search?q=x&k=abc", 422),
    Hostile("k=1.5", "GET", "/search?q=x&k=1.5", 422),
    Hostile("k empty", "GET", "/search?q=x&k=", 422),
    Hostile("offset=10^30", "GET", "/search?q=x&offset=1000000000000000000000000000000", 422),
    Hostile("offset at its maximum, past every result", "GET", "/search?q=x&offset=10000", 200),
    Hostile("unknown mode", "GET", "/search?q=x&mode=fuzzy", 422),
    _post("mode in capitals", _body({"q": "x", "mode": "HYBRID"}), 422),
    Hostile("min_score=nan", "GET", "/search?q=x&min_score=nan", 422),
    Hostile("min_score=-inf", "GET", "/search?q=x&min_score=-inf", 422),
    _post("k as true", _body({"q": "x", "k": True}), 422),
    _post("k as a string", _body({"q": "x", "k": "5"}), 422),
    _post("k with 5000 digits", b'{"q": "x", "k": ' + b"9" * 5000 + b"}", 400),
    # bodies that are not a JSON object, or not JSON at all
    _post("malformed JSON", b'{"q": "x",', 422),
    _post("JSON list", _body(["q", "x"]), 422),
    _post("JSON string", _body("x"), 422),
    _post("JSON null", b"null", 422),
    _post("empty body", b"", 422),
    _post("not UTF-8", b'{"q": "\xc3\x28"}', 400),
    _post("byte order mark, then ASCII", b'\xff\xfe{"q": "x"}', 422),
    _post("nested 20,000 deep", b"[" * 20_000 + b"]" * 20_000, 400),
    _post("JSON sent as text/plain", _body({"q": "x"}), 422, headers={"content-type": "text/plain"}),
    _post("form instead of JSON", b"q=x", 422, headers={"content-type": "application/x-www-form-urlencoded"}),
    # bodies over the limit, declared or streamed
    _post("body just over the limit", b" " * (LIMIT + 1), 413),
    _post("chunked body over the limit", b"x" * (4 * LIMIT), 413, chunked=True),
    # repeated, unknown and ill-formed parameters
    Hostile("repeated q", "GET", "/search?q=war&q=peace", 200),
    Hostile("repeated k", "GET", "/search?q=x&k=1&k=2", 200),
    Hostile("unknown parameter", "GET", "/search?q=x&debug=1", 422),
    _post("unknown JSON field", _body({"q": "x", "__proto__": {"admin": True}}), 422),
    Hostile("date_from not a date", "GET", "/search?q=x&date_from=yesterday", 422),
    Hostile("date_to 30 February", "GET", "/search?q=x&date_to=2025-02-30", 422),
    Hostile("date_from without dashes", "GET", "/search?q=x&date_from=20250131", 422),
    _post("date_to as a number", _body({"q": "x", "date_to": 0}), 422),
    Hostile("group_by sentence", "GET", "/search?q=x&group_by=sentence", 422),
    Hostile("doc_id with ../", "GET", "/search?q=x&doc_id=../../../etc/passwd", 200),
    Hostile("1001 doc_ids", "GET", "/search?q=x" + "&doc_id=a.txt" * 1001, 422),
    Hostile("document id with ../", "GET", "/documents/../../../etc/passwd", 404, exact=True),
    Hostile("document id %2e%2e%2f", "GET", "/documents/%2e%2e%2f%2e%2e%2fpyproject.toml", 404),
    # very long header values
    Hostile("100 KB header", "GET", "/search?q=x", 200, headers={"x-padding": "a" * 100_000}),
    Hostile("1 MB cookie", "GET", "/search?q=x", 200, headers={"cookie": "session=" + "b" * MB}),
    Hostile("100 KB bearer token", "POST", "/index", 403, headers={"authorization": "Bearer " + "c" * 100_000}),
    # methods the API does not serve
    Hostile("PATCH /search", "PATCH", "/search", 405),
    Hostile("TRACE /", "TRACE", "/", 405),
]


def send(client: httpx.Client, base_url: str, case: Hostile) -> httpx.Response:
    if case.exact:
        return send_exact(base_url, case.method, case.target, case.headers, case.body)
    url = httpx.URL(base_url).copy_with(raw_path=case.target.encode("ascii"))
    content: bytes | Iterator[bytes] | None = case.body
    if case.chunked and case.body is not None:
        content = (case.body[i : i + 8192] for i in range(0, len(case.body), 8192))  # no Content-Length
    return client.request(case.method, url, headers=case.headers, content=content)


def send_exact(base_url: str, method: str, target: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> httpx.Response:
    """Send ``target`` exactly as written, e.g. with a literal ``../`` or a megabyte long."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None, base_url
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return httpx.Response(response.status, headers=response.getheaders(), content=response.read())
    finally:
        connection.close()


def _problem(case: Hostile, response: httpx.Response) -> str | None:
    """What is wrong with the answer to ``case``, or None."""
    if response.status_code != case.status:
        return f"got {response.status_code}, expected {case.status}: {response.text[:200]!r}"
    if not response.headers.get("content-type", "").startswith("application/json"):
        return f"{response.status_code} is not JSON: {response.headers.get('content-type')}"
    body = response.json()
    if response.status_code == 200:
        if not isinstance(body, dict) or set(body) != SEARCH_FIELDS or not isinstance(body["results"], list):
            return f"not a search response: {response.text[:200]!r}"
    elif not (isinstance(body, dict) and body.get("detail")):
        return f"no detail: {response.text[:200]!r}"
    return None


def test_hostile_requests_get_200_or_json_4xx_and_the_server_lives_on(live_server):
    outcomes: Counter[int] = Counter()
    problems = []
    with httpx.Client(timeout=60) as client:
        for case in HOSTILE:
            response = send(client, live_server.url, case)
            outcomes[response.status_code] += 1
            if problem := _problem(case, response):
                problems.append(f"{case.name}: {problem}")
        after = client.get(f"{live_server.url}/search", params={"q": "What happened to Russia's Black Sea fleet?"})
    tally = ", ".join(f"{count} x {status}" for status, count in sorted(outcomes.items()))
    print(f"{len(HOSTILE)} hostile requests: {tally}")
    assert len(HOSTILE) >= 30
    assert not problems, "\n".join(problems)
    assert after.status_code == 200 and len(after.json()["results"]) == 10
