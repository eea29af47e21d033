"""Shared fixtures: the real packaged model and small real indexes on disk."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from indexer.build import build_index
from indexer.chunking import ChunkingParams
from search.embedding import Embedder, load_embedder
from search.settings import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED_EVAL = ROOT.parent / "shared" / "eval"
PARAMS = ChunkingParams(max_tokens=128, overlap_sentences=1)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return load_embedder(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of the seeds, built once; tests must not change it."""
    index_dir = tmp_path_factory.mktemp("seed-index") / "index"
    build_index(SEEDS, index_dir, DEFAULT_MODEL, PARAMS)
    return index_dir


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    """A private copy of the seeds that a test may change."""
    folder = tmp_path / "docs"
    shutil.copytree(SEEDS, folder)
    return folder


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


XSS_DOCUMENT = (
    "# Hostile payload sample\n\n"
    "This hostile payload document tests rendering: <script>window.__pwned=1</script> and "
    '<img src=x onerror="window.__pwned=1"> must show as text.\n'
)


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    docs: Path
    index: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(docs: Path, index: Path, env: dict[str, str] | None = None, wait_ready: bool = True) -> LiveServer:
    """``semsearch serve`` as a user runs it, on a free loopback port; waits for /health (bounded)."""
    port = free_port()
    environment = {**os.environ, "SEMSEARCH_DOCS": str(docs), "SEMSEARCH_INDEX": str(index), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "semsearch_cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", process, docs, index)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            status = httpx.get(f"{server.url}/health", timeout=2).status_code
            if status == 200 or (status == 503 and not wait_ready):
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError("server did not become ready within 240 s")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def live_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds plus one document full of markup that must stay inert."""
    folder = tmp_path_factory.mktemp("live-docs")
    for seed in SEEDS.iterdir():
        shutil.copy(seed, folder / seed.name)
    write(folder, "xss.md", XSS_DOCUMENT)
    return folder


@pytest.fixture(scope="session")
def live_server(live_docs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real uvicorn server over a real index, shared by the tests that only read."""
    server = start_server(live_docs, tmp_path_factory.mktemp("live-index") / "index")
    yield server
    stop_server(server)
