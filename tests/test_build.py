"""Incremental builds: stat first, hash what changed, embed only new or changed documents."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.scale import HashedBagOfWords
from indexer import changes
from indexer.build import build_index
from indexer.changes import commit_due
from indexer.progress import BuildProgress, ProgressDisplay
from search.backends.checkpoints import STORE_COMMITTED
from search.settings import DEFAULT_MODEL
from tests.conftest import PARAMS, ROOT, SHARED_EVAL, dense, open_index, passage_spans, write

NEW_DOC = "A new document about the Istanbul talks.\n\nIt has two short paragraphs about ceasefire lines."


def _build(docs, index_dir, embedder, **kwargs):
    return build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder, **kwargs)


def test_incremental_add_change_delete_and_unchanged(docs_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"
    first = _build(docs_copy, index_dir, embedder)
    assert len(first.added) == 5 and first.embedded_passages == first.total_passages
    assert first.embedded_tokens > first.total_passages and first.embedding_seconds > 0
    baseline = open_index(index_dir)
    generation, passages_before = baseline.generation, baseline.counts().passages

    unchanged = _build(docs_copy, index_dir, embedder)
    assert unchanged.embedded_passages == 0 and not unchanged.written and unchanged.kept == 5
    assert unchanged.embedded_tokens == 0
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
    monkeypatch.setattr(changes, "COMMIT_PASSAGES", 1)  # every file a commit of its own
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


def test_commits_come_with_the_work_done():
    assert commit_due(64, 0, 1.0), "a young build commits its first 64 passages"
    assert not commit_due(63, 0, 1.0)
    assert not commit_due(1_000, 10_000, 60.0) and commit_due(1_250, 10_000, 60.0), "then an eighth of what it holds"
    assert commit_due(changes.COMMIT_PASSAGES, 10**9, 1.0), "never more than COMMIT_PASSAGES at once"
    assert commit_due(1, 10**9, changes.COMMIT_SECONDS), "and about every two minutes"


def test_progress_lines_say_files_passages_rate_and_time_left():
    now = [0.0]
    lines: list[str] = []
    progress = BuildProgress(4, 4_000, ProgressDisplay(emit=lines.append, interval=30.0), clock=lambda: now[0])
    now[0] = 10.0
    progress.embedded(40, 2_000)
    assert not lines, "nothing before the interval"
    now[0] = 31.0
    progress.files_done(1, 1_000, 8)
    now[0] = 40.0
    progress.embedded(40, 2_000)
    now[0] = 62.0
    progress.files_done(1, 1_000, 12)
    progress.close()
    assert lines == [
        "embedding: 1 of 4 files, 8 passages, 65 tokens/s, about 2 min left",
        "embedding: 2 of 4 files, 20 passages, 65 tokens/s, about 62 s left",
    ]


def _cranfield_files(folder):
    """Cranfield's 1,400 abstracts as text files, as a user would index them."""
    from evaluation.beir import load_beir

    for doc_id, document in load_beir(SHARED_EVAL / "cranfield").corpus.items():
        write(folder, f"{doc_id}.txt", f"{document.title}\n\n{document.text}\n")
    return folder


_KILLED_BUILD = """
import os, signal, sys
from pathlib import Path

from benchmarks.scale import HashedBagOfWords
from indexer import upserts
from indexer.build import build_index
from tests.conftest import PARAMS

embedded, stop_at = 0, int(sys.argv[3])
whole = upserts.document_upserts


def killed_halfway(*args, **kwargs):
    global embedded
    documents = whole(*args, **kwargs)
    embedded += sum(len(document.upsert.passages) for document in documents)
    if embedded >= stop_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return documents


upserts.document_upserts = killed_halfway
embedder = HashedBagOfWords()
build_index(Path(sys.argv[1]), Path(sys.argv[2]), embedder.name, PARAMS, embedder=embedder)
"""


@pytest.mark.slow
def test_a_first_build_killed_halfway_resumes_and_ends_as_a_clean_build(tmp_path):
    """SIGKILL a first build of Cranfield once half its passages are embedded: the next run embeds at most 60 %
    of the passages again and ends with the index a clean build makes. The hashed stand-in embeds, so the
    test measures commits, not the model."""
    docs = _cranfield_files(tmp_path / "docs")
    embedder = HashedBagOfWords()
    clean = build_index(docs, tmp_path / "clean", embedder.name, PARAMS, embedder=embedder)
    total = clean.total_passages
    assert total >= len(clean.added) >= 1_390, "two abstracts are empty"

    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_BUILD, str(docs), str(tmp_path / "resumed"), str(total // 2)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    kept = open_index(tmp_path / "resumed")
    assert 0 < kept.counts().passages < total, "the commits made before the kill were published"
    kept.close()

    resumed = build_index(docs, tmp_path / "resumed", embedder.name, PARAMS, embedder=embedder)
    assert resumed.full_rebuild_reason is None and resumed.total_passages == total
    assert resumed.embedded_passages <= 0.6 * total, f"{resumed.embedded_passages} of {total} passages embedded again"

    whole, again = open_index(tmp_path / "clean"), open_index(tmp_path / "resumed")
    assert again.documents() == whole.documents() and passage_spans(again) == passage_spans(whole)
    for query in ("boundary layer transition", "heat transfer at hypersonic speeds", "buckling of thin cylinders"):
        (ids_whole, scores_whole), (ids_again, scores_again) = (dense(index, embedder.encode([query])[0], 50) for index in (whole, again))
        assert ids_again.tolist() == ids_whole.tolist() and np.allclose(scores_again, scores_whole, atol=1e-6)
