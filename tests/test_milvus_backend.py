"""The milvus backend against a real milvus-lite 2.5.1 server (``tests/servers.py``), on the documents and
indexes of ``tests/milvus_fixtures.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from search.backends.checkpoints import PAUSE_AT_ENV, PAUSE_MARKER_ENV, STORE_COMMITTED
from search.backends.contract import Change, Filters, IndexLocation
from search.backends.milvus.backend import MilvusBackend
from search.backends.milvus.control import Control
from search.backends.milvus.lease import Lease
from search.backends.milvus.rows import text_pieces
from search.backends.milvus.schema import CollectionSet, index_base
from search.errors import IndexLocked, IndexNotFound
from tests.milvus_fixtures import AIRCRAFT, NOTES, ROOT, SETTINGS, SHIPS, ids_of, stored_rows, upsert, visible_doc_ids


def test_dense_keyword_and_filters(index: MilvusBackend) -> None:
    with index.snapshot() as view:
        ids, scores = view.dense(AIRCRAFT.vectors[0], 3)
        assert view.passages(ids[:1])[int(ids[0])].record.passage_id == "aircraft.txt#0"
        assert scores[0] == pytest.approx(1.0, abs=1e-5)
        ids, _ = view.dense(AIRCRAFT.vectors[0], 10, Filters(doc_ids=("ships.txt",)))
        assert {p.record.doc_id for p in view.passages(ids).values()} == {"ships.txt"}
        ids, _ = view.dense(AIRCRAFT.vectors[0], 10, Filters(date_from="2000-01-01"))
        assert {p.record.doc_id for p in view.passages(ids).values()} == {"aircraft.txt"}
        ids, _ = view.dense(AIRCRAFT.vectors[0], 10, Filters(date_to="2000-01-01"))
        assert {p.record.doc_id for p in view.passages(ids).values()} == {"ships.txt"}

        ids, scores = view.keyword("aircraft wings", 10)
        assert view.passages(ids[:1])[int(ids[0])].record.passage_id == "aircraft.txt#0"
        assert len(ids) == 2 and scores[0] > scores[1] > 0  # stemmed "aircraft" also hits the notes
        ids, _ = view.keyword("aircraft", 10, Filters(date_from="1990-01-01"))
        assert {p.record.doc_id for p in view.passages(ids).values()} == {"aircraft.txt"}
        assert len(view.keyword("the of and", 10)[0]) == 0  # stop words only

        ids, scores = view.keyword_documents("flutter boundary", 10)
        assert sorted(ids.tolist()) == ids_of(index, "aircraft.txt") and len(set(scores.tolist())) == 1
        ids, _ = view.keyword_documents("aircraft", 10, Filters(doc_ids=("notes.txt",)))
        assert {p.record.doc_id for p in view.passages(ids).values()} == {"notes.txt"}


def test_fetch_by_id(index: MilvusBackend) -> None:
    aircraft = ids_of(index, "aircraft.txt")
    with index.snapshot() as view:
        passages = view.passages([*aircraft, 999999])
        assert sorted(passages) == aircraft
        first = passages[aircraft[0]]
        assert first.text == "Wings of aircraft generate lift. Flutter appears at high speed."
        assert (first.title, first.date, first.record.section, first.record.page) == ("Title of aircraft.txt", "2001-05-01", "Aero", 1)
        assert first.sentences == ((0, 32), (33, 63)) and first.page_starts == (0, 40)  # it crosses into page 2
        assert passages[aircraft[1]].page_starts == () and passages[aircraft[1]].record.page == 2
        span = view.spans(aircraft)[aircraft[1]]
        assert (span.document, span.start, span.end) == (first.document, 64, 99)
        blocks = view.vectors(aircraft)
        assert blocks.counts.tolist() == [3, 2]
        np.testing.assert_allclose(blocks.matrix, AIRCRAFT.vectors, atol=1e-3)  # sentences are float16
        assert view.vectors(aircraft, sentences=False).counts.tolist() == [1, 1]
    assert index.document("aircraft.txt") == AIRCRAFT.record
    assert index.document("missing.txt") is None
    assert {d.doc_id: d.sha256 for d in index.documents()}["ships.txt"] == "sha-ships.txt-2"
    assert [d.doc_id for d in index.documents(["notes.txt"])] == ["notes.txt"]
    assert [(d.doc_id, d.passages) for d in index.documents()] == [("aircraft.txt", 2), ("notes.txt", 1), ("ships.txt", 1)]
    counts = index.counts()
    assert (counts.documents, counts.passages) == (3, 4)


def test_replace_remove_and_touch(index: MilvusBackend) -> None:
    before = ids_of(index, "aircraft.txt")
    new = upsert("aircraft.txt", ["Aircraft wings were redesigned."], "2002-01-01", seed=9)
    result = index.apply(Change(upserts=(new,), removed=("ships.txt",), sources=(("notes.txt", "stat 5 77"),)))
    assert (result.added_passages, result.removed_passages) == (1, 3)
    after = ids_of(index, "aircraft.txt")
    assert len(after) == 1 and not set(after) & set(before)
    assert visible_doc_ids(index, SHIPS.vectors[0]) == {"aircraft.txt", "notes.txt"}
    assert index.document("aircraft.txt") == new.record
    [notes] = index.documents(["notes.txt"])
    assert (notes.source, notes.sha256) == ("stat 5 77", "sha-notes.txt-3")
    assert stored_rows(index) == 2  # old rows deleted, not just hidden
    assert (index.counts().documents, index.counts().passages) == (2, 2)


def test_a_view_sees_one_committed_state(index: MilvusBackend) -> None:
    new = upsert("ships.txt", ["Ships now sail on hydrofoils."], "1999-01-01", seed=7)
    prepared = index.prepare(Change(upserts=(new,)))
    with index.snapshot() as view:
        assert len(view.keyword("hydrofoils", 10)[0]) == 0  # prepared rows are invisible
        old_view = view
    seen: dict[str, int] = {}

    def at(stage: str) -> None:
        if stage == STORE_COMMITTED:  # after the flip, before old rows are deleted
            seen["old view, new text"] = len(old_view.keyword("hydrofoils", 10)[0])
            seen["old view, old text"] = len(old_view.keyword("propellers", 10)[0])
            with index.snapshot() as fresh:
                seen["new view, new text"] = len(fresh.keyword("hydrofoils", 10)[0])
                seen["new view, old text"] = len(fresh.keyword("propellers", 10)[0])

    index.commit(prepared, at)
    assert seen == {"old view, new text": 0, "old view, old text": 1, "new view, new text": 1, "new view, old text": 0}


def test_abandon_and_recover(index: MilvusBackend, location: IndexLocation) -> None:
    rows = stored_rows(index)
    index.abandon(index.prepare(Change(upserts=(upsert("extra.txt", ["Abandoned words."], seed=5),))))
    assert stored_rows(index) == rows

    index.prepare(Change(upserts=(upsert("extra.txt", ["Crashed before commit."], seed=6),)))
    crashed_after_flip = index.prepare(Change(removed=("ships.txt",)))

    def crash(stage: str) -> None:
        if stage == STORE_COMMITTED:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        index.commit(crashed_after_flip, crash)
    reopened = MilvusBackend.open(location)
    reopened.recover()
    assert visible_doc_ids(reopened, SHIPS.vectors[0]) == {"aircraft.txt", "notes.txt"}
    assert stored_rows(reopened) == rows - 1
    assert reopened.refresh() is False


@pytest.mark.parametrize("stage", ["segment written", "store committed", "old rows deleted"])
def test_sigkill_at_a_stage_then_recover(index: MilvusBackend, location: IndexLocation, tmp_path: Path, stage: str) -> None:
    """A writer killed at a named stage leaves the index answering as before the change or as after it."""
    marker = tmp_path / "paused"
    script = (
        "import sys; from pathlib import Path; from search.backends.contract import Change, IndexLocation;"
        "from search.backends.milvus.backend import MilvusBackend;"
        "import json; b = MilvusBackend.open(IndexLocation(Path(sys.argv[1]), 'milvus', json.loads(sys.argv[2])));"
        "b.apply(Change(removed=('ships.txt',)))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), **{PAUSE_AT_ENV: stage, PAUSE_MARKER_ENV: str(marker)})
    writer = subprocess.Popen([sys.executable, "-c", script, str(location.path), json.dumps(dict(location.options))], env=env)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert writer.poll() is None and time.monotonic() < deadline, "the writer never reached the stage"
            time.sleep(0.1)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    index.recover()
    expected = {"aircraft.txt", "notes.txt", "ships.txt"} if stage == "segment written" else {"aircraft.txt", "notes.txt"}
    assert {d.doc_id for d in index.documents()} == expected
    assert visible_doc_ids(index, SHIPS.vectors[0]) == expected
    assert stored_rows(index) == (4 if stage == "segment written" else 3)


def test_one_writer_and_lease_expiry(location: IndexLocation) -> None:
    refusal = r"being written by .+:\d+:[0-9a-f]{8} \(lease expires"
    with MilvusBackend.writer(location), pytest.raises(IndexLocked, match=refusal), MilvusBackend.writer(location):
        pass
    with MilvusBackend.writer(location):  # released on exit
        pass
    dead = Lease(Control(MilvusBackend.create(location, SETTINGS).client), index_base(location.name), 1.0, "elsewhere:1:deadbeef")
    dead.acquire()  # a writer on another machine that died without releasing
    with pytest.raises(IndexLocked, match="elsewhere:1:deadbeef"), MilvusBackend.writer(location):
        pass
    time.sleep(1.1)
    began = time.monotonic()
    with MilvusBackend.writer(location):  # its claim looks expired, and stays silent for its whole term: taken over
        pass
    assert time.monotonic() - began >= 1.0


def test_create_publish_and_discard(index: MilvusBackend, location: IndexLocation) -> None:
    rebuilt = MilvusBackend.create(location, SETTINGS)
    rebuilt.apply(Change(upserts=(NOTES,)))
    assert not index.superseded() and MilvusBackend.open(location).names == index.names
    rebuilt.publish()
    assert index.superseded() and not rebuilt.superseded()
    assert [d.doc_id for d in MilvusBackend.open(location).documents()] == ["notes.txt"]
    MilvusBackend.discard_stale(location)
    assert CollectionSet.all_of(rebuilt.client, rebuilt.names.base) == [rebuilt.names]


def test_missing_index_and_index_types(location: IndexLocation) -> None:
    assert not MilvusBackend.exists(location)
    with pytest.raises(IndexNotFound):
        MilvusBackend.open(location)
    for index_type in ("FLAT", "IVF_FLAT"):
        typed = IndexLocation(
            location.path.with_name(f"{location.name}-{index_type}"), "milvus", {**location.options, "index_type": index_type}
        )
        backend = MilvusBackend.create(typed, SETTINGS)
        backend.apply(Change(upserts=(SHIPS,)))
        with backend.snapshot() as view:
            assert view.dense(SHIPS.vectors[0], 1)[1][0] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="choose one of"):
        MilvusBackend.create(IndexLocation(location.path, "milvus", {**location.options, "index_type": "LSH"}), SETTINGS)


def test_milvus_rankers(index: MilvusBackend) -> None:
    with index.snapshot() as view:
        for ranker in ("rrf", "weighted"):
            ids, scores = view.hybrid(AIRCRAFT.vectors[0], "aircraft", 3, ranker)
            assert view.passages(ids[:1])[int(ids[0])].record.passage_id == "aircraft.txt#0"
            assert list(scores) == sorted(scores, reverse=True)


def test_text_pieces_cover_the_text_within_the_byte_limit() -> None:
    text = ("naïve café " * 30 + "\n") * 40 + "é" * 500
    pieces = text_pieces(text, limit=1_000)
    assert "".join(piece for _, piece in pieces) == text
    assert all(len(piece.encode("utf-8")) <= 1_000 for _, piece in pieces)
    assert [start for start, _ in pieces] == [sum(len(p) for _, p in pieces[:i]) for i in range(len(pieces))]
    assert all(piece.endswith((" ", "\n")) for _, piece in pieces[:-2])  # words are not split


def test_a_long_document_is_stored_and_scored_in_pieces(location: IndexLocation) -> None:
    sentences = [f"Sentence {i} about ordinary matters and ümlauts." for i in range(3_000)] + ["Zeppelin at the end."]
    long = upsert("long.txt", sentences, seed=4)
    backend = MilvusBackend.create(location, SETTINGS)
    backend.apply(Change(upserts=(long, SHIPS)))
    assert len(long.record.text.encode("utf-8")) > 65_535
    assert backend.document("long.txt") == long.record
    with backend.snapshot() as view:
        ids, scores = view.keyword_documents("zeppelin", 5)
        assert len(ids) == len(long.passages) and scores[0] > 0
