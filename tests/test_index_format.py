import json

import pytest

from indexer.build import build_index
from search.errors import IndexFormatError, IndexNotFound
from search.index_format import CURRENT_FILE, MANIFEST_FILE, PASSAGES_FILE, current_version, load_index
from search.searcher import Searcher
from tests.conftest import PARAMS
from search.settings import DEFAULT_MODEL


def test_round_trip_keeps_rows_aligned_with_passages(seed_index, embedder):
    index = load_index(seed_index)
    assert index.vectors.ntotal == len(index.passages) == index.manifest.passage_count
    assert index.manifest.model == DEFAULT_MODEL and index.manifest.dimension == 384
    assert index.manifest.chunking == PARAMS.as_dict()
    assert set(index.manifest.documents) == set(index.documents)
    rows = [0, len(index.passages) // 2, len(index.passages) - 1]
    texts = [index.documents[index.passages[r].doc_id].text[index.passages[r].start:index.passages[r].end] for r in rows]
    fresh = embedder.encode(texts)
    stored = index.vector_matrix()[rows]
    assert ((fresh * stored).sum(axis=1) > 0.999).all(), "row i holds the vector of passage i"


def test_search_returns_exact_offsets(seed_index):
    result = Searcher.open(seed_index).search("Black Sea fleet sunk", k=5)
    assert len(result.hits) == 5 and result.total >= 5
    index = load_index(seed_index)
    for rank, hit in enumerate(result.hits, start=1):
        assert hit.rank == rank
        assert index.documents[hit.doc_id].text[hit.start:hit.end] == hit.text
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert "Black Sea fleet" in result.hits[0].text


def test_missing_index_is_reported(tmp_path):
    with pytest.raises(IndexNotFound, match="semsearch index"):
        load_index(tmp_path / "nothing")


def _copy_index(seed_index, tmp_path):
    import shutil

    target = tmp_path / "index"
    shutil.copytree(seed_index, target)
    return target, target / current_version(target)


def test_format_version_mismatch_is_refused_with_the_fix(seed_index, tmp_path):
    index_dir, version = _copy_index(seed_index, tmp_path)
    manifest = json.loads((version / MANIFEST_FILE).read_text())
    manifest["format_version"] = 999
    (version / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="--full"):
        load_index(index_dir)


def test_model_mismatch_is_refused(seed_index):
    with pytest.raises(IndexFormatError, match="built with model"):
        Searcher.open(seed_index, model="some-other-model")


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete"])
def test_damaged_files_are_named_in_the_error(seed_index, tmp_path, damage):
    index_dir, version = _copy_index(seed_index, tmp_path)
    target = version / PASSAGES_FILE
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "garble":
        data = bytearray(target.read_bytes())
        data[50] ^= 0xFF
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    with pytest.raises(IndexFormatError, match=PASSAGES_FILE):
        load_index(index_dir)


def test_a_pointer_to_nowhere_is_a_format_error(seed_index, tmp_path):
    index_dir, _ = _copy_index(seed_index, tmp_path)
    (index_dir / CURRENT_FILE).write_text("v-does-not-exist")
    with pytest.raises(IndexFormatError, match="--full"):
        load_index(index_dir)


def test_chunking_change_triggers_full_rebuild(docs_copy, tmp_path):
    from indexer.chunking import ChunkingParams

    index_dir = tmp_path / "index"
    build_index(docs_copy, index_dir, DEFAULT_MODEL, PARAMS)
    report = build_index(docs_copy, index_dir, DEFAULT_MODEL, ChunkingParams(64, 0))
    assert report.full_rebuild_reason == "the chunking parameters changed"
    assert report.embedded_passages == report.total_passages > 0
