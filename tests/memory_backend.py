"""The reference backend: the whole contract in memory, with numpy vectors and a plain BM25.

It is the contract's executable documentation and the proof that a backend is one module plus one
registry row: the tests register it (``registry.register``) and the contract suite runs against it as
against the local and Milvus backends. Indexes live in this process, named ``memory://NAME``.

Each commit builds a new immutable ``_State`` and swaps one reference, so a view holds the state it
started with (readers never see half a commit) and a prepared change is invisible until that swap.
Of the optional capabilities it offers only ``TermVocabulary`` (typo correction): a search grouped by
document ranks documents by their best passage, and nothing is maintained, prefetched or counted in segments.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from search.backends.checkpoints import SEGMENT_WRITTEN, STORE_COMMITTED, StageReporter, quiet, reach
from search.backends.contract import (
    NO_FILTERS,
    NO_RANKING,
    Change,
    CommitResult,
    DocumentSummary,
    Filters,
    IndexCounts,
    IndexLocation,
    PassageSpan,
    Ranking,
    ReadView,
    RetrievalBackend,
    StoredPassage,
    TermStatistics,
    VectorBlocks,
    Vocabulary,
)
from search.errors import IndexFormatError, IndexLocked, IndexNotFound
from search.index_settings import IndexSettings
from search.records import DocumentRecord, PassageRecord
from search.text.query_terms import bm25_idf

SCHEME = "memory"
# BM25 as Lucene and tantivy score it.
_K1, _B = 1.2, 0.75


@dataclass(frozen=True)
class _Passage:
    stored: StoredPassage
    vectors: np.ndarray
    terms: Counter[str]


@dataclass(frozen=True)
class _State:
    """One committed state: documents by id (with their key and passage ids) and passages by id."""

    generation: int = 0
    documents: dict[str, tuple[DocumentRecord, int, tuple[int, ...]]] = field(default_factory=dict)
    passages: dict[int, _Passage] = field(default_factory=dict)
    next_key: int = 1


class _Index:
    """A named index: its settings and the reference to its committed state."""

    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self.state = _State()


_LIVE: dict[str, _Index] = {}
_WRITERS: dict[str, threading.Lock] = {}
_REGISTRY_LOCK = threading.Lock()


class MemoryView(ReadView):
    def __init__(self, state: _State, settings: IndexSettings) -> None:
        self._state = state
        self._settings = settings

    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        ids = self._allowed(filters)
        if not ids or k < 1:
            return NO_RANKING
        cosines = np.array([float(self._state.passages[pid].vectors[0] @ vector) for pid in ids], dtype=np.float32)
        return _top(np.array(ids, dtype=np.int64), cosines, k)

    def keyword(self, query: str, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        wanted = Counter(self._settings.analyzer.terms(query))
        ids = self._allowed(filters)
        passages = self._state.passages
        if not wanted or not ids or k < 1:
            return NO_RANKING
        count = len(passages)
        average = sum(p.terms.total() for p in passages.values()) / count
        idf = {term: bm25_idf(self._frequency(term), count) for term in wanted}
        scores = []
        for pid in ids:
            terms = passages[pid].terms
            norm = _K1 * (1 - _B + _B * terms.total() / average)
            scores.append(sum(wanted[t] * idf[t] * terms[t] * (_K1 + 1) / (terms[t] + norm) for t in wanted if terms[t]))
        found = np.array(scores, dtype=np.float32)
        matching = found > 0
        return _top(np.array(ids, dtype=np.int64)[matching], found[matching], k)

    def term_statistics(self, query: str) -> TermStatistics:
        terms = dict.fromkeys(self._settings.analyzer.terms(query))
        return TermStatistics({term: self._frequency(term) for term in terms}, len(self._state.passages))

    def vocabulary(self) -> Vocabulary:
        return Vocabulary(Counter(term for passage in self._state.passages.values() for term in passage.terms))

    def spans(self, ids: Iterable[int]) -> dict[int, PassageSpan]:
        found = self._found(ids)
        return {pid: PassageSpan(p.stored.document, p.stored.record.start, p.stored.record.end) for pid, p in found.items()}

    def vectors(self, ids: Iterable[int], sentences: bool = True) -> VectorBlocks:
        found = self._found(ids)
        blocks = [p.vectors if sentences else p.vectors[:1] for p in found.values()]
        return VectorBlocks.stacked(list(found), blocks, self._settings.dimension)

    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        return {pid: p.stored for pid, p in self._found(ids).items()}

    def document_passages(self, doc_id: str) -> list[StoredPassage]:
        entry = self._state.documents.get(doc_id)
        return [self._state.passages[pid].stored for pid in entry[2]] if entry else []

    def _found(self, ids: Iterable[int]) -> dict[int, _Passage]:
        passages = self._state.passages
        return {pid: passages[pid] for pid in map(int, ids) if pid in passages}

    def _frequency(self, term: str) -> int:
        return sum(1 for p in self._state.passages.values() if p.terms[term])

    def _allowed(self, filters: Filters) -> list[int]:
        return [pid for record, _key, pids in self._state.documents.values() if filters.admits(record.doc_id, record.date) for pid in pids]


class MemoryBackend(RetrievalBackend[_State]):
    name = SCHEME
    scheme = SCHEME

    def __init__(self, location: IndexLocation, index: _Index) -> None:
        self.location = location
        self.settings = index.settings
        self._index = index
        self._state = index.state

    # --- lifecycle --------------------------------------------------------------------------

    @classmethod
    def locate(cls, url: str) -> IndexLocation:
        name = url.removeprefix(f"{SCHEME}://").strip("/")
        if not name or "/" in name:
            raise IndexFormatError(f"a memory index URL is {SCHEME}://NAME, not {url!r}")
        return IndexLocation(Path(name), cls.name)

    @classmethod
    def open(cls, location: IndexLocation) -> MemoryBackend:
        index = _LIVE.get(location.name)
        if index is None:
            raise IndexNotFound(f"no memory index named {location.name!r}")
        return cls(location, index)

    @classmethod
    def create(cls, location: IndexLocation, settings: IndexSettings) -> MemoryBackend:
        return cls(location, _Index(replace(settings, backend=cls.name)))

    @classmethod
    @contextmanager
    def writer(cls, location: IndexLocation) -> Iterator[None]:
        with _REGISTRY_LOCK:
            lock = _WRITERS.setdefault(location.name, threading.Lock())
        if not lock.acquire(blocking=False):
            raise IndexLocked(f"memory index {location.name!r} is being written by another writer in this process")
        try:
            yield
        finally:
            lock.release()

    @classmethod
    def exists(cls, location: IndexLocation) -> bool:
        return location.name in _LIVE

    @classmethod
    def drop(cls, location: IndexLocation) -> None:
        _LIVE.pop(location.name, None)

    @classmethod
    def discard_stale(cls, location: IndexLocation) -> None:
        """Nothing to discard: an unpublished index lives only as long as the backend that created it."""

    def publish(self) -> None:
        _LIVE[self.location.name] = self._index

    def superseded(self) -> bool:
        return _LIVE.get(self.location.name) is not self._index

    # --- reads ------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[MemoryView]:
        yield MemoryView(self._state, self.settings)

    def refresh(self) -> bool:
        changed = self._state is not self._index.state
        self._state = self._index.state
        return changed

    def caught_up(self) -> bool:
        return self._state is self._index.state

    def document(self, doc_id: str) -> DocumentRecord | None:
        entry = self._state.documents.get(doc_id)
        return entry[0] if entry else None

    def documents(self, doc_ids: Iterable[str] | None = None) -> list[DocumentSummary]:
        documents = self._state.documents
        wanted = sorted(documents if doc_ids is None else set(doc_ids) & set(documents))
        return [_summary(*documents[doc_id]) for doc_id in wanted]

    def counts(self) -> IndexCounts:
        state = self._index.state
        return IndexCounts(len(state.documents), len(state.passages), f"{SCHEME}/{state.generation}")

    # --- writes -----------------------------------------------------------------------------

    def prepare(self, change: Change, report: StageReporter = quiet) -> _State:
        """The state after ``change``, built beside the committed one."""
        base = self._index.state
        documents, passages = dict(base.documents), dict(base.passages)
        for doc_id in [*change.removed, *(u.record.doc_id for u in change.upserts)]:
            for pid in documents.pop(doc_id, (None, 0, ()))[2]:
                passages.pop(pid, None)
        key, next_pid = base.next_key, max(base.passages, default=0) + 1
        for upsert in change.upserts:
            record, added = upsert.record, []
            for passage, first, text in zip(upsert.passages, upsert.first_rows(), upsert.keyword_texts):
                stored = StoredPassage(
                    PassageRecord(
                        f"{record.doc_id}#{passage.ordinal}",
                        record.doc_id,
                        passage.start,
                        passage.end,
                        passage.page,
                        passage.page_end,
                        passage.section,
                        next_pid,
                    ),
                    key,
                    record.text[passage.start : passage.end],
                    record.title,
                    record.date,
                    passage.sentences,
                    record.pages,
                )
                block = upsert.vectors[first : first + 1 + len(passage.sentences)].astype(np.float32)
                passages[next_pid] = _Passage(stored, block, Counter(self.settings.analyzer.terms(text)))
                added.append(next_pid)
                next_pid += 1
            documents[record.doc_id] = (record, key, tuple(added))
            key += 1
        for doc_id, source in change.sources:
            if doc_id in documents:
                record, doc_key, pids = documents[doc_id]
                documents[doc_id] = (replace(record, source=source), doc_key, pids)
        reach(SEGMENT_WRITTEN, report)
        return _State(base.generation + 1, documents, passages, key)

    def commit(self, prepared: _State, report: StageReporter = quiet) -> CommitResult:
        base = self._index.state
        if prepared.generation != base.generation + 1:
            raise IndexFormatError("a prepared change was overtaken by another commit")
        self._index.state = self._state = prepared
        reach(STORE_COMMITTED, report)
        added = len(set(prepared.passages) - set(base.passages))
        return CommitResult(prepared.generation, added, len(set(base.passages) - set(prepared.passages)))

    def abandon(self, prepared: _State) -> None:
        """Nothing was written where readers look: the prepared state is dropped with its reference."""

    def recover(self) -> None:
        """Nothing survives a crash of this process, and nothing half-done survives anything else."""


def _top(ids: np.ndarray, scores: np.ndarray, k: int) -> Ranking:
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[order], scores[order]


def _summary(record: DocumentRecord, _key: int, pids: tuple[int, ...]) -> DocumentSummary:
    return DocumentSummary(record.doc_id, record.title, record.date, record.length, len(pids), record.sha256, record.source)
