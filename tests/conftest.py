"""Shared fixtures: the real packaged model and small real indexes on disk."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.server_process import ServerProcess, launch
from indexer.build import build_index
from indexer.chunking import ChunkingParams
from search.backends import registry
from search.backends.contract import ExactDenseSearch, IndexLocation
from search.backends.local.backend import LocalBackend
from search.backends.registry import AnyBackend
from search.encoding.embedder import Embedder
from search.encoding.embedding import load_embedder
from search.settings import DEFAULT_MODEL

pytest_plugins = ["tests.servers", "tests.milvus_fixtures"]

# The reference backend joins through the registry's public API, as any new backend would.
registry.register("memory", "tests.memory_backend:MemoryBackend")

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


def stop_server(server: ServerProcess) -> str:
    """Stop it; what it wrote to stderr."""
    return server.stop()


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


def open_index(index_dir: Path) -> LocalBackend:
    """The local index at ``index_dir``, opened as a reader would."""
    return LocalBackend.open(IndexLocation(index_dir))


def passage_spans(backend: AnyBackend) -> dict[str, list[tuple[int, int]]]:
    """Each document's passages as (start, end), in order: what a build produced, through the backend's API."""
    with backend.snapshot() as view:
        return {s.doc_id: [(p.record.start, p.record.end) for p in view.document_passages(s.doc_id)] for s in backend.documents()}


def dense(backend: AnyBackend, vector, k: int):
    """Ids and cosines of the exact ``k`` nearest passages."""
    with backend.snapshot() as view:
        assert isinstance(view, ExactDenseSearch)
        return view.dense_exact(vector, k)


BACKENDS_UNDER_CONTRACT = ("local", "milvus", "memory")


@pytest.fixture(params=BACKENDS_UNDER_CONTRACT)
def backend_location(request: pytest.FixtureRequest) -> Callable[[Path], IndexLocation]:
    """Where a test's index lives, on each backend the contract covers, named as a user names it: a folder, or a
    URL of the backend's scheme (a Milvus index on the session's milvus-lite server) named after the folder and
    unique to it, so no test finds another's index of the same name."""
    name = request.param
    if name == "local":
        return lambda path: registry.locate(str(path))
    server = request.getfixturevalue("milvus_uri").removeprefix("http://") if name == "milvus" else ""
    return lambda path: registry.locate(f"{name}://{server}{'/' if server else ''}{_unique_name(path)}")


def _unique_name(path: Path) -> str:
    return f"{path.name}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A real two-node Ray cluster on 127.0.0.1 (``tests/ray_cluster.py``); yields its address, with this
    process's environment holding the token a client joins with, and stops both nodes by pid after."""
    from tests.ray_cluster import RayCluster, auth_environment

    cluster = RayCluster.start(nodes=2)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in auth_environment(cluster.token).items():
                patch.setenv(name, value)
            yield cluster.address
    finally:
        cluster.stop()
