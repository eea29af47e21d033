"""`semsearch index --ray`: a build read and embedded on a real Ray cluster holds what a local build holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from search.backends.contract import IndexLocation
from search.backends.registry import open_backend
from semsearch_cli.main import main
from tests.conftest import write

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


def test_two_node_cluster_build_into_milvus_holds_the_local_build_passages(ray_cluster, milvus_uri, docs, local_passages, tmp_path):
    """The distributed path end to end: Ray reads and embeds, the Milvus backend commits."""
    index_dir = tmp_path / "ray_into_milvus"
    assert _index(docs, index_dir, "--ray", ray_cluster, "--backend", "milvus", "--milvus-uri", milvus_uri) == 0
    _assert_same(_passages(IndexLocation(index_dir, "milvus", {"uri": milvus_uri})), local_passages)


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
