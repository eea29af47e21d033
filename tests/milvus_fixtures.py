"""Milvus test documents and indexes, as a pytest plugin (``conftest``): small hand-built documents with seeded
8-dimensional unit vectors, so each test states exactly what it indexes, on the session's milvus-lite server.

Indexes of the ``location`` fixture keep replaced rows for no grace (``grace_seconds=0``), so a test sees
them deleted at once; tests of the grace and of late visibility set their own.
"""

from __future__ import annotations

import bisect
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.backends.contract import Change, DocumentUpsert, Filters, IndexLocation, NewPassage
from search.backends.milvus.backend import MilvusBackend
from search.backends.milvus.control import CONTROL
from search.backends.registry import locate
from search.encoding.embedder import Embedded, EncodeProgress, counted
from search.index_settings import IndexSettings
from search.records import DocumentRecord
from search.text.analyzer import Analyzer, with_context

DIMENSION = 8
SETTINGS = IndexSettings("test-model", DIMENSION, {"max_tokens": 128}, Analyzer(), backend="milvus")
ROOT = Path(__file__).resolve().parent.parent


def unit_vectors(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def upsert(
    doc_id: str, sentences: list[str], date: str | None = None, seed: int = 0, section: str | None = None, pages: tuple[int, ...] = ()
) -> DocumentUpsert:
    """A document whose passages are consecutive pairs of ``sentences``."""
    text = " ".join(sentences)
    spans, position = [], 0
    for sentence in sentences:
        spans.append((position, position + len(sentence)))
        position += len(sentence) + 1
    passages = []
    for ordinal, first in enumerate(range(0, len(spans), 2)):
        own = tuple(spans[first : first + 2])
        page, page_end = (bisect.bisect_right(pages, own[0][0]), bisect.bisect_right(pages, own[-1][1] - 1)) if pages else (None, None)
        passages.append(NewPassage(ordinal, own[0][0], own[-1][1], page, page_end, section, own))
    rows = sum(1 + len(p.sentences) for p in passages)
    record = DocumentRecord(doc_id, f"Title of {doc_id}", date, text, f"sha-{doc_id}-{seed}", pages)
    keyword = tuple(with_context(p.section, text[p.start : p.end]) for p in passages)
    return DocumentUpsert(record, tuple(passages), unit_vectors(rows, seed), keyword)


AIRCRAFT = upsert(
    "aircraft.txt",
    ["Wings of aircraft generate lift.", "Flutter appears at high speed.", "Boundary layers thicken downstream."],
    "2001-05-01",
    seed=1,
    section="Aero",
    pages=(0, 40),
)
SHIPS = upsert("ships.txt", ["Hulls of ships resist waves.", "Propellers cavitate when spinning fast."], "1999-01-01", seed=2)
NOTES = upsert("notes.txt", ["Undated notes mention aircraft once.", "Nothing else here."], None, seed=3)


@pytest.fixture
def location(milvus_uri: str) -> IndexLocation:
    return locate(f"milvus://{milvus_uri.removeprefix('http://')}/idx-{uuid.uuid4().hex[:8]}?grace_seconds=0")


@pytest.fixture
def index(location: IndexLocation) -> MilvusBackend:
    backend = MilvusBackend.create(location, SETTINGS)
    backend.publish()
    backend.apply(Change(upserts=(AIRCRAFT, SHIPS, NOTES)))
    return backend


def ids_of(backend: MilvusBackend, doc_id: str) -> list[int]:
    with backend.snapshot() as view:
        ids, _ = view.dense(np.ones(DIMENSION, dtype=np.float32), 100, Filters(doc_ids=(doc_id,)))
    return sorted(ids.tolist())


def visible_doc_ids(backend: MilvusBackend, query_vector: np.ndarray) -> set[str]:
    with backend.snapshot() as view:
        ids, _ = view.dense(query_vector, 100)
        return {p.record.doc_id for p in view.passages(ids).values()}


def stored_rows(backend: MilvusBackend, collection: str | None = None) -> int:
    return backend.client.query(collection or backend.names.passages, filter="", output_fields=["count(*)"])[0]["count(*)"]


class StandIn:
    """An ``Embedder`` for these 8-dimensional tests: every query is embedded as the aircraft passage's vector."""

    name = "test-model"
    dimension = DIMENSION
    max_tokens = 128
    quantize: str | None = None
    encoder = "stand-in"

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(text.split()) for text in texts]

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.tile(AIRCRAFT.vectors[0], (len(texts), 1))

    def embed(self, texts: list[str], progress: EncodeProgress | None = None) -> Embedded:
        return counted(self, texts)

    def encode_query(self, text: str, alone: bool = False) -> np.ndarray:
        return AIRCRAFT.vectors[0]


class LateWrites:
    """A client whose writes to the data collections reach Milvus ``delay`` seconds after they are acknowledged,
    in order: what a reader on a replica that lags behind sees. Control rows are written at once."""

    def __init__(self, client: Any, delay: float) -> None:
        self.client = client
        self.delay = delay
        self.pending: queue.Queue = queue.Queue()
        threading.Thread(target=self._apply, daemon=True).start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def insert(self, collection: str, data: Any, **options: Any) -> Any:
        return self._later("insert", collection, data=data, **options)

    def upsert(self, collection: str, data: Any, **options: Any) -> Any:
        return self._later("upsert", collection, data=data, **options)

    def delete(self, collection: str, **options: Any) -> Any:
        return self._later("delete", collection, **options)

    def _later(self, method: str, collection: str, **options: Any) -> Any:
        if collection == CONTROL:
            return getattr(self.client, method)(collection, **options)
        self.pending.put((time.monotonic() + self.delay, method, collection, options))
        return {}

    def _apply(self) -> None:
        while True:
            due, method, collection, options = self.pending.get()
            time.sleep(max(0.0, due - time.monotonic()))
            getattr(self.client, method)(collection, **options)
            self.pending.task_done()
