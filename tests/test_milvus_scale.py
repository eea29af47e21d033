"""What keeps the milvus backend sound at a hundred million passages, on a real milvus-lite server: every
filter on an indexed field, requests per search and per write that do not grow with the index, Bounded reads
while the writer waits for its rows to show, fenced writers, term statistics kept at ingest, cluster options.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest
from pymilvus import MilvusClient

from search.backends.contract import Change, IndexLocation
from search.backends.milvus import writes
from search.backends.milvus.backend import MilvusBackend
from search.backends.milvus.client import CountingClient, read_levels, requests_sent
from search.backends.milvus.control import Control
from search.backends.milvus.lease import Lease, held
from search.backends.milvus.schema import FILTERED, ClusterSettings, dense_search_params, index_base
from search.backends.milvus.terms import passage_terms
from search.backends.registry import locate
from search.errors import IndexFormatError, IndexLocked
from search.ranking.rules import SearchRequest
from search.ranking.searcher import Searcher
from tests.milvus_fixtures import AIRCRAFT, NOTES, SETTINGS, SHIPS, LateWrites, StandIn, stored_rows, upsert

SHIPS_TEXT = "Hulls of ships resist waves. Propellers cavitate when spinning fast."


def _with_options(location: IndexLocation, **options: str) -> IndexLocation:
    return IndexLocation(location.path, "milvus", {**location.options, **options})


def test_every_filtered_field_has_an_inverted_index(index: MilvusBackend) -> None:
    for kind, collection in zip(("passages", "sentences", "documents"), index.names.collections()):
        for field in FILTERED[kind]:
            assert index.client.describe_index(collection, field)["index_type"] == "INVERTED", (kind, field)


def test_a_hybrid_search_makes_five_requests_all_bounded(index: MilvusBackend) -> None:
    searcher = Searcher(index, StandIn())
    searcher.search(SearchRequest("aircraft wings", k=3, mode="hybrid"))  # the first search may refresh the state
    levels = read_levels()
    sent = requests_sent()
    result = searcher.search(SearchRequest("wings of aircraft", k=3, mode="hybrid"))
    # BM25, term statistics, dense, every candidate's sentences, the page's rows; the page starts of aircraft.txt,
    # whose first passage crosses a page; at most one refresh of the state, every half second.
    assert requests_sent() - sent <= 7
    assert result.hits[0].passage_id == "aircraft.txt#0" and result.hits[0].highlights
    asked = read_levels() - levels
    assert set(asked) == {"Bounded"} and 6 <= asked["Bounded"] <= 7


def test_adding_a_document_makes_at_most_twelve_requests(index: MilvusBackend, location: IndexLocation) -> None:
    """What ``semsearch`` does for one PUT: lease, the catalog lookup, the change, the lease released."""
    new = upsert("new.txt", ["A new document about gliders.", "Gliders ride thermals."], seed=12)
    sent = requests_sent()
    with MilvusBackend.writer(location):
        writer = MilvusBackend.open(location)
        writer.recover()
        assert writer.documents(["new.txt"]) == []
        writer.apply(Change(upserts=(new,)))
        assert writer.counts().documents == 4
    assert requests_sent() - sent <= 12


@pytest.mark.parametrize("rows_per_read", [16_000, 1])
def test_term_statistics_are_kept_exact_through_replacements_and_removals(index: MilvusBackend, monkeypatch, rows_per_read: int) -> None:
    """The retired versions' passages are read back whole by doc_key, or (longer than a read holds) by id ranges."""
    monkeypatch.setattr(writes, "_ROWS_PER_READ", rows_per_read)
    new = upsert("aircraft.txt", ["Aircraft wings were redesigned.", "Aircraft engines too."], seed=9)
    index.apply(Change(upserts=(new,), removed=("notes.txt",)))
    texts = [*new.keyword_texts, *SHIPS.keyword_texts]
    expected = passage_terms(texts, SETTINGS.analyzer)
    with index.snapshot() as view:
        statistics = view.term_statistics("aircraft wings hulls notes zeppelin")
    assert dict(statistics.document_frequencies) == {term: expected[term] for term in ("aircraft", "wing", "hull", "note", "zeppelin")}
    assert statistics.passages == len(texts) == 2


def test_rows_that_show_late_never_show_half_a_commit(index: MilvusBackend, location: IndexLocation) -> None:
    """A replica that shows the writer's rows a second late: the writer waits for them before its flip, and for its
    deletes before it stops hiding the old version, so a reader sees the old document or the new, never none or both."""
    writer = MilvusBackend.open(location)
    writer.client = LateWrites(writer.client, delay=1.0)
    new = upsert("ships.txt", ["Ships now sail on hydrofoils."], "1999-01-01", seed=7)
    seen: Counter[tuple[str, ...]] = Counter()
    stop = threading.Event()

    def read() -> None:
        reader = MilvusBackend.open(location)
        while not stop.is_set():
            reader.refresh()
            with reader.snapshot() as view:
                seen[tuple(sorted(p.text for p in view.document_passages("ships.txt")))] += 1

    reading = threading.Thread(target=read)
    reading.start()
    began = time.monotonic()
    try:
        writer.apply(Change(upserts=(new,)))
    finally:
        stop.set()
        reading.join()
    assert time.monotonic() - began >= 2.0  # a second for its rows, a second for its deletes
    assert set(seen) == {(SHIPS_TEXT,), ("Ships now sail on hydrofoils.",)}, seen
    assert stored_rows(index) == 4


