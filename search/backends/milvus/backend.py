"""The ``milvus`` backend: an index held in Milvus 2.5, with readers made atomic by generations.

Milvus has no multi-row transactions, so a change is made visible by one single-row write:

    prepare  rows of the new document versions are inserted with ``generation = G + 1``: readers, who
             filter ``generation <= G``, do not see them                       -> stage "segment written"
    commit   one upsert of the state row: ``generation = G + 1``, and the doc_keys of the versions it
             replaces or removes listed as ``pending``; readers now filter those out too. This upsert is
             the commit point                                                  -> stage "store committed"
             then, after a grace second for searches that read the state before it, the pending rows are
             deleted and the state row rewritten without them                  -> stage "old rows deleted"
    recover  deletes rows of generations above the committed one and finishes pending deletes
    abandon  deletes the rows of the prepared generation

A document rewritten gets a new ``doc_key`` and new passage ids, so old and new versions never share a
primary key. Readers read the state row once per ``snapshot()`` (Strong consistency) and pass its filter
with every query, so any number of serving replicas see a commit as soon as it is acknowledged.

A full rebuild (``create`` / ``publish``) writes a new set of collections and flips the ``live/<index>``
row of the control collection to it; the previous set stays until the next ``discard_stale``, so replicas
still reading it have time to notice (``superseded``) and reopen.

Known limit: one change may replace or remove at most about 7,000 documents (the ``pending`` list must
fit the state row's 64 KB); the write path splits larger updates into several commits.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pymilvus import MilvusClient, MilvusException
from pymilvus import __version__ as pymilvus_version

from search.backends.checkpoints import OLD_ROWS_DELETED, SEGMENT_WRITTEN, STORE_COMMITTED, StageReporter, quiet, reach
from search.backends.contract import (
    Change,
    CommitResult,
    DocumentSummary,
    IndexCounts,
    IndexLocation,
    RetrievalBackend,
    iter_chunks,
)
from search.backends.milvus.control import Control
from search.backends.milvus.lease import DEFAULT_LEASE_S, Lease, held
from search.backends.milvus.rows import document_record, document_rows, document_summary, passage_rows, sourced_row
from search.backends.milvus.schema import CollectionSet, create_set, drop_set, index_base, parse_index_type
from search.backends.milvus.view import Committed, MilvusView
from search.errors import IndexFormatError, IndexNotFound, SemsearchError
from search.index_settings import FIX_HINT, IndexSettings
from search.records import DocumentRecord

TOKEN_ENV = "SEMSEARCH_MILVUS_TOKEN"
# Options a URL's query may set: ``milvus://HOST:PORT/NAME?index_type=HNSW&lease_seconds=30``.
URL_OPTIONS = ("index_type", "lease_seconds")
# A search that read the state just before a commit keeps seeing the old rows for this long.
READER_GRACE_S = 1.0
_ROWS_PER_INSERT = 500
_KEYS_PER_QUERY = 1_000
_CATALOG_FIELDS = ["id", "doc_key", "generation", "doc_id", "piece", "date", "text", "pages", "meta"]


@dataclass(frozen=True)
class PreparedChange:
    """Rows written under ``generation``, not yet visible; ``state`` is the state row that commits them."""

    generation: int
    state: dict[str, Any]
    retired: tuple[int, ...]
    sources: tuple[tuple[str, str], ...]
    added_passages: int
    removed_passages: int


class MilvusBackend(RetrievalBackend[PreparedChange]):
    """Milvus merges and compacts its own segments and serves loaded collections from memory: it offers none of
    the optional capabilities (maintenance, segment statistics, prefetch)."""

    name = "milvus"
    scheme = "milvus"

    def __init__(self, location: IndexLocation, client: MilvusClient, names: CollectionSet, state: dict[str, Any]) -> None:
        self.location = location
        self.client = client
        self.control = Control(client)
        self.names = names
        self.settings = _settings_of(state, names)
        self.index_type: str = state["index_type"]
        self._state = state

    # --- lifecycle --------------------------------------------------------------------------

    @classmethod
    def locate(cls, url: str) -> IndexLocation:
        """``milvus://HOST:PORT/NAME`` (with ``URL_OPTIONS`` as query parameters); the token comes from
        ``SEMSEARCH_MILVUS_TOKEN``, never from the URL."""
        parts = urlsplit(url)
        name = parts.path.strip("/")
        if parts.username or parts.password:
            raise IndexFormatError(f"put no credentials in a milvus URL; set {TOKEN_ENV} instead")
        if not parts.hostname or not name or "/" in name:
            raise IndexFormatError(f"a milvus index URL is milvus://HOST:PORT/NAME, not {url!r}")
        options: dict[str, str | None] = dict(parse_qsl(parts.query))
        unknown = sorted(set(options) - set(URL_OPTIONS))
        if unknown:
            raise IndexFormatError(f"unknown milvus URL option {unknown[0]!r}; choose from {', '.join(URL_OPTIONS)}")
        try:
            port = parts.port or 19530
        except ValueError:
            raise IndexFormatError(f"a milvus index URL is milvus://HOST:PORT/NAME, not {url!r}") from None
        return IndexLocation(Path(name), cls.name, options | {"uri": f"http://{parts.hostname}:{port}"})

    @classmethod
    def open(cls, location: IndexLocation) -> MilvusBackend:
        client = _connect(location)
        base = index_base(location.name)
        live = Control(client).get(f"live/{base}")
        if live is None:
            raise IndexNotFound(f"no milvus index named {location.name!r} at {location.option('uri')}")
        names = CollectionSet(base, live["suffix"])
        state = Control(client).get(_state_key(names))
        if state is None:
            raise IndexFormatError(f"milvus index {location.name!r} has no state row; {FIX_HINT}")
        return cls(location, client, names, state)

    @classmethod
    def create(cls, location: IndexLocation, settings: IndexSettings) -> MilvusBackend:
        client = _connect(location)
        names = CollectionSet(index_base(location.name), uuid.uuid4().hex[:12])
        index_type = parse_index_type(location.option("index_type"))
        create_set(client, names, settings.dimension, settings.analyzer, index_type)
        state = {
            "settings": dataclasses.replace(settings, backend=cls.name).as_meta(),
            "index_type": index_type,
            "generation": 0,
            "pending": [],
            "next_passage": 1,
            "next_document": 1,
            "documents": 0,
            "passages": 0,
        }
        Control(client).put(_state_key(names), state)
        return cls(location, client, names, state)

    @classmethod
    def writer(cls, location: IndexLocation) -> AbstractContextManager[None]:
        seconds = float(location.option("lease_seconds") or DEFAULT_LEASE_S)
        return held(Lease(Control(_connect(location)), index_base(location.name), seconds))

    @classmethod
    def exists(cls, location: IndexLocation) -> bool:
        return Control(_connect(location)).get(f"live/{index_base(location.name)}") is not None

    @classmethod
    def discard_stale(cls, location: IndexLocation) -> None:
        """Drop every set of this index but the live one: unpublished builds and superseded ones."""
        client = _connect(location)
        control = Control(client)
        base = index_base(location.name)
        live = (control.get(f"live/{base}") or {}).get("suffix")
        for names in CollectionSet.all_of(client, base):
            if names.suffix != live:
                drop_set(client, names)
                control.delete(_state_key(names))

    @classmethod
    def drop(cls, location: IndexLocation) -> None:
        client = _connect(location)
        control = Control(client)
        base = index_base(location.name)
        for names in CollectionSet.all_of(client, base):
            drop_set(client, names)
            control.delete(_state_key(names))
        control.delete(f"live/{base}")

    def publish(self) -> None:
        self.control.put(f"live/{self.names.base}", {"suffix": self.names.suffix})

    def superseded(self) -> bool:
        live = self.control.get(f"live/{self.names.base}")
        return live is None or live["suffix"] != self.names.suffix

    def refresh(self) -> bool:
        state = self._read_state()
        changed = (state["generation"], state["pending"]) != (self._state["generation"], self._state["pending"])
        self._state = state
        return changed

    def caught_up(self) -> bool:
        state = self._read_state()
        return (state["generation"], state["pending"]) == (self._state["generation"], self._state["pending"])

    # --- reads ------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[MilvusView]:
        self._state = self._read_state()
        yield MilvusView(self.client, self.names, self._committed(), self.index_type, self.settings)

    def document(self, doc_id: str) -> DocumentRecord | None:
        expression = f"{self._committed().expression()} and doc_id == {json.dumps(doc_id)}"
        rows = self.client.query(self.names.documents, filter=expression, output_fields=_CATALOG_FIELDS)
        return document_record(rows) if rows else None

    def documents(self, doc_ids: Iterable[str] | None = None) -> list[DocumentSummary]:
        summaries = [document_summary(row) for row in self._catalog_heads(doc_ids, ["doc_id", "date", "meta"])]
        return sorted(summaries, key=lambda summary: summary.doc_id)

    def counts(self) -> IndexCounts:
        """Counts from the state row."""
        state = self._read_state()
        return IndexCounts(state["documents"], state["passages"], f"milvus (pymilvus {pymilvus_version})")

    # --- writes -----------------------------------------------------------------------------

    def prepare(self, change: Change, report: StageReporter = quiet) -> PreparedChange:
        state = self._state = self._read_state()
        generation = state["generation"] + 1
        self._delete_where(f"generation >= {generation}")  # leftovers of a prepare that never committed
        replaced = {
            row["doc_id"]: row
            for row in self._catalog_heads([u.record.doc_id for u in change.upserts] + list(change.removed), ["doc_id", "doc_key", "meta"])
        }
        next_document, next_passage = state["next_document"], state["next_passage"]
        passages, sentences, documents = [], [], []
        for upsert in change.upserts:
            rows, sentence_rows = passage_rows(upsert, next_document, next_passage, generation)
            passages += rows
            sentences += sentence_rows
            documents += document_rows(upsert, next_document, generation)
            next_document, next_passage = next_document + 1, next_passage + len(rows)
        for collection, rows in ((self.names.passages, passages), (self.names.sentences, sentences), (self.names.documents, documents)):
            for chunk in iter_chunks(rows, _ROWS_PER_INSERT):
                self.client.insert(collection, chunk)
        removed_passages = sum(json.loads(row["meta"])["passages"] for row in replaced.values())
        new_state = state | {
            "generation": generation,
            "pending": sorted(row["doc_key"] for row in replaced.values()),
            "next_passage": next_passage,
            "next_document": next_document,
            "documents": state["documents"] + len(change.upserts) - len(replaced),
            "passages": state["passages"] + len(passages) - removed_passages,
        }
        reach(SEGMENT_WRITTEN, report)
        return PreparedChange(generation, new_state, tuple(new_state["pending"]), change.sources, len(passages), removed_passages)

    def commit(self, prepared: PreparedChange, report: StageReporter = quiet) -> CommitResult:
        self.control.put(_state_key(self.names), prepared.state)
        self._state = prepared.state
        reach(STORE_COMMITTED, report)
        self._set_sources(prepared.sources)
        if prepared.retired:
            time.sleep(READER_GRACE_S)
        self._finish_pending()
        reach(OLD_ROWS_DELETED, report)
        return CommitResult(prepared.generation, prepared.added_passages, prepared.removed_passages)

    def abandon(self, prepared: PreparedChange) -> None:
        """Delete a prepared generation that did not commit; one whose state flip landed (the failure came after
        it) is committed and stays."""
        if self._read_state()["generation"] < prepared.generation:
            self._delete_where(f"generation == {prepared.generation}")

    def recover(self) -> None:
        self._state = self._read_state()
        self._delete_where(f"generation > {self._state['generation']}")
        self._finish_pending()

    # --- internals --------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        state = self.control.get(_state_key(self.names))
        if state is None:
            raise IndexFormatError(f"milvus index {self.location.name!r} lost its state row; {FIX_HINT}")
        return state

    def _committed(self) -> Committed:
        return Committed(self._state["generation"], tuple(self._state["pending"]), self._state["passages"])

    def _catalog_heads(self, doc_ids: Iterable[str] | None, fields: list[str]) -> list[dict[str, Any]]:
        """Piece 0 (which carries the stats, hash and title) of each visible document, or of the named ones."""
        visible = f"{self._committed().expression()} and piece == 0"
        if doc_ids is not None:
            return [
                row
                for chunk in iter_chunks(sorted(set(doc_ids)), _KEYS_PER_QUERY)
                for row in self.client.query(
                    self.names.documents, filter=f"{visible} and doc_id in {json.dumps(chunk)}", output_fields=fields
                )
            ]
        iterator = self.client.query_iterator(self.names.documents, batch_size=1_000, filter=visible, output_fields=fields)
        rows: list[dict[str, Any]] = []
        while batch := iterator.next():
            rows.extend(batch)
        iterator.close()
        return rows

    def _set_sources(self, sources: Iterable[tuple[str, str]]) -> None:
        new = dict(sources)
        heads = self._catalog_heads(list(new), _CATALOG_FIELDS)
        if heads:
            self.client.upsert(self.names.documents, [sourced_row(row, new[row["doc_id"]]) for row in heads])

    def _finish_pending(self) -> None:
        """Delete the rows of document versions the last commit retired, then say so in the state row."""
        pending = self._state["pending"]
        if not pending:
            return
        for chunk in iter_chunks(pending, _KEYS_PER_QUERY):
            self._delete_where(f"doc_key in {chunk}")
        self._state = self._state | {"pending": []}
        self.control.put(_state_key(self.names), self._state)

    def _delete_where(self, expression: str) -> None:
        for collection in self.names.collections():
            self.client.delete(collection, filter=expression)


def _connect(location: IndexLocation) -> MilvusClient:
    uri = location.option("uri")
    if not uri:
        raise SemsearchError("the milvus backend needs a server: name the index as milvus://HOST:PORT/NAME")
    try:
        return MilvusClient(uri=uri, token=location.option("token") or os.environ.get(TOKEN_ENV, ""))
    except MilvusException as exc:
        raise SemsearchError(f"cannot reach Milvus at {uri} ({exc.message})") from None


def _settings_of(state: dict[str, Any], names: CollectionSet) -> IndexSettings:
    settings = IndexSettings.from_meta(state.get("settings") or {}, f"{names.name} on milvus")
    if settings.backend != MilvusBackend.name:
        raise IndexFormatError(f"index {names.name} records backend {settings.backend!r}, not milvus; {FIX_HINT}")
    return settings


def _state_key(names: CollectionSet) -> str:
    return f"state/{names.name}"
