"""The retrieval-backend interface: what an engine must do to hold passages and rank them.

A backend owns passages, their vectors and their BM25 statistics together, because a service such
as Milvus holds all three; ranking (``search.ranking.rescore``) asks it for candidates through a ``ReadView``
and never touches its files, tables or collections. The write path hands it a ``Change`` (documents
already chunked and embedded) and drives one commit protocol that a file store and a service can both
honour:

    prepare(change)  -> everything written, nothing visible (new files, generation-tagged rows)
    commit(prepared) -> one atomic step makes the change visible to readers
    abandon(prepared)-> a prepared change that will not be committed leaves nothing behind
    recover()        -> after a crash, finish a committed change or drop an uncommitted one

Backends are chosen by name (``search.backends.registry``); one contract suite (``tests/test_backend_contract.py``)
judges every one of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from search.backends.checkpoints import StageReporter, quiet
from search.index_settings import IndexSettings
from search.records import DocumentRecord, PassageRecord

Ranking = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class IndexLocation:
    """Where an index lives: a folder for the local backend, a name and a server for a service backend.

    ``options`` carries what only some backends need (a server address, a token), by name.
    """

    path: Path
    backend: str = "local"
    options: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The index's name: its folder's name, which a service backend uses to name its collections."""
        return self.path.resolve().name or "default"

    def option(self, name: str) -> str | None:
        return self.options.get(name)

    @classmethod
    def of(cls, index: Path | IndexLocation) -> IndexLocation:
        """A folder alone names a local index."""
        return index if isinstance(index, IndexLocation) else cls(index)


@dataclass(frozen=True)
class Filters:
    """What a request narrows candidates to; every backend applies them before its top-k cut."""

    doc_ids: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None

    def __bool__(self) -> bool:
        return bool(self.doc_ids or self.date_from or self.date_to)


NO_FILTERS = Filters()


@dataclass(frozen=True)
class FileState:
    """What change detection compares: stat first, content hash only when the stat changed."""

    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class NewPassage:
    """A passage of a document being written: its span, where it lies, and its sentences' spans."""

    ordinal: int
    start: int
    end: int
    page: int | None
    page_end: int | None
    section: str | None
    sentences: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class DocumentUpsert:
    """A document with its passages, chunked and embedded, ready to replace any document of the same id.

    ``vectors`` holds, per passage in order, the passage's unit vector followed by one row per sentence;
    ``keyword_texts`` the text each passage is keyword-indexed by (its heading path, then its text).
    """

    record: DocumentRecord
    size: int
    mtime_ns: int
    passages: tuple[NewPassage, ...]
    vectors: np.ndarray
    keyword_texts: tuple[str, ...]

    def first_rows(self) -> list[int]:
        """The row of ``vectors`` holding each passage's own vector."""
        rows, row = [], 0
        for passage in self.passages:
            rows.append(row)
            row += 1 + len(passage.sentences)
        return rows


@dataclass(frozen=True)
class Change:
    """One all-or-nothing update: documents (re)written, documents removed, new stats for unchanged content."""

    upserts: tuple[DocumentUpsert, ...] = ()
    removed: tuple[str, ...] = ()
    touched: tuple[tuple[str, int, int], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removed or self.touched)


@dataclass(frozen=True)
class CommitResult:
    generation: int
    added_passages: int
    removed_passages: int


@dataclass(frozen=True)
class MaintenanceReport:
    """What a backend's own housekeeping (compaction, merging) did."""

    merged_segments: int = 0
    dropped_deleted: int = 0
    segments_after: int = 0


@dataclass(frozen=True)
class BackendStats:
    """Counts for ``/health`` and metrics."""

    documents: int
    passages: int
    segments: int
    deleted_fraction: float
    version: str


@dataclass(frozen=True)
class DocumentSummary:
    doc_id: str
    title: str
    date: str | None
    length: int
    passages: int


@dataclass(frozen=True)
class PassageSpan:
    """Where a candidate lies in its document: what shaping (de-duplication, grouping) needs."""

    document: int
    start: int
    end: int


@dataclass(frozen=True)
class VectorBlocks:
    """Vectors of some passages in one matrix: passage ``ids[i]`` owns rows ``offsets[i]`` to ``offsets[i] + counts[i]``.

    The first row of a block is the passage's own vector; with sentences asked for, its sentences' rows follow.
    Passages gone since the reader's snapshot are absent.
    """

    ids: np.ndarray
    matrix: np.ndarray
    offsets: np.ndarray
    counts: np.ndarray

    @classmethod
    def empty(cls, dimension: int) -> VectorBlocks:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, np.zeros((0, dimension), dtype=np.float32), none, none)

    @classmethod
    def joined(cls, parts: Iterable[VectorBlocks], dimension: int) -> VectorBlocks:
        parts = [part for part in parts if len(part.ids)]
        if not parts:
            return cls.empty(dimension)
        counts = np.concatenate([part.counts for part in parts])
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        return cls(np.concatenate([p.ids for p in parts]), np.vstack([p.matrix for p in parts]), offsets, counts)

    def block(self, position: int) -> np.ndarray:
        first = int(self.offsets[position])
        return self.matrix[first : first + int(self.counts[position])]


@dataclass(frozen=True)
class StoredPassage:
    """A passage as a page of results shows it: its record, text, document title and date, sentence spans
    (absolute offsets) and the offsets where its document's pages start."""

    record: PassageRecord
    document: int
    text: str
    title: str
    date: str | None
    sentences: tuple[tuple[int, int], ...]
    page_starts: tuple[int, ...] = ()


