"""Shared fixtures: the real packaged model and small real indexes on disk."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.chunking import ChunkingParams
from search.embedding import Embedder, load_embedder
from search.settings import DEFAULT_MODEL
from web.launcher import ServerProcess, launch

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


def start_server(
    docs: Path, index: Path, env: dict[str, str] | None = None, wait_ready: bool = True, options: tuple[str, ...] = ()
) -> ServerProcess:
    """``semsearch serve`` as a user runs it, on a free loopback port."""
    return launch(docs, index, env=env, wait_ready=wait_ready, options=options)


def stop_server(server: ServerProcess) -> None:
    server.stop()


def private_index_copy(live_server: ServerProcess, folder: Path) -> Path:
    """A copy of the live index, so a server can start without rebuilding and a job cannot touch the shared one."""
    index = folder / "index"
    shutil.copytree(live_server.index, index)
    return index


@pytest.fixture(scope="session")
def live_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeds plus one document full of markup that must stay inert."""
    folder = tmp_path_factory.mktemp("live-docs")
    for seed in SEEDS.iterdir():
        shutil.copy(seed, folder / seed.name)
    write(folder, "xss.md", XSS_DOCUMENT)
    return folder


@pytest.fixture(scope="session")
def live_server(live_docs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real uvicorn server over a real index, shared by the tests that only read."""
    server = start_server(live_docs, tmp_path_factory.mktemp("live-index") / "index")
    yield server
    stop_server(server)
