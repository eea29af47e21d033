"""Shared fixtures: the real packaged model and small real indexes on disk."""

from __future__ import annotations

import shutil
from pathlib import Path

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
