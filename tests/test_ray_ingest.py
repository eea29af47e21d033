"""`semsearch index --ray`: a build read and embedded on a real Ray cluster holds what a local build holds."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from indexer.documents import Document, FileEntry, FileRead
from indexer.ray_ingest import EMBED_PASSAGES, _chunk
from search.backends.contract import IndexLocation
from search.backends.registry import open_backend
from search.settings import DEFAULT_MODEL
from semsearch_cli.main import main
from tests.conftest import PARAMS, write

pytestmark = pytest.mark.slow

_DOCUMENTS = {
    "aqueducts.md": "# Roman aqueducts\n\nThe aqueducts carried water over long distances using only gravity. "
    "Surveyors set the gradient with a chorobates.\n\n## Upkeep\n\nCrews cleared lime deposits every year. "
    "A blocked channel could starve a city district within days.\n",
    "tea.txt": "Green tea is steamed or pan-fired soon after picking. Black tea is oxidised before it is dried. "
    "Both come from the same plant, Camellia sinensis. " * 6,
    "keys.md": "# Rotating API keys\n\nIssue the new key, deploy it everywhere, then revoke the old one. "
    "Never revoke first: running servers would lose access.\n",
    "notes/orbit.txt": "A geostationary orbit lies about 35,786 km above the equator. A satellite there keeps pace "
    "with the Earth's rotation, so a fixed dish can point at it.\n",
}


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ray-docs")
    for name, text in _DOCUMENTS.items():
        write(folder, name, text)
    return folder


@pytest.fixture(scope="module")
def local_passages(docs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    index_dir = tmp_path_factory.mktemp("local") / "index"
    assert _index(docs, index_dir) == 0
    return _passages(index_dir)


def test_two_node_cluster_build_holds_the_local_build_passages(ray_cluster, docs, local_passages, tmp_path, capsys):
    index_dir = tmp_path / "index"
    assert _index(docs, index_dir, "--ray", ray_cluster) == 0
    assert f"{len(_DOCUMENTS)} added" in capsys.readouterr().out
    _assert_same(_passages(index_dir), local_passages)


def test_an_update_through_the_cluster_embeds_only_what_changed(ray_cluster, docs, tmp_path, capsys):
    copy = tmp_path / "docs"
    for name, text in _DOCUMENTS.items():
        write(copy, name, text)
    index_dir = tmp_path / "index"
    assert _index(copy, index_dir, "--ray", ray_cluster) == 0
    write(copy, "tea.txt", "Oolong is partly oxidised, between green and black tea.\n")
    (copy / "keys.md").touch()
    (copy / "notes/orbit.txt").unlink()
    capsys.readouterr()
    assert _index(copy, index_dir, "--ray", ray_cluster) == 0
    out = capsys.readouterr().out
    assert "0 added, 1 updated, 1 removed, 2 kept" in out
    assert sorted(_passages(index_dir)) == ["aqueducts.md", "keys.md", "tea.txt"]


def test_two_node_cluster_build_into_milvus_holds_the_local_build_passages(ray_cluster, milvus_uri, docs, local_passages, tmp_path, capsys):
    """The distributed path end to end: Ray reads, chunks and embeds, the workers write the rows to Milvus, and the
    driver only commits: no passage row passes through it."""
    index_dir = tmp_path / "ray_into_milvus"
    assert _index(docs, index_dir, "--ray", ray_cluster, "--backend", "milvus", "--milvus-uri", milvus_uri) == 0
    out = capsys.readouterr().out
    assert "; 0 passage and sentence rows through this process" in out
    written = re.search(r"rows written by Ray workers: (.*);", out)
    assert written is not None
    built = _passages(IndexLocation(index_dir, "milvus", {"uri": milvus_uri}))
    _assert_same(built, local_passages)
    vector_rows = sum(len(block) for passages in built.values() for _, block in passages)
    documents = len(built)  # one catalog piece each: every test document is under 64 KB
    per_worker = [int(count) for count in re.findall(r"\S+ (\d+)", written.group(1))]
    assert sum(per_worker) == vector_rows + documents


def test_chunking_tasks_hand_the_encoders_groups_of_at_least_256_passages():
    """A chunking task packs its files into groups of at least ``EMBED_PASSAGES`` passages (the last may hold fewer),
    each one encoder call; files without new content travel in the groups too, so the driver hears of every file."""
    texts = [f"Sentence {i} of document {d} says something new about topic {d}." for d in range(40) for i in range(60)]
    reads = [
        FileRead(
            FileEntry(f"doc{d}.txt", Path(f"doc{d}.txt"), 1, 1),
            Document(f"doc{d}.txt", f"doc{d}", None, "\n\n".join(texts[d * 60 : d * 60 + 60]), f"sha{d}", ()),
            False,
            (),
        )
        for d in range(40)
    ]
    reads.append(FileRead(FileEntry("same.txt", Path("same.txt"), 1, 1), None, True, ()))
    batch = {"read": np.array([pickle.dumps(read) for read in reads], dtype=object), "slot": np.arange(len(reads))}
    groups = [pickle.loads(raw) for raw in _chunk(batch, DEFAULT_MODEL, PARAMS)["group"]]
    sizes = [sum(len(one.passages) for _, _, one in group if one is not None) for group in groups]
    assert all(size >= EMBED_PASSAGES for size in sizes[:-1]) and len(groups) > 1
    assert [slot for group in groups for _, slot, _ in group] == list(range(len(reads)))
    assert all(read.document is None for group in groups for read, _, _ in group)


def test_local_ray_runtime_build_holds_the_local_build_passages(ray_cluster, docs, local_passages, tmp_path):
    """``--ray local`` starts its own runtime in this process (joined with the session's token) and stops it."""
    import ray

    index_dir = tmp_path / "index"
    assert _index(docs, index_dir, "--ray", "local") == 0
    assert not ray.is_initialized()
    _assert_same(_passages(index_dir), local_passages)


def _index(docs: Path, index_dir: Path, *options: str) -> int:
    """``semsearch index`` as a user runs it, in this process so it shares the loaded model."""
    return main(["index", "--docs", str(docs), "--index", str(index_dir), *options])


def _passages(index: Path | IndexLocation) -> dict[str, list[tuple[tuple, np.ndarray]]]:
    """Per document, each passage's span, page and section with its vector block (passage, then sentences)."""
    backend = open_backend(IndexLocation.of(index))
    try:
        with backend.snapshot() as view:
            result = {}
            for summary in backend.documents():
                stored = view.document_passages(summary.doc_id)
                blocks = view.vectors([p.record.key for p in stored], sentences=True)
                position = {int(key): i for i, key in enumerate(blocks.ids)}
                result[summary.doc_id] = [
                    ((p.record.start, p.record.end, p.record.page, p.record.section), blocks.block(position[p.record.key])) for p in stored
                ]
            return result
    finally:
        backend.close()


def _assert_same(built: dict, expected: dict) -> None:
    assert sorted(built) == sorted(expected)
    for doc_id, passages in expected.items():
        assert [span for span, _ in built[doc_id]] == [span for span, _ in passages], doc_id
        for (_, vectors), (_, reference) in zip(built[doc_id], passages):
            assert vectors.shape == reference.shape
            cosines = np.sum(vectors.astype(np.float32) * reference.astype(np.float32), axis=1)
            assert cosines.min() > 1 - 1e-3, doc_id