class ReadView(ABC):
    """One search's consistent view of an index: every call answers from the same committed state."""

    @abstractmethod
    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS, exact: bool = False) -> Ranking:
        """Ids and cosines of the ``k`` nearest passages, best first, filters applied before the cut; ``exact``
        searches exhaustively, to measure an approximate index's recall."""

    @abstractmethod
    def keyword(self, query: str, k: int, filters: Filters = NO_FILTERS, documents: bool = False) -> Ranking:
        """Passage ids and BM25 scores, best first: over passages, or with ``documents`` over whole documents,
        each passage of a document carrying its document's score."""

    def keyword_specificity(self, query: str) -> float | None:
        """The BM25 IDF of the query's most specific indexed term over the highest IDF a term can have here
        (``search.text.query_terms.term_specificity``), or None where the engine does not expose its term
        statistics: fusion then weighs the keyword ranking as much as the semantic one."""
        return None

    @abstractmethod
    def spans(self, ids: Iterable[int]) -> dict[int, PassageSpan]:
        """Where each passage lies; ids gone since the snapshot are absent."""

    @abstractmethod
    def vectors(self, ids: Iterable[int], sentences: bool = True) -> VectorBlocks:
        """Each passage's vector, followed by its sentences' vectors when ``sentences``."""

    @abstractmethod
    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        """What a page shows of each passage; ids gone since the snapshot are absent."""

    @abstractmethod
    def document_passages(self, doc_id: str) -> list[StoredPassage]:
        """Every passage of a document, in order; empty when there is no such document."""


class RetrievalBackend(ABC):
    """An index held by one engine: its documents, passages, vectors and keyword statistics."""

    name: ClassVar[str]
    settings: IndexSettings

    # --- lifecycle --------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def open(cls, location: IndexLocation) -> RetrievalBackend:
        """The live index at ``location``; ``IndexNotFound`` or ``IndexFormatError`` (with the fix) otherwise."""

    @classmethod
    @abstractmethod
    def create(cls, location: IndexLocation, settings: IndexSettings) -> RetrievalBackend:
        """A new, empty index that readers do not see until ``publish``."""

    @classmethod
    @abstractmethod
    def writer(cls, location: IndexLocation) -> AbstractContextManager[None]:
        """Hold the one-writer guarantee for ``location``; a second writer gets ``IndexLocked`` naming the holder."""

    @classmethod
    @abstractmethod
    def exists(cls, location: IndexLocation) -> bool:
        """Whether a live index is at ``location``."""

    @classmethod
    @abstractmethod
    def drop(cls, location: IndexLocation) -> None:
        """Remove the index at ``location`` and everything it holds (throw-away evaluation indexes)."""

    @classmethod
    @abstractmethod
    def discard_stale(cls, location: IndexLocation) -> None:
        """Remove what interrupted full builds left; the caller holds the writer."""

    @abstractmethod
    def publish(self) -> None:
        """Make this created index the live one at its location, atomically replacing the previous one."""

    @abstractmethod
    def superseded(self) -> bool:
        """Whether another index has been published at this location since this one was opened."""

    @abstractmethod
    def refresh(self) -> bool:
        """Follow what writers committed since the last call; False when nothing changed."""

    @abstractmethod
    def caught_up(self) -> bool:
        """Whether this reader holds everything writers have committed (a writer's own reader after ``commit``)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def prefetch(self) -> None:
        """Bring the index into memory before the first searches, where it fits (a server's warm-up)."""

    # --- reads ------------------------------------------------------------------------------

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[ReadView]:
        """A read view for one search."""

    @abstractmethod
    def file_states(self, doc_ids: Iterable[str] | None = None) -> dict[str, FileState]:
        """Stat and hash of every document, or of the named ones."""

    @abstractmethod
    def document(self, doc_id: str) -> DocumentRecord | None: ...

    @abstractmethod
    def documents(self, doc_ids: Iterable[str] | None = None) -> list[DocumentSummary]:
        """Every document (or the named ones that exist), without its text, by id."""

    @abstractmethod
    def stats(self) -> BackendStats: ...

    # --- writes: the commit protocol (the caller holds ``writer``) ----------------------------

    @abstractmethod
    def prepare(self, change: Change, report: StageReporter = quiet) -> object:
        """Write everything ``change`` needs where readers do not see it yet; returns what ``commit`` takes."""

    @abstractmethod
    def commit(self, prepared: object, report: StageReporter = quiet) -> CommitResult:
        """Make a prepared change visible to readers in one atomic step."""

    @abstractmethod
    def abandon(self, prepared: object) -> None:
        """Remove what a prepared change wrote, when it will not be committed; a change whose commit point was
        reached before the failure is committed and must be left alone."""

    @abstractmethod
    def recover(self) -> None:
        """Bring the index to a committed state after a crash: finish what committed, drop what did not."""

    @abstractmethod
    def maintain(self, force: bool = False, report: StageReporter = quiet) -> MaintenanceReport:
        """The backend's own housekeeping (merging segments, dropping deleted vectors), by its own policy."""

    def seal(self, report: StageReporter = quiet) -> MaintenanceReport:
        """Once on a fresh index after its last change, before it is published and while nobody reads it: what the
        build's bounded commits left may be reorganised for searching (the local backend merges its segments into
        one). By default the backend's own housekeeping."""
        return self.maintain(report=report)

    def apply(self, change: Change, report: StageReporter = quiet) -> CommitResult:
        """prepare, then commit; a failure between them abandons the prepared work."""
        prepared = self.prepare(change, report)
        try:
            return self.commit(prepared, report)
        except BaseException:
            self.abandon(prepared)
            raise


def iter_chunks(values: list, size: int) -> Iterator[list]:
    """Bounded pieces of a list, for statements and requests that limit how many values one call takes."""
    for first in range(0, len(values), size):
        yield values[first : first + size]
