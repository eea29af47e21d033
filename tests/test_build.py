"""Incremental builds: stat first, hash what changed, embed only new or changed documents."""

import os

import numpy as np

from indexer import build
from indexer.build import build_index
from search.backends.checkpoints import STORE_COMMITTED
from search.settings import DEFAULT_MODEL
from tests.conftest import PARAMS, dense, open_index, passage_spans, write

NEW_DOC = "A new document about the Istanbul talks.\n\nIt has two short paragraphs about ceasefire lines."


def _build(docs, index_dir, embedder, **kwargs):
    return build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder, **kwargs)


def test_incremental_add_change_delete_and_unchanged(docs_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    first = _build(docs_copy, index_dir, embedder)
    assert len(first.added) == 5 and first.embedded_passages == first.total_passages
    baseline = open_index(index_dir)
    generation, passages_before = baseline.generation, baseline.counts().passages

    unchanged = _build(docs_copy, index_dir, embedder)
    assert unchanged.embedded_passages == 0 and not unchanged.written and unchanged.kept == 5
    assert open_index(index_dir).generation == generation

    write(docs_copy, "new/extra.md", NEW_DOC)
    added = _build(docs_copy, index_dir, embedder)
    after_add = open_index(index_dir)
    new_rows = passage_spans(after_add)["new/extra.md"]
    assert added.added == ["new/extra.md"] and added.kept == 5
    assert added.embedded_passages == len(new_rows) >= 1
    assert after_add.counts().passages == passages_before + len(new_rows)

    write(docs_copy, "new/extra.md", NEW_DOC + "\n\nA third paragraph.")
    changed = _build(docs_copy, index_dir, embedder)
    assert changed.updated == ["new/extra.md"]
    assert changed.embedded_passages == len(passage_spans(open_index(index_dir))["new/extra.md"])

    victim = "000_2ff6379e6f7d78c5.txt"
    (docs_copy / victim).unlink()
    removed = _build(docs_copy, index_dir, embedder)
    after_delete = open_index(index_dir)
    assert removed.removed == [victim] and removed.embedded_passages == 0
    assert victim not in passage_spans(after_delete) and after_delete.document(victim) is None
    ids, _ = dense(after_delete, embedder.encode(["anything"])[0], 10_000)
    assert len(ids) == after_delete.counts().passages, "deleted passages no longer answer"


def test_a_large_change_is_committed_in_bounded_batches_and_a_fresh_build_ends_as_one_segment(docs_copy, tmp_path, embedder, monkeypatch):
    one_commit = _build(docs_copy, tmp_path / "one", embedder)
    monkeypatch.setattr(build, "LOCAL_COMMIT_BYTES", 1)  # every file a commit of its own
    commits: list[str] = []
    batched = _build(docs_copy, tmp_path / "batched", embedder, report_stage=commits.append)
    assert commits.count(STORE_COMMITTED) == 5, "one commit per file, so memory follows the batch, not the folder"
    assert sorted(batched.added) == sorted(one_commit.added) and batched.total_passages == one_commit.total_passages
    whole, sealed = open_index(tmp_path / "one"), open_index(tmp_path / "batched")
    assert sealed.segment_counts().segments == whole.segment_counts().segments == 1 and batched.compacted_segments == 5
    assert passage_spans(sealed) == passage_spans(whole)
    query = embedder.encode(["Who sank the Black Sea fleet?"])[0]
    (ids_whole, scores_whole), (ids_sealed, scores_sealed) = dense(whole, query, 20), dense(sealed, query, 20)
    assert ids_sealed.tolist() == ids_whole.tolist() and np.allclose(scores_sealed, scores_whole, atol=1e-5)

    for number in range(3):
        write(docs_copy, f"new/extra-{number}.md", f"{NEW_DOC}\n\nNumber {number}.")
    commits.clear()
    added = _build(docs_copy, tmp_path / "batched", embedder, report_stage=commits.append)
    assert sorted(added.added) == [f"new/extra-{n}.md" for n in range(3)] and added.kept == 5
    assert commits.count(STORE_COMMITTED) == 3 and set(passage_spans(open_index(tmp_path / "batched"))) >= set(added.added)


def test_a_touched_file_with_the_same_content_is_not_re_embedded(docs_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    _build(docs_copy, index_dir, embedder)
    target = docs_copy / "001_d7b1d813b67cecda.txt"
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 5_000_000_000))
    report = _build(docs_copy, index_dir, embedder)
    assert report.embedded_passages == 0 and report.kept == 5 and not report.updated
    assert _build(docs_copy, index_dir, embedder).written is False, "the new stat was recorded"


