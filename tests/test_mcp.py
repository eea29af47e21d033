"""The MCP tools through the SDK's own client: ``semsearch mcp`` over stdio and ``serve --mcp`` over HTTP, as real processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from benchmarks.server_process import ServerProcess
from tests.conftest import ROOT, SEEDS, start_server, stop_server
from web.mcp_server import MAX_DOCUMENT_CHARS

TOKEN = "test-search-token-mcp-0123456789"
QUESTION = "Where was the Budapest summit?"
# The longest seed (20,910 characters), so get_document must cut it to a window.
LONG_DOC = "002_af525910a62c27f0.txt"
CALL_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def mcp_server(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``semsearch serve --mcp`` with a search token, over a copy of the seed index (the server never rebuilds it)."""
    index = tmp_path_factory.mktemp("mcp-http") / "index"
    shutil.copytree(seed_index, index)
    server = start_server(SEEDS, index, env={"SEMSEARCH_SEARCH_TOKEN": TOKEN}, options=("--mcp",))
    yield server
    stop_server(server)


def test_stdio_lists_both_tools_answers_with_sentences_and_survives_bad_arguments(seed_index):
    command = StdioServerParameters(
        command=sys.executable, args=["-m", "semsearch_cli", "mcp", "--index", str(seed_index)], env=dict(os.environ), cwd=ROOT
    )

    async def session() -> None:
        async with Client(command, read_timeout_seconds=CALL_TIMEOUT_S) as client:
            await _tools_answer_and_refuse(client)

    asyncio.run(session())


def test_http_lists_both_tools_answers_with_sentences_and_survives_bad_arguments(mcp_server):
    async def session() -> None:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=CALL_TIMEOUT_S) as http,
            Client(streamable_http_client(f"{mcp_server.url}/mcp", http_client=http)) as client,
        ):
            await _tools_answer_and_refuse(client)

    asyncio.run(session())


def test_http_tool_errors_carry_the_search_apis_messages(mcp_server):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    blank = httpx.get(f"{mcp_server.url}/search", params={"q": "   "}, headers=auth, timeout=60)
    out_of_range = httpx.get(f"{mcp_server.url}/search", params={"q": "summit", "k": 0}, headers=auth, timeout=60)
    assert blank.status_code == out_of_range.status_code == 422

    async def session() -> list[str]:
        async with (
            httpx2.AsyncClient(headers=auth, timeout=CALL_TIMEOUT_S) as http,
            Client(streamable_http_client(f"{mcp_server.url}/mcp", http_client=http)) as client,
        ):
            return [await _error(client, "search", {"query": "   "}), await _error(client, "search", {"query": "summit", "k": 0})]

    blank_error, range_error = asyncio.run(session())
    assert blank.json()["detail"] in blank_error
    assert out_of_range.json()["detail"][0]["msg"] in range_error


def test_http_mcp_is_behind_the_search_token_like_every_read_route(mcp_server):
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 403)):
        refused = httpx.post(f"{mcp_server.url}/mcp", json=request, headers=headers, timeout=60)
        read = httpx.get(f"{mcp_server.url}/documents", headers=headers, timeout=60)
        assert refused.status_code == read.status_code == status
        assert refused.json() == read.json()
    assert httpx.get(f"{mcp_server.url}/mcp", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60).status_code == 405


async def _tools_answer_and_refuse(client: Client) -> None:
    """Both tools listed; passages with doc_ids and answer sentences; bad arguments are tool errors, and the
    session answers again after each."""
    listed = await client.list_tools()
    assert {tool.name for tool in listed.tools} == {"search", "get_document"}

    hits = await _search(client, QUESTION)
    assert hits[0]["doc_id"] == LONG_DOC and "Budapest summit" in hits[0]["answer"]
    for hit in hits:
        assert {"doc_id", "title", "page", "section", "answer", "text", "score", "passage_id"} <= set(hit)
        assert hit["answer"] and hit["answer"].split()[0] in hit["text"] and 0 <= hit["score"] <= 1

    assert "no document '../etc/passwd' in the index" in await _error(client, "get_document", {"doc_id": "../etc/passwd"})
    assert "no document 'no-such.md' in the index" in await _error(client, "get_document", {"doc_id": "no-such.md"})
    assert "the query is empty" in await _error(client, "search", {"query": "   "})
    assert "less than or equal to 100" in await _error(client, "search", {"query": QUESTION, "k": 101})
    assert await _search(client, QUESTION) == hits

    passage = next(hit for hit in hits if hit["doc_id"] == LONG_DOC)
    document = await client.call_tool("get_document", {"doc_id": LONG_DOC, "passage_id": passage["passage_id"]})
    window = document.structured_content
    assert not document.is_error and window["length"] > MAX_DOCUMENT_CHARS == len(window["text"])
    assert window["start"] <= window["passage_start"] < window["passage_end"] <= window["end"]
    assert passage["text"] in window["text"]


async def _search(client: Client, query: str) -> list[dict]:
    result = await client.call_tool("search", {"query": query, "k": 3})
    assert not result.is_error, result.content
    assert isinstance(result.content[0], TextContent) and query in result.content[0].text
    return result.structured_content["results"]


async def _error(client: Client, tool: str, arguments: dict) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    assert isinstance(result.content[0], TextContent)
    return result.content[0].text