def test_a_search_that_began_before_a_commit_keeps_its_rows_for_the_grace(index: MilvusBackend, location: IndexLocation) -> None:
    graced = MilvusBackend.open(_with_options(location, grace_seconds="1.5"))
    with graced.snapshot() as before:
        graced.apply(Change(upserts=(upsert("ships.txt", ["Ships now sail on hydrofoils."], seed=7),)))
        assert [p.text for p in before.document_passages("ships.txt")] == [SHIPS_TEXT]  # a slow search still finds it
    with graced.snapshot() as after:
        assert [p.text for p in after.document_passages("ships.txt")] == ["Ships now sail on hydrofoils."]
    time.sleep(1.6)
    graced.apply(Change(removed=("notes.txt",)))  # the next commit deletes what is past its grace
    assert stored_rows(index) == 4 and graced.counts().passages == 3


def test_two_writers_with_clocks_minutes_apart(index: MilvusBackend, location: IndexLocation) -> None:
    """One is refused with a clear message; nothing is lost or duplicated."""
    control, base = Control(index.client), index_base(location.name)

    def ahead() -> float:
        return time.time() + 300

    # A writer whose clock runs five minutes ahead finds the live holder's claim "expired", watches it, sees it renewed.
    refusal = "renewed it while we watched, so the two machines' clocks differ"
    first, second = Lease(control, base, 1.5, "first:1:aaaaaaaa"), Lease(control, base, 1.5, "ahead:2:bbbbbbbb", clock=ahead)
    with held(first), pytest.raises(IndexLocked, match=refusal), held(second):
        pass

    # A writer paused past its term (its renewals stop) is taken over; when it resumes, its commit is refused.
    # It runs on a connection of its own, as it would on its own machine.
    elsewhere = CountingClient(MilvusClient(uri=location.option("uri")))
    paused = Lease(Control(elsewhere), base, 1.0, "paused:3:cccccccc")
    paused.renew = lambda: None  # type: ignore[method-assign]
    with held(paused):
        stalled = MilvusBackend.open(location, elsewhere)
        staged = stalled.prepare(Change(upserts=(upsert("late.txt", ["Staged before the pause."], seed=11),)))
        with held(Lease(control, base, 1.0, "ahead:4:dddddddd", clock=ahead)):
            taker = MilvusBackend.open(location)
            taker.recover()
            taker.apply(Change(upserts=(upsert("ships.txt", ["Ships now sail on hydrofoils."], seed=7),)))
        with pytest.raises(IndexLocked, match=r"taken over by ahead:4:dddddddd while paused:3:cccccccc \(epoch \d+\) held it"):
            stalled.commit(staged)
        stalled.abandon(staged)
        # Rows it stages after the takeover carry the generation the taker declared void: never seen.
        late = stalled.prepare(Change(upserts=(upsert("later.txt", ["Staged after the takeover."], seed=13),)))
        with pytest.raises(IndexLocked):
            stalled.commit(late)
    reader = MilvusBackend.open(location)
    assert [d.doc_id for d in reader.documents()] == ["aircraft.txt", "notes.txt", "ships.txt"]
    with reader.snapshot() as view:
        ids, _ = view.dense(AIRCRAFT.vectors[0], 100)
        shown = [p.record.passage_id for p in view.passages(ids).values()]
    assert sorted(shown) == ["aircraft.txt#0", "aircraft.txt#1", "notes.txt#0", "ships.txt#0"]
    assert reader.counts().passages == 4 and reader.counts().documents == 3


def test_hnsw_ef_is_never_below_the_limit_and_cluster_options_parse(location: IndexLocation) -> None:
    assert dense_search_params("HNSW", 10)["params"]["ef"] == 256
    assert dense_search_params("HNSW", 1_000)["params"]["ef"] == 1_000
    assert ClusterSettings.parse(None, None, None) == ClusterSettings(1, 1, ("text", "sentences"))
    assert ClusterSettings.parse("4", "2", "none") == ClusterSettings(4, 2, ())
    with pytest.raises(ValueError, match="choose from text, sentences or none"):
        ClusterSettings.parse(None, None, "vectors")
    with pytest.raises(ValueError, match="shards must be a whole number from 1 to 16"):
        ClusterSettings.parse("0", None, None)
    located = locate(f"milvus://127.0.0.1:19530/{location.name}?shards=2&replicas=1&mmap=text&grace_seconds=30")
    assert (located.option("shards"), located.option("mmap"), located.option("grace_seconds")) == ("2", "text", "30")
    for option, refusal in (("grace_seconds=soon", "grace_seconds must be a number"), ("replicas=x", "replicas must be a whole")):
        with pytest.raises(IndexFormatError, match=refusal):
            locate(f"milvus://127.0.0.1:19530/{location.name}?{option}")


def test_a_set_made_with_cluster_options_records_them(location: IndexLocation) -> None:
    options = _with_options(location, shards="2", mmap="sentences")
    backend = MilvusBackend.create(options, SETTINGS)
    backend.publish()
    backend.apply(Change(upserts=(SHIPS, NOTES)))
    reopened = MilvusBackend.open(options)
    assert reopened.cluster == ClusterSettings(2, 1, ("sentences",))
    with reopened.snapshot() as view:
        assert view.dense(SHIPS.vectors[0], 1)[1][0] == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(view.vectors(view.dense(SHIPS.vectors[0], 1)[0]).matrix, SHIPS.vectors, atol=1e-3)


def test_a_rebuild_drops_the_old_set_only_after_the_grace(index: MilvusBackend, location: IndexLocation) -> None:
    graced = _with_options(location, grace_seconds="1")
    rebuilt = MilvusBackend.create(graced, SETTINGS)
    rebuilt.apply(Change(upserts=(NOTES,)))
    began = time.monotonic()
    rebuilt.publish()
    assert time.monotonic() - began >= 1.0
    assert not index.client.has_collection(index.names.passages)
    assert [d.doc_id for d in MilvusBackend.open(location).documents()] == ["notes.txt"]
