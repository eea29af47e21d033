"""The on-disk format: what an index says about itself, and clear errors when it cannot be used."""

import shutil

import pytest

from indexer.build import build_index
from search.backends.local.layout import CURRENT_FILE, SEGMENTS_DIR, STORE_FILE, live_folder
from search.errors import IndexFormatError, IndexNotFound
from search.ranking.searcher import Searcher
from search.settings import DEFAULT_MODEL
from tests.conftest import PARAMS, dense, open_index


def test_index_states_model_dimension_and_chunking(seed_index, embedder):
    index = open_index(seed_index)
    assert index.settings.model == DEFAULT_MODEL and index.settings.dimension == 384
    assert index.settings.chunking == PARAMS.as_dict() and index.settings.backend == "local"
    stats = index.counts()
    assert stats.documents == 5 and index.vectors.size() == stats.passages
    first = index.documents()[0].doc_id
    with index.snapshot() as view:
        passage = view.document_passages(first)[0]
    pid, text = passage.record.key, passage.text
    ids, scores = dense(index, embedder.encode([text])[0], 1)
    assert ids[0] == pid and scores[0] > 0.999, "the vector stored under a passage's id is that passage's"


def test_search_returns_exact_offsets(seed_index):
    searcher = Searcher.open(seed_index)
    result = searcher.search("Black Sea fleet sunk", k=5)
    assert len(result.hits) == 5 and result.total >= 5
    for rank, hit in enumerate(result.hits, start=1):
        assert hit.rank == rank
        document = searcher.backend.document(hit.doc_id)
        assert document is not None and document.text[hit.start : hit.end] == hit.text
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    assert "Black Sea fleet" in result.hits[0].text


def test_missing_index_is_reported(tmp_path):
    with pytest.raises(IndexNotFound, match="semsearch index"):
        open_index(tmp_path / "nothing")


def _copy_index(seed_index, tmp_path):
    target = tmp_path / "index"
    shutil.copytree(seed_index, target)
    return target, live_folder(target)


def test_model_mismatch_is_refused(seed_index):
    with pytest.raises(IndexFormatError, match="built with model"):
        Searcher.open(seed_index, model="some-other-model")


def test_an_index_of_the_old_format_is_refused_with_the_fix(tmp_path):
    index_dir = tmp_path / "index"
    (index_dir / "v-20261124T051500-1a2b3c").mkdir(parents=True)
    (index_dir / CURRENT_FILE).write_text("v-20261124T051500-1a2b3c\n")
    with pytest.raises(IndexFormatError, match=r"format 1.*semsearch index --full"):
        open_index(index_dir)


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete"])
def test_a_damaged_store_is_named_in_the_error(seed_index, tmp_path, damage):
    index_dir, folder = _copy_index(seed_index, tmp_path)
    target = folder / STORE_FILE
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "garble":
        target.write_bytes(b"not a database" * 100)
    else:
        target.unlink()
    with pytest.raises(IndexFormatError, match=STORE_FILE):
        open_index(index_dir)


def test_a_missing_segment_is_named_in_the_error(seed_index, tmp_path):
    index_dir, folder = _copy_index(seed_index, tmp_path)
    segment = next((folder / SEGMENTS_DIR).iterdir())
    segment.unlink()
    with pytest.raises(IndexFormatError, match=segment.name):
        open_index(index_dir)


def test_a_pointer_to_nowhere_is_a_format_error(seed_index, tmp_path):
    index_dir, _ = _copy_index(seed_index, tmp_path)
    (index_dir / CURRENT_FILE).write_text("format 2 i-does-not-exist\n")
    with pytest.raises(IndexFormatError, match="--full"):
        open_index(index_dir)


def test_chunking_change_triggers_full_rebuild(docs_copy, tmp_path, embedder):
    from indexer.chunking import ChunkingParams

    index_dir = tmp_path / "index"
    build_index(docs_copy, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    report = build_index(docs_copy, index_dir, DEFAULT_MODEL, ChunkingParams(64, 0), embedder=embedder)
    assert report.full_rebuild_reason == "the chunking parameters changed"
    assert report.embedded_passages == report.total_passages > 0
