"""The ``milvus`` backend: an index held in Milvus 2.5, with readers made atomic by generations.

Milvus has no multi-row transactions, so a change is made visible by one row write:

    prepare  rows of the new document versions are inserted with ``generation = G + 1``: readers, who
             filter ``generation <= G``, do not see them; the writer waits until they show at the readers'
             consistency level (Bounded)                                        -> stage "segment written"
    commit   re-read the claims and the state with the term statistics the change touches, and refuse if
             another writer took the index (fencing, ``lease``); then one upsert of the changed term rows
             and the state row: ``generation = G + 1``, and the doc_keys of the versions it replaces or
             removes listed as ``pending``, which readers filter out too. The state row is the commit point
                                                                                -> stage "store committed"
             document versions retired more than ``grace_seconds`` ago are deleted, and once the deletes
             show, the state stops listing them                                 -> stage "old rows deleted"
    recover  deletes rows of generations above the committed one (or void) and the retired versions due
    abandon  deletes the rows of the prepared generation, unless its flip landed

A document rewritten gets a new ``doc_key`` and new ids, so old and new versions never share a primary
key. Readers hold the state row read at ``open`` or their last ``refresh`` (a searcher refreshes at most
every 0.5 s) and pass its filter with every request: a search costs no read of the state, and replicas see
a commit within one refresh. Replaced rows stay for ``grace_seconds`` (10 by default), longer than the
slowest search plus the Bounded staleness of a replica, so a search that began before a commit finds
everything it saw.

A full rebuild (``create`` / ``publish``) writes a new set of collections and flips the ``live/<index>``
row to it; the previous set is released and dropped a grace later, when replicas still reading it have
noticed (``superseded``) and reopened.

Known limit: the versions pending deletion must fit the state row's 64 KB, about 7,000 documents. A
commit that would overflow it first waits out the grace of the oldest pending versions and deletes them;
one change alone may still replace or remove at most that many documents.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from pymilvus import __version__ as pymilvus_version

from search.backends.checkpoints import OLD_ROWS_DELETED, SEGMENT_WRITTEN, STORE_COMMITTED, StageReporter, quiet, reach
from search.backends.contract import Change, CommitResult, DocumentSummary, IndexCounts, IndexLocation, RetrievalBackend
from search.backends.milvus import sets, terms
from search.backends.milvus.catalog import CATALOG_FIELDS, HEAD_FIELDS, catalog_heads, set_sources
from search.backends.milvus.control import Control
from search.backends.milvus.lease import Lease, held, held_lease
from search.backends.milvus.location import cluster_of, connect_to, grace_of, lease_of, parse_url
from search.backends.milvus.rows import document_record, document_summary
from search.backends.milvus.schema import (
    READ_LEVEL,
    VARCHAR_BYTES,
    WRITER_LEVEL,
    ClusterSettings,
    CollectionSet,
    create_set,
    index_base,
    parse_index_type,
)
from search.backends.milvus.sets import build_key, build_scope, live_key
from search.backends.milvus.terms import Vocabularies
from search.backends.milvus.view import Committed, MilvusView
from search.backends.milvus.writes import MilvusStage, Written, await_count, delete_versions, delete_where, version_terms, write_rows
from search.errors import IndexFormatError, IndexLocked, IndexNotFound
from search.index_settings import FIX_HINT, IndexSettings
from search.records import DocumentRecord

# The layout of the sets this version writes; a live set of another layout is rebuilt.
FORMAT = 3
# Document keys skipped when a writer takes over from one that may still be writing (``lease``).
DOCUMENT_KEY_RANGE = 1 << 24


@dataclass(frozen=True)
class PreparedChange:
    """Rows written under ``generation``, not yet visible; ``state`` is the state row that commits them
    (without the term statistics, which the commit counts from ``term_changes``)."""

    generation: int
    base_generation: int
    state: dict[str, Any]
    retired: tuple[int, ...]
    sources: tuple[tuple[str, str], ...]
    written: Written
    term_changes: dict[str, int]
    removed_passages: int


class MilvusBackend(RetrievalBackend[PreparedChange]):
    """Also ``StagedWrites``: Ray workers write rows themselves (``stage``). Milvus merges and compacts its own
    segments and serves loaded collections from memory: no maintenance, segment statistics or prefetch."""

    name = "milvus"
    scheme = "milvus"

    def __init__(self, location: IndexLocation, client: Any, names: CollectionSet, state: dict[str, Any], state_key: str) -> None:
        self.location = location
        self.client = client
        self.control = Control(client)
        self.names = names
        self.settings = _settings_of(state, names)
        self.index_type: str = state["index_type"]
        self.cluster = ClusterSettings.from_meta(state.get("cluster"))
        self.grace_s = grace_of(location)
        self._state = state
        self._state_key = state_key
        self._heads: dict[str, dict[str, Any]] = {}
        self._stage: tuple[dict[str, Any], MilvusStage] | None = None
        self._vocabularies = Vocabularies(self.control, names.name)

    # --- lifecycle --------------------------------------------------------------------------

    @classmethod
    def locate(cls, url: str) -> IndexLocation:
        """``milvus://HOST:PORT/NAME`` with ``URL_OPTIONS`` as query parameters (``location``)."""
        return parse_url(url, cls.name)

    @classmethod
    def open(cls, location: IndexLocation, client: Any = None) -> MilvusBackend:
        """The live index; ``client`` stands for another machine's connection in tests of concurrent writers."""
        client = client or connect_to(location)
        base = index_base(location.name)
        lease = held_lease(client, base)
        state = lease.state if lease is not None else Control(client).get(live_key(base))
        if state is None:
            raise IndexNotFound(f"no milvus index named {location.name!r} at {location.option('uri')}")
        if state.get("format") != FORMAT:
            raise IndexFormatError(f"milvus index {location.name!r} has an older layout; {FIX_HINT}")
        return cls(location, client, CollectionSet(base, state["suffix"]), state, live_key(base))

    @classmethod
    def create(cls, location: IndexLocation, settings: IndexSettings) -> MilvusBackend:
        client = connect_to(location)
        names = CollectionSet(index_base(location.name), uuid.uuid4().hex[:12])
        index_type = parse_index_type(location.option("index_type"))
        cluster = cluster_of(location)
        create_set(client, names, settings.dimension, settings.analyzer, index_type, cluster)
        state = {
            "format": FORMAT,
            "suffix": names.suffix,
            "settings": dataclasses.replace(settings, backend=cls.name).as_meta(),
            "index_type": index_type,
            "cluster": cluster.as_meta(),
            "generation": 0,
            "epoch": 0,
            "pending": [],
            "void": [],
            "next_document": 1,
            "documents": 0,
            "passages": 0,
        }
        Control(client).put(build_key(names), state, build_scope(names.base))
        return cls(location, client, names, state, build_key(names))

    @classmethod
    def writer(cls, location: IndexLocation) -> AbstractContextManager[None]:
        seconds = lease_of(location)
        return held(Lease(Control(connect_to(location)), index_base(location.name), seconds))

    @classmethod
    def exists(cls, location: IndexLocation) -> bool:
        return Control(connect_to(location)).get(live_key(index_base(location.name))) is not None

    @classmethod
    def discard_stale(cls, location: IndexLocation) -> None:
        """Drop every set of this index but the live one: unpublished builds, and superseded ones once their
        grace has passed."""
        client = connect_to(location)
        control = Control(client)
        base = index_base(location.name)
        lease = held_lease(client, base)
        live = lease.state if lease is not None else control.get(live_key(base), WRITER_LEVEL)
        sets.discard(client, control, lease, base, live, grace_of(location))

    @classmethod
    def drop(cls, location: IndexLocation) -> None:
        client = connect_to(location)
        control = Control(client)
        base = index_base(location.name)
        for names in CollectionSet.all_of(client, base):
            sets.drop(client, control, names)
        control.delete(live_key(base))

    def publish(self) -> None:
        """Flip the live row to this set; the set it replaces is released and dropped after the grace."""
        lease = self._lease()
        old = self.control.get(live_key(self.names.base), WRITER_LEVEL)
        state = self._state | {"retired_sets": [*(old or {}).get("retired_sets", []), *([[old["suffix"], time.time()]] if old else [])]}
        sets.put_live(self.control, lease, self.names.base, state)
        self.control.delete(self._state_key)
        self._state, self._state_key = state, live_key(self.names.base)
        if old is not None:
            self._state = sets.retire(self.client, self.control, lease, self.names, state, self.grace_s)

    def superseded(self) -> bool:
        live = self.control.get(live_key(self.names.base))
        return live is None or live["suffix"] != self.names.suffix

    def refresh(self) -> bool:
        state = self._read_state()
        changed = _visible_part(state) != _visible_part(self._state)
        self._state = state
        return changed

    def caught_up(self) -> bool:
        return _visible_part(self._read_state()) == _visible_part(self._state)

    # --- reads ------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[MilvusView]:
        """A view of the state read at ``open`` or the last ``refresh``: no request of its own."""
        yield MilvusView(self.client, self.names, self._committed(), self.index_type, self.settings, self._vocabularies)

    def document(self, doc_id: str) -> DocumentRecord | None:
        expression = f"{self._committed().expression()} and doc_id == {json.dumps(doc_id)}"
        rows = self.client.query(self.names.documents, filter=expression, output_fields=CATALOG_FIELDS, consistency_level=READ_LEVEL)
        return document_record(rows) if rows else None

    def documents(self, doc_ids: Iterable[str] | None = None) -> list[DocumentSummary]:
        summaries = [document_summary(row) for row in self._catalog_heads(doc_ids, HEAD_FIELDS)]
        return sorted(summaries, key=lambda summary: summary.doc_id)

    def counts(self) -> IndexCounts:
        """Counts from the state row (the writer's own, while this process holds the lease)."""
        state = self._state if self._lease() is not None else self._read_state()
        return IndexCounts(state["documents"], state["passages"], f"milvus (pymilvus {pymilvus_version})")

    # --- writes -----------------------------------------------------------------------------

    def stage(self, documents: int) -> MilvusStage:
        """Reserve a generation and ``documents`` document keys for rows Ray workers write (``StagedWrites``); the
        change naming what they wrote (``Change.staged``) commits them."""
        state, generation = self._next_generation()
        if self._lease() is None:
            delete_where(self.client, self.names, f"generation >= {generation}")
        stage = MilvusStage(
            self.location.option("uri") or "", self.names, generation, state["next_document"], documents, self.settings.analyzer
        )
        self._stage = (state, stage)
        return stage

    def prepare(self, change: Change, report: StageReporter = quiet) -> PreparedChange:
        if change.staged:
            if self._stage is None:
                raise ValueError("a change of staged rows needs this backend's stage() first")
            (state, stage), self._stage = self._stage, None
            generation, reserved, written = stage.generation, stage.documents, Written.of(change.staged)
            upserted = [doc_id for part in change.staged for doc_id in part.doc_ids]
        else:
            state, generation = self._next_generation()
            if self._lease() is None:  # used without the writer's lease (tests, tools): what an earlier prepare left goes first
                delete_where(self.client, self.names, f"generation >= {generation}")
            reserved, written = len(change.upserts), None
            upserted = [u.record.doc_id for u in change.upserts]
        heads = self._heads_of(upserted + list(change.removed))
        retired = sorted(row["doc_key"] for row in heads.values())
        first = state["next_document"]
        try:
            if written is None:
                written = write_rows(
                    self.client, self.names, change.upserts, range(first, first + reserved), generation, self.settings.analyzer
                )
            await_count(self.client, written.expected(self.names), f"generation == {generation}", "the new rows")
        except BaseException:
            self._delete_generation(generation)
            raise
        term_changes = written.terms.copy()
        if retired:
            versions = [(row["doc_key"], json.loads(row["meta"])["passages"]) for row in heads.values()]
            term_changes.subtract(version_terms(self.client, self.names, versions, self.settings.analyzer))
        removed_passages = sum(json.loads(row["meta"])["passages"] for row in heads.values())
        new_state = state | {
            "generation": generation,
            "next_document": first + reserved,
            "documents": state["documents"] + len(upserted) - len(heads),
            "passages": state["passages"] + written.passages - removed_passages,
        }
        reach(SEGMENT_WRITTEN, report)
        return PreparedChange(
            generation, state["generation"], new_state, tuple(retired), change.sources, written, dict(term_changes), removed_passages
        )

    def commit(self, prepared: PreparedChange, report: StageReporter = quiet) -> CommitResult:
        lease = self._lease()
        keys = [terms.term_key(self.names.name, term) for term, change in prepared.term_changes.items() if change]
        rows = self.control.rows([self._state_key, *keys], scope=lease.scope if lease else None, level=WRITER_LEVEL)
        if lease is not None:
            lease.check(rows)
        current = rows.get(self._state_key) or {}
        if current.get("generation") != prepared.base_generation:
            raise IndexLocked(
                f"index {self.location.name} was committed by another writer (generation {current.get('generation')}) meanwhile"
            )
        # Versions retired by earlier commits whose grace has passed go now, unseen: the state still hides them.
        room = len(json.dumps([time.time(), list(prepared.retired)])) + 2
        writer = {"epoch": lease.epoch, "writer": lease.holder} if lease else {}
        state = self._finish_due(prepared.state | writer, room)
        now = time.time()
        if prepared.retired:
            state = state | {"pending": [*state["pending"], [now, list(prepared.retired)]]}
        changed = terms.updated_rows(self.names.name, rows, prepared.term_changes, prepared.generation, now, self.grace_s)
        self.control.put_rows([*changed, (self._state_key, self._state_scope(), state)])
        self._set_state(state)
        reach(STORE_COMMITTED, report)
        set_sources(self.client, self.names, self._committed(), prepared.sources)
        finished = self._finish_due(state)
        if finished != state:
            self.control.put(self._state_key, finished, self._state_scope())
            self._set_state(finished)
        reach(OLD_ROWS_DELETED, report)
        return CommitResult(prepared.generation, prepared.written.passages, prepared.removed_passages)

    def abandon(self, prepared: PreparedChange) -> None:
        """Delete a prepared generation that did not commit; one whose state flip landed (the failure came after
        it) is committed and stays."""
        state = self.control.get(self._state_key, WRITER_LEVEL) or {}
        if state.get("generation", 0) < prepared.generation or prepared.generation in state.get("void", []):
            self._delete_generation(prepared.generation)
        self._heads.clear()
        self._stage = None

    def recover(self) -> None:
        """Delete what a crashed writer left: rows above the committed generation (or void), and replaced
        versions whose grace has passed. A writer whose predecessor released the lease has nothing to delete; one
        that took the index over from a writer that may still be running first declares that writer's next
        generation void and moves past its document keys, so nothing it writes later can show or collide."""
        lease = self._lease()
        state = self._state if lease is not None else self._read_state(WRITER_LEVEL)
        if lease is None or lease.took_over:
            void = state["void"]
            delete_where(self.client, self.names, f"generation > {state['generation']}" + (f" or generation in {void}" if void else ""))
        if lease is not None and lease.took_over:
            keys = (state["next_document"] // DOCUMENT_KEY_RANGE + 1) * DOCUMENT_KEY_RANGE
            skipped = max([state["generation"], *state["void"]]) + 1
            state = state | {"void": [*state["void"], skipped], "next_document": keys, "epoch": lease.epoch, "writer": lease.holder}
            self.control.put(self._state_key, state, self._state_scope())
            lease.took_over = ()
        finished = self._finish_due(state)
        if finished != state:
            self.control.put(self._state_key, finished, self._state_scope())
        self._set_state(finished)

    # --- internals --------------------------------------------------------------------------

    def _lease(self) -> Lease | None:
        return held_lease(self.client, self.names.base)

    def _delete_generation(self, generation: int) -> None:
        """Delete the rows of a generation that will not commit; if that fails, the lease is kept at exit so
        the next writer takes over and deletes them (``Lease.dirty``)."""
        try:
            delete_where(self.client, self.names, f"generation == {generation}")
        except BaseException:
            lease = self._lease()
            if lease is not None:
                lease.dirty = True
            raise

    def _read_state(self, level: str = READ_LEVEL) -> dict[str, Any]:
        """The committed state row; a superseded set keeps the state it was left with."""
        state = self.control.get(self._state_key, level)
        if state is None:
            if self._state_key.startswith("live/"):
                return self._state
            raise IndexFormatError(f"milvus index {self.location.name!r} lost its state row; {FIX_HINT}")
        return state if state["suffix"] == self.names.suffix else self._state

    def _set_state(self, state: dict[str, Any]) -> None:
        self._state = state
        self._heads.clear()
        lease = self._lease()
        if lease is not None and self._state_key.startswith("live/"):
            lease.state = state

    def _state_scope(self) -> str:
        return "live" if self._state_key.startswith("live/") else build_scope(self.names.base)

    def _next_generation(self) -> tuple[dict[str, Any], int]:
        """The state a change starts from and the generation it writes: past the committed one and any void."""
        state = self._state if self._lease() is not None else self._read_state(WRITER_LEVEL)
        return state, max([state["generation"], *state["void"]]) + 1

    def _committed(self) -> Committed:
        pending = tuple(key for _, keys in self._state["pending"] for key in keys)
        return Committed(self._state["generation"], pending, self._state["passages"], tuple(self._state["void"]))

    def _heads_of(self, doc_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Catalog heads of the named documents that exist, from what ``documents`` read under the lease."""
        if all(doc_id in self._heads for doc_id in doc_ids):
            return {doc_id: self._heads[doc_id] for doc_id in doc_ids if self._heads[doc_id]}
        return {row["doc_id"]: row for row in self._catalog_heads(doc_ids, HEAD_FIELDS)}

    def _catalog_heads(self, doc_ids: Iterable[str] | None, fields: list[str]) -> list[dict[str, Any]]:
        """``catalog.catalog_heads``; the heads a holder of the lease looked up are kept for its next ``prepare``."""
        rows = catalog_heads(self.client, self.names, self._committed(), doc_ids, fields)
        if doc_ids is not None and fields == HEAD_FIELDS and self._lease() is not None:
            found = {row["doc_id"]: row for row in rows}
            self._heads.update({doc_id: found.get(doc_id, {}) for doc_id in doc_ids})
        return rows

    def _finish_due(self, state: dict[str, Any], room: int = 0) -> dict[str, Any]:
        """Delete the document versions retired more than the grace ago; the state without them. With ``room``,
        first wait out the grace of the oldest until the state row has that many bytes to spare."""
        while state["pending"] and len(json.dumps(state)) + room > VARCHAR_BYTES:
            time.sleep(max(0.0, state["pending"][0][0] + self.grace_s - time.time()))
            state = self._finish_due(state)
        now = time.time()
        due = [entry for entry in state["pending"] if entry[0] + self.grace_s <= now]
        if not due:
            return state
        delete_versions(self.client, self.names, [key for _, keys in due for key in keys])
        return state | {"pending": [entry for entry in state["pending"] if entry not in due]}


def _settings_of(state: dict[str, Any], names: CollectionSet) -> IndexSettings:
    settings = IndexSettings.from_meta(state.get("settings") or {}, f"{names.name} on milvus")
    if settings.backend != MilvusBackend.name:
        raise IndexFormatError(f"index {names.name} records backend {settings.backend!r}, not milvus; {FIX_HINT}")
    return settings


def _visible_part(state: dict[str, Any]) -> tuple:
    return state["suffix"], state["generation"], json.dumps(state["pending"]), json.dumps(state["void"])
