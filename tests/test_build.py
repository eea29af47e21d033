from indexer.build import build_index
from search.index_format import load_index
from search.settings import DEFAULT_MODEL
from tests.conftest import PARAMS, write

NEW_DOC = "A new document about the Istanbul talks.\n\nIt has two short paragraphs about ceasefire lines."


def _build(docs, index_dir, **kwargs):
    return build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, **kwargs)


def test_incremental_add_change_delete_and_unchanged(docs_copy, tmp_path):
    index_dir = tmp_path / "index"
    first = _build(docs_copy, index_dir)
    assert len(first.added) == 5 and first.embedded_passages == first.total_passages
    baseline = load_index(index_dir)

    unchanged = _build(docs_copy, index_dir)
    assert unchanged.embedded_passages == 0 and not unchanged.written and len(unchanged.kept) == 5
    assert load_index(index_dir).version == baseline.version

    write(docs_copy, "new/extra.md", NEW_DOC)
    added = _build(docs_copy, index_dir)
    after_add = load_index(index_dir)
    new_rows = [p for p in after_add.passages if p.doc_id == "new/extra.md"]
    assert added.added == ["new/extra.md"] and len(added.kept) == 5
    assert added.embedded_passages == len(new_rows) >= 1
    assert after_add.vectors.ntotal == len(baseline.passages) + len(new_rows)

    write(docs_copy, "new/extra.md", NEW_DOC + "\n\nA third paragraph.")
    changed = _build(docs_copy, index_dir)
    assert changed.updated == ["new/extra.md"]
    assert changed.embedded_passages == sum(p.doc_id == "new/extra.md" for p in load_index(index_dir).passages)

    victim = "000_2ff6379e6f7d78c5.txt"
    (docs_copy / victim).unlink()
    removed = _build(docs_copy, index_dir)
    after_delete = load_index(index_dir)
    assert removed.removed == [victim] and removed.embedded_passages == 0
    assert all(p.doc_id != victim for p in after_delete.passages)
    assert victim not in after_delete.documents and victim not in after_delete.manifest.documents
    assert after_delete.vectors.ntotal == len(after_delete.passages)


def test_kept_passages_keep_their_vectors(docs_copy, tmp_path):
    index_dir = tmp_path / "index"
    _build(docs_copy, index_dir)
    before = load_index(index_dir)
    write(docs_copy, "extra.txt", NEW_DOC)
    _build(docs_copy, index_dir)
    after = load_index(index_dir)
    row_after = {p.passage_id: i for i, p in enumerate(after.passages)}
    for row, passage in enumerate(before.passages):
        assert (after.vector_matrix()[row_after[passage.passage_id]] == before.vector_matrix()[row]).all()


def test_full_flag_re_embeds_everything(docs_copy, tmp_path):
    index_dir = tmp_path / "index"
    _build(docs_copy, index_dir)
    report = _build(docs_copy, index_dir, full=True)
    assert report.full_rebuild_reason == "--full was requested"
    assert report.embedded_passages == report.total_passages


def test_old_versions_and_leftovers_are_removed(docs_copy, tmp_path):
    index_dir = tmp_path / "index"
    _build(docs_copy, index_dir)
    (index_dir / ".tmp-v-crashed").mkdir()
    (index_dir / "v-old-crashed").mkdir()
    write(docs_copy, "extra.txt", NEW_DOC)
    _build(docs_copy, index_dir)
    names = sorted(p.name for p in index_dir.iterdir())
    assert names == [".lock", "CURRENT", load_index(index_dir).version]
