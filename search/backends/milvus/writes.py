"""The writer's work on the rows of a set: writing a change's rows, waiting until readers see them, deleting.

``write_rows`` needs only a client, the set's names, a generation and each document's key, so a Ray
worker runs it as well as the backend does: a ``MilvusStage`` (the backend's ``StagedWrites.stage``) is
what the worker is handed (``indexer.ray_ingest``). Rows go to Milvus from where they were embedded, and
what comes back is counts. A worker upserts rather than inserts: its ids are fixed by its slots, so a
task Ray runs again writes the same rows again, not twice.

Readers read at Bounded consistency, so a row inserted a moment ago may not show yet. The writer never
flips the state row before its rows show at that level (``await_count``), and never drops a document
version from the pending list before its deletes show: a reader sees a commit whole or not at all.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from search.backends.contract import DocumentUpsert, StagedRows, iter_chunks
from search.backends.milvus.client import connect
from search.backends.milvus.rows import document_rows, passage_id, passage_rows
from search.backends.milvus.schema import READ_LEVEL, CollectionSet
from search.backends.milvus.terms import passage_terms
from search.errors import SemsearchError
from search.text.analyzer import Analyzer

# How long the writer waits for its rows (or its deletes) to show at the readers' level.
VISIBLE_TIMEOUT_S = 120.0
_ROWS_PER_INSERT = 500
_KEYS_PER_FILTER = 1_000
_ROWS_PER_READ = 16_000
_FIRST_POLL_S = 0.02
_LONGEST_POLL_S = 0.5


@dataclass
class Written:
    """What ``write_rows`` wrote: rows per collection and the documents-per-term counts of its passages."""

    passages: int = 0
    sentences: int = 0
    pieces: int = 0
    terms: Counter[str] = field(default_factory=Counter)

    def add(self, other: Written) -> None:
        self.passages += other.passages
        self.sentences += other.sentences
        self.pieces += other.pieces
        self.terms.update(other.terms)

    def expected(self, names: CollectionSet) -> dict[str, int]:
        return {names.passages: self.passages, names.sentences: self.sentences, names.documents: self.pieces}

    @classmethod
    def of(cls, parts: Iterable[StagedRows]) -> Written:
        total = cls()
        for part in parts:
            total.add(cls(part.rows["passages"], part.rows["sentences"], part.rows["pieces"], Counter(part.terms)))
        return total


@dataclass(frozen=True)
class MilvusStage:
    """Where a change's rows go: its set, its generation, and a document key per slot from ``first_key``. The
    token comes from ``SEMSEARCH_MILVUS_TOKEN`` where the worker runs."""

    uri: str
    names: CollectionSet
    generation: int
    first_key: int
    documents: int
    analyzer: Analyzer

    def write(self, upserts: Sequence[DocumentUpsert], slots: Sequence[int]) -> StagedRows:
        if any(not 0 <= slot < self.documents for slot in slots):
            raise ValueError(f"slots must lie in 0..{self.documents - 1}")
        keys = [self.first_key + slot for slot in slots]
        written = write_rows(connect(self.uri), self.names, upserts, keys, self.generation, self.analyzer, upsert=True)
        rows = {"passages": written.passages, "sentences": written.sentences, "pieces": written.pieces}
        worker = f"{socket.gethostname()}:{os.getpid()}"
        return StagedRows(worker, tuple(u.record.doc_id for u in upserts), written.passages, rows, dict(written.terms))


def write_rows(
    client: Any,
    names: CollectionSet,
    upserts: Sequence[DocumentUpsert],
    doc_keys: Sequence[int],
    generation: int,
    analyzer: Analyzer,
    upsert: bool = False,
) -> Written:
    """Insert (or ``upsert``) the rows of ``upserts`` (document ``i`` under ``doc_keys[i]``) with ``generation``."""
    passages: list[dict] = []
    sentences: list[dict] = []
    documents: list[dict] = []
    for document, doc_key in zip(upserts, doc_keys, strict=True):
        rows, sentence_rows = passage_rows(document, doc_key, generation)
        passages += rows
        sentences += sentence_rows
        documents += document_rows(document, doc_key, generation)
    write = client.upsert if upsert else client.insert
    for collection, rows in ((names.passages, passages), (names.sentences, sentences), (names.documents, documents)):
        for chunk in iter_chunks(rows, _ROWS_PER_INSERT):
            write(collection, chunk)
    terms = passage_terms((row["text"] for row in passages), analyzer)
    return Written(len(passages), len(sentences), len(documents), terms)


def await_count(client: Any, expected: dict[str, int], expression: str, what: str) -> None:
    """Poll each collection until ``expression`` counts ``expected[collection]`` rows at the readers' level."""
    started = time.monotonic()
    pause = _FIRST_POLL_S
    waiting = dict(expected)
    while waiting:
        for collection, count in list(waiting.items()):
            rows = client.query(collection, filter=expression, output_fields=["count(*)"], consistency_level=READ_LEVEL)
            if rows[0]["count(*)"] == count:
                del waiting[collection]
        if not waiting:
            return
        if time.monotonic() - started > VISIBLE_TIMEOUT_S:
            raise SemsearchError(f"Milvus did not show {what} to readers within {VISIBLE_TIMEOUT_S:.0f} s; nothing was committed")
        time.sleep(pause)
        pause = min(pause * 2, _LONGEST_POLL_S)


def delete_where(client: Any, names: CollectionSet, expression: str) -> None:
    for collection in names.collections():
        client.delete(collection, filter=expression)


def delete_versions(client: Any, names: CollectionSet, doc_keys: Sequence[int]) -> None:
    """Delete every row of these document versions, and wait until readers no longer see them."""
    for chunk in iter_chunks(sorted(doc_keys), _KEYS_PER_FILTER):
        delete_where(client, names, f"doc_key in {chunk}")
    for chunk in iter_chunks(sorted(doc_keys), _KEYS_PER_FILTER):
        await_count(client, dict.fromkeys(names.collections(), 0), f"doc_key in {chunk}", "the deletion of replaced rows")


def version_terms(client: Any, names: CollectionSet, versions: Sequence[tuple[int, int]], analyzer: Analyzer) -> Counter[str]:
    """The documents-per-term counts of the passages of these document versions, given as (doc_key, passages),
    read back at most ``_ROWS_PER_READ`` rows a request (Milvus returns no more): whole documents by ``doc_key``,
    a longer one by ranges of its passage ids."""
    filters: list[str] = []
    batch: list[int] = []
    rows = 0
    for doc_key, passages in sorted(versions):
        if passages > _ROWS_PER_READ:
            for first in range(0, passages, _ROWS_PER_READ):
                high = passage_id(doc_key, min(passages, first + _ROWS_PER_READ))
                filters.append(f"id >= {passage_id(doc_key, first)} and id < {high}")
            continue
        if batch and (rows + passages > _ROWS_PER_READ or len(batch) == _KEYS_PER_FILTER):
            filters.append(f"doc_key in {batch}")
            batch, rows = [], 0
        batch.append(doc_key)
        rows += passages
    if batch:
        filters.append(f"doc_key in {batch}")
    counts: Counter[str] = Counter()
    for expression in filters:
        found = client.query(names.passages, filter=expression, output_fields=["text"], consistency_level=READ_LEVEL)
        counts.update(passage_terms((row["text"] for row in found), analyzer))
    return counts
