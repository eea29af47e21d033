"""Searches while a writer adds, renames and deletes documents: never an error, never a half-applied update."""

from __future__ import annotations

import threading
import time

import pytest

from indexer.build import build_index
from search.backends.contract import IndexLocation
from search.backends.local.backend import LocalBackend
from search.backends.local.layout import VECTORS_DIR
from search.ranking.rules import SearchRequest
from search.ranking.searcher import Searcher
from search.settings import DEFAULT_MODEL
from tests.conftest import PARAMS, open_index, write

SECONDS = 20


@pytest.mark.slow
def test_searches_in_every_mode_never_fail_while_documents_churn(tmp_path, embedder):
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    for number in range(5):
        write(docs, f"d{number}.md", f"# Doc {number}\n\nnarwhal sonata harbour number {number}. Another sentence.\n")
    build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    searcher = Searcher.open(index_dir)
    deadline = time.monotonic() + SECONDS
    errors: list[str] = []
    searches = [0]

    def search_loop() -> None:
        while time.monotonic() < deadline:
            for mode in ("hybrid", "keyword", "semantic"):
                try:
                    result = searcher.search(SearchRequest("narwhal sonata harbour", k=100, mode=mode))
                    assert all(hit.text for hit in result.hits)
                    searches[0] += 1
                except Exception as exc:  # noqa: BLE001 - any failure is what this test looks for
                    errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=search_loop) for _ in range(3)]
    for thread in threads:
        thread.start()
    updates = 0
    while time.monotonic() < deadline:
        churn = docs / f"t{updates % 3}.md"
        if churn.exists():
            churn.rename(docs / f"moved{updates}.md")
        else:
            churn.write_text(f"narwhal{updates} sonata trial {updates}\n")
        for old in sorted(docs.glob("moved*.md"))[:-1]:
            old.unlink()
        build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
        updates += 1
    for thread in threads:
        thread.join(timeout=60)
    assert updates > 10 and searches[0] > 30
    assert not errors, errors[:3]


def test_a_reader_whose_listing_a_compaction_retires_opens_the_newer_listing(tmp_path, embedder):
    """The race the churn test met once in CI: a reader lists the segments, a compaction commits and unlinks
    them, and only then does the reader open them. It must open the compacted segment, not report damage."""
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    write(docs, "d0.md", "# Doc 0\n\nnarwhal sonata harbour number 0.\n")
    build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    reader = open_index(index_dir)
    for number in (1, 2):
        write(docs, f"d{number}.md", f"# Doc {number}\n\nnarwhal sonata harbour number {number}.\n")
        build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    listed = reader.store.segments
    compactions: list[int] = []

    def list_then_compact():
        segments = listed()
        if not compactions:
            compactions.append(_as_writer(index_dir, lambda writer: writer.maintain(force=True).merged_segments))
        return segments

    reader.store.segments = list_then_compact  # type: ignore[method-assign]
    assert reader.refresh()
    assert compactions == [3]
    assert len(listed()) == 1 and reader.vectors.size() == reader.counts().passages == 3
    reader.close()


def test_a_reader_whose_listing_names_a_vector_file_a_writer_then_forgets_opens_the_newer_listing(tmp_path, embedder, monkeypatch):
    """The race the churn test met in CI again: after a commit leaves a vector file with no live passage, the
    writer forgets and unlinks it without a new generation. A reader that listed it just before must open the
    newer listing, not report damage."""
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    write(docs, "d0.md", "# Doc 0\n\nnarwhal sonata harbour number 0.\n")
    build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    reader = open_index(index_dir)
    write(docs, "d1.md", "# Doc 1\n\nnarwhal sonata harbour number 1.\n")
    build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    (docs / "d1.md").unlink()
    with monkeypatch.context() as held_back:
        held_back.setattr(LocalBackend, "_remove_unused_vector_files", lambda self: None)
        build_index(docs, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    listed = reader.store.vector_files
    unused = reader.store.unused_vector_files()
    assert len(unused) == 1, "d1's vector file is named but no passage points at it"
    forgotten: list[str] = []

    def list_then_forget():
        files = listed()
        if not forgotten:
            _as_writer(index_dir, lambda writer: writer._remove_unused_vector_files())
            forgotten.extend(unused.values())
        return files

    reader.store.vector_files = list_then_forget  # type: ignore[method-assign]
    assert reader.refresh()
    assert forgotten and not any((reader.folder / VECTORS_DIR / name).exists() for name in forgotten)
    assert reader.counts().passages == 1
    assert reader.store.vector_files() == listed() and set(listed().values()).isdisjoint(forgotten)
    reader.close()


def _as_writer(index_dir, act):
    """``act`` on the index as its writer, holding the writer lock, as another process would."""
    location = IndexLocation(index_dir)
    with LocalBackend.writer(location):
        writer = LocalBackend.open(location)
        try:
            return act(writer)
        finally:
            writer.close()
