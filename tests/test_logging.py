"""Server logs on real servers: plain by default, one JSON object per line when asked, queries only when allowed."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx

from benchmarks.server_process import ServerProcess
from tests.conftest import ROOT, private_index_copy, start_server, stop_server

QUERY = "What happened to the Black Sea fleet?"


def _serve_and_read_log(live_server: ServerProcess, folder, env: dict[str, str] | None = None, options: tuple[str, ...] = ()) -> str:
    """Start a server, make a few requests, stop it and return all it wrote on stderr."""
    server = start_server(live_server.docs, private_index_copy(live_server, folder), env=env, options=options)
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.get("/search", params={"q": QUERY, "k": 3, "mode": "keyword"}).status_code == 200
            assert http.post("/search", json={"q": QUERY, "k": 2}).status_code == 200
            assert http.get("/search", params={"q": QUERY, "k": "many"}).status_code == 422
            assert http.get("/documents/no-such.md").status_code == 404
    finally:
        log = stop_server(server)
    return log


def _request_lines(log: str) -> list[dict]:
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]
    return [entry for entry in entries if entry["event"] == "request"]


def test_json_log_has_one_object_per_line_with_the_request_fields(live_server, tmp_path):
    log = _serve_and_read_log(live_server, tmp_path, options=("--log-format", "json"))
    requests = _request_lines(log)  # every line parses, or json.loads raises
    for entry in requests:
        assert {"event", "method", "path", "status", "took_ms", "time", "level"} <= entry.keys()
        assert isinstance(entry["took_ms"], float) and entry["took_ms"] >= 0
    searches = [entry for entry in requests if entry["path"] == "/search" and entry["status"] == 200]
    assert [(entry["method"], entry["mode"], entry["results"]) for entry in searches] == [("GET", "keyword", 3), ("POST", "hybrid", 2)]
    assert {"method": "GET", "path": "/documents/no-such.md", "status": 404}.items() <= next(
        entry for entry in requests if entry["path"].startswith("/documents/")
    ).items()
    assert QUERY not in log and "Black Sea" not in log


def test_queries_are_logged_only_when_allowed(live_server, tmp_path):
    env = {"SEMSEARCH_LOG_FORMAT": "json", "SEMSEARCH_LOG_QUERIES": "true"}
    searches = [entry for entry in _request_lines(_serve_and_read_log(live_server, tmp_path, env=env)) if entry["path"] == "/search"]
    assert [entry["query"] for entry in searches if entry["status"] == 200] == [QUERY, QUERY]


def test_plain_log_stays_the_default(live_server, tmp_path):
    log = _serve_and_read_log(live_server, tmp_path)
    assert "/search" not in log and QUERY not in log
    assert not [line for line in log.splitlines() if line.startswith("{")]


def test_an_unknown_log_format_is_one_clear_error(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "semsearch_cli", "serve", "--index", str(tmp_path / "index"), "--log-format", "xml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1
    assert completed.stderr.strip() == "semsearch: error: --log-format must be one of plain, json, not 'xml'"