def test_kept_passages_keep_their_vectors(docs_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    _build(docs_copy, index_dir, embedder)
    query = embedder.encode(["Black Sea fleet"])[0]
    before_ids, before_scores = dense(open_index(index_dir), query, 20)
    write(docs_copy, "extra.txt", NEW_DOC)
    _build(docs_copy, index_dir, embedder)
    after = open_index(index_dir)
    after_ids, after_scores = dense(after, query, 20)
    kept = {pid: score for pid, score in zip(after_ids.tolist(), after_scores.tolist())}
    for pid, score in zip(before_ids.tolist(), before_scores.tolist()):
        if pid in kept:
            assert np.isclose(kept[pid], score)
    assert len(kept.keys() & set(before_ids.tolist())) >= 15, "a small addition leaves the old neighbours in place"


def test_full_flag_re_embeds_everything(docs_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    _build(docs_copy, index_dir, embedder)
    report = _build(docs_copy, index_dir, embedder, full=True)
    assert report.full_rebuild_reason == "--full was requested"
    assert report.embedded_passages == report.total_passages


def test_leftovers_of_interrupted_builds_are_removed(docs_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    _build(docs_copy, index_dir, embedder)
    (index_dir / ".tmp-i-crashed").mkdir()
    (index_dir / "i-old-crashed").mkdir()
    write(docs_copy, "extra.txt", NEW_DOC)
    _build(docs_copy, index_dir, embedder)
    names = sorted(p.name for p in index_dir.iterdir())
    assert names == [".lock", "CURRENT", open_index(index_dir).folder.name]


def test_every_passage_knows_its_pages_and_section(tmp_path, embedder):
    import re

    from indexer.chunking import ChunkingParams
    from tests.test_readers import make_pdf

    docs = tmp_path / "docs"
    write(docs, "report.pdf", make_pdf(12))
    write(docs, "guide.md", "# Guide\n\n## Installing\n\nRun the installer.\n\n## Removing\n\nDelete the folder.\n")
    index_dir = tmp_path / "index"
    build_index(docs, index_dir, DEFAULT_MODEL, ChunkingParams(32, 0), embedder=embedder)
    index = open_index(index_dir)
    report = index.document("report.pdf")
    assert report is not None
    text = report.text
    with index.snapshot() as view:
        passages = [p.record for p in view.document_passages("report.pdf")]
        sections = [p.record.section for p in view.document_passages("guide.md")]
    rows = [(p.start, p.end, p.page, p.page_end) for p in passages]
    assert len(rows) > 1
    seen = set()
    for start, end, page, page_end in rows:
        assert page is not None and page_end is not None, (start, end)
        numbers = [int(n) for n in re.findall(r"page (\d+) marker", text[start:end])]
        assert numbers and all(page <= n <= page_end for n in numbers), (page, page_end, numbers)
        seen.update(numbers)
    assert seen == set(range(1, 13))
    assert {"Guide > Installing", "Guide > Removing"} <= set(sections)


def test_each_highlight_carries_the_page_it_is_on(tmp_path, embedder):
    """A passage that crosses pages reports where it starts; each highlighted sentence reports its own page."""
    import bisect

    from search.ranking.rules import SearchRequest
    from search.ranking.searcher import Searcher
    from tests.test_readers import make_pdf

    docs = tmp_path / "docs"
    write(docs, "report.pdf", make_pdf(6))
    index_dir = tmp_path / "index"
    build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    searcher = Searcher.open(index_dir)
    report = searcher.backend.document("report.pdf")
    assert report is not None
    pages = report.pages
    crossing = 0
    for number in range(1, 7):
        for hit in searcher.search(SearchRequest(f"page {number} marker", k=5, mode="keyword")).hits:
            crossing += hit.page != hit.page_end
            assert hit.highlights, hit
            for span in hit.highlights:
                assert span.page == bisect.bisect_right(pages, hit.start + span.start), (hit, span)
                assert hit.page is not None and hit.page_end is not None and span.page is not None
                assert hit.page <= span.page <= hit.page_end
    assert crossing, "the test needs passages that cross a page break"
    assert any(
        span.page != hit.page
        for number in range(2, 7)
        for hit in searcher.search(SearchRequest(f"page {number} marker", k=3, mode="keyword")).hits
        for span in hit.highlights
    ), "somewhere the answer sits on a later page than the passage's start"
