"""The retrieval-backend contract, in three small roles and a few optional capabilities.

A backend owns passages, their vectors and their keyword statistics together, because a service such
as Milvus holds all three. Ranking (``search.ranking``) asks it for candidates through a ``ReadView``
and never touches its files, tables or collections; everything computable from what a view returns
(term specificity, grouping by document, highlights) is computed there, once, for every backend.

Roles every backend fills:

- ``IndexLifecycle``: where indexes live and how they come and go: ``locate`` (its own URL scheme),
  ``open``, ``create`` then ``publish``, ``exists``, ``drop``, ``discard_stale``, and the ``writer``
  guarantee (one writer per index).
- ``IndexReader``: follows writers (``refresh``, ``caught_up``, ``superseded``) and hands out ``ReadView``
  snapshots; lists its documents and counts.
- ``IndexWriter``: one commit protocol that a file store and a service can both honour:

      prepare(change)  -> everything written, nothing visible (new files, generation-tagged rows)
      commit(prepared) -> one atomic step makes the change visible to readers
      abandon(prepared)-> a prepared change that will not be committed leaves nothing behind
      recover()        -> after a crash, finish a committed change or drop an uncommitted one

Optional capabilities are protocols a backend implements or not, found with ``isinstance`` and never
faked: ``Maintainable`` (merging, sealing), ``SegmentStatistics``, ``Prefetchable``, ``StagedWrites`` on a backend;
``DocumentKeywordSearch``, ``TermVocabulary``, ``ExactDenseSearch`` and ``NativeHybridSearch`` on a view.

Backends are found by URL scheme (``search.backends.registry``). One contract suite
(``tests/test_backend_contract.py``) judges every one of them, including the in-memory reference backend
in ``tests/memory_backend.py``, which is the contract's executable documentation.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Generic, Protocol, Self, TypeVar, runtime_checkable

import numpy as np

from search.backends.checkpoints import StageReporter, quiet
from search.index_settings import IndexSettings
from search.records import DocumentRecord, PassageRecord

Ranking = tuple[np.ndarray, np.ndarray]
"""Passage ids (int64) and their scores, best first."""

NO_RANKING: Ranking = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


@dataclass(frozen=True)
class IndexLocation:
    """Where an index lives, as the backend that owns its URL scheme parsed it.

    ``path`` is the folder of a local index; a service backend names its index by ``path.name``.
    ``options`` carries what only that backend reads (a server address, an index type), by name; secrets
    come from the environment, never from a URL that may be logged.
    """

    path: Path
    backend: str = "local"
    options: Mapping[str, str | None] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The index's name: its folder's name, which a service backend uses to name its collections."""
        return self.path.resolve().name if self.backend == "local" else self.path.name or "default"

    def option(self, name: str) -> str | None:
        return self.options.get(name)

    @classmethod
    def of(cls, index: Path | IndexLocation) -> IndexLocation:
        """A folder alone names a local index."""
        return index if isinstance(index, IndexLocation) else cls(index)


@dataclass(frozen=True)
class Filters:
    """What a request narrows candidates to; every backend applies them before its top-k cut.

    ``types`` are file extensions as the document id spells them (``pdf`` takes ``a.pdf``, not ``b.PDF``; see
    ``document_type``), ``folder`` a path prefix of the document id (``notes`` takes ``notes/a.md`` and
    ``notes/2024/b.md``, not ``notes2/c.md``). ``admits`` is the meaning every backend's query must match.
    """

    doc_ids: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    types: tuple[str, ...] = ()
    folder: str | None = None

    def __bool__(self) -> bool:
        return bool(self.doc_ids or self.date_from or self.date_to or self.types or self.folder)

    @property
    def folder_range(self) -> tuple[str, str] | None:
        """The document ids under ``folder`` as a half-open range: ``"a/" <= doc_id < "a0"`` ("0" follows "/"),
        which an index on ids answers and which needs no wildcard escaping."""
        return None if self.folder is None else (f"{self.folder}/", f"{self.folder}0")

    def admits(self, doc_id: str, date: str | None) -> bool:
        """Whether a document with this id and date passes every filter."""
        return (
            (not self.doc_ids or doc_id in self.doc_ids)
            and (not self.date_from or (date is not None and date >= self.date_from))
            and (not self.date_to or (date is not None and date <= self.date_to))
            and (not self.types or document_type(doc_id) in self.types)
            and (self.folder is None or doc_id.startswith(f"{self.folder}/"))
        )


_EXTENSION = re.compile(r"[^/]\.([A-Za-z0-9]{1,16})$")


def document_type(doc_id: str) -> str | None:
    """A document's type: its file extension as spelled (``pdf``, ``md``, ``Debian`` for ``README.Debian``);
    None for a name without one (``README``). Only letters and digits count, so a backend can match a type
    by the id's ending without wildcard characters."""
    match = _EXTENSION.search(doc_id)
    return match[1] if match else None


NO_FILTERS = Filters()


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
class StagedRows:
    """What a worker process wrote under a ``Stage``: its documents, their passages, the rows it wrote (by the
    backend's own names) and how many of the passages hold each term. ``worker`` names the process."""

    worker: str
    doc_ids: tuple[str, ...]
    passages: int
    rows: Mapping[str, int]
    terms: Mapping[str, int]


@dataclass(frozen=True)
class Change:
    """One all-or-nothing update: documents (re)written, documents removed, and new ``source`` strings for
    documents whose content did not change (``DocumentRecord.source``: the writer's own bookkeeping).

    ``staged``: documents whose rows worker processes already wrote under the backend's ``Stage``
    (``StagedWrites``); the change commits them without their rows passing through the writer."""

    upserts: tuple[DocumentUpsert, ...] = ()
    removed: tuple[str, ...] = ()
    sources: tuple[tuple[str, str], ...] = ()
    staged: tuple[StagedRows, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.upserts or self.removed or self.sources or self.staged)


@dataclass(frozen=True)
class CommitResult:
    generation: int
    added_passages: int
    removed_passages: int


@dataclass(frozen=True)
class IndexCounts:
    """What ``/health`` and metrics report of any index."""

    documents: int
    passages: int
    version: str


@dataclass(frozen=True)
class DocumentSummary:
    """A document without its text; ``sha256`` and ``source`` are what the writer stored with it."""

    doc_id: str
    title: str
    date: str | None
    length: int
    passages: int
    sha256: str = ""
    source: str = ""


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
        kept = [part for part in parts if len(part.ids)]
        if not kept:
            return cls.empty(dimension)
        counts = np.concatenate([part.counts for part in kept])
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        return cls(np.concatenate([p.ids for p in kept]), np.vstack([p.matrix for p in kept]), offsets, counts)

    @classmethod
    def stacked(cls, ids: Sequence[int], blocks: Sequence[np.ndarray], dimension: int) -> VectorBlocks:
        """Passage ``ids[i]`` owning the rows of ``blocks[i]``."""
        if not ids:
            return cls.empty(dimension)
        counts = np.array([len(block) for block in blocks], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        return cls(np.asarray(ids, dtype=np.int64), np.vstack(blocks), offsets, counts)

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


@dataclass(frozen=True)
class TermStatistics:
    """How many committed passages hold each asked term (absent: none), and how many passages there are."""

    document_frequencies: Mapping[str, int]
    passages: int


# --- the reader's view ---------------------------------------------------------------------------


class ReadView(ABC):
    """One search's consistent view of an index: every call answers from the same committed state."""

    @abstractmethod
    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        """Ids and cosines of the ``k`` nearest passages, best first, filters applied before the cut."""

    @abstractmethod
    def keyword(self, query: str, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        """Passage ids and BM25 scores, best first, the query analyzed by the index's analyzer."""

    @abstractmethod
    def term_statistics(self, query: str) -> TermStatistics:
        """For each analyzed term the keyword search of ``query`` uses, how many committed passages hold it; and
        how many passages there are. Ranking derives the query's term specificity from these."""

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


@runtime_checkable
class DocumentKeywordSearch(Protocol):
    """A view that scores whole documents by BM25 (a document index of its own). Without it, a search grouped
    by document ranks each document by its best passage."""

    def keyword_documents(self, query: str, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        """Passage ids, each carrying its document's BM25 score, documents best first."""
        ...


@dataclass(frozen=True)
class Vocabulary:
    """Every analyzed term of an index's committed passages and how many passages hold it."""

    passages: Mapping[str, int]

    # Not a field: built on first use, once per vocabulary (a frozen dataclass allows cached_property).
    @cached_property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.passages)


@runtime_checkable
class TermVocabulary(Protocol):
    """A view that lists its index's analyzed terms with their passage counts: what typo correction corrects a
    query word to (``search.ranking.typos``). On a view without it, no query word is corrected."""

    def vocabulary(self) -> Vocabulary: ...


@runtime_checkable
class ExactDenseSearch(Protocol):
    """A view that can search exhaustively beside its approximate index, to measure that index's recall."""

    def dense_exact(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> Ranking: ...


@runtime_checkable
class NativeHybridSearch(Protocol):
    """A view whose engine fuses dense and BM25 itself, for comparison runs (``semsearch eval``)."""

    def hybrid(self, vector: np.ndarray, query: str, k: int, *, ranker: str = "rrf", depth: int = 100) -> Ranking:
        """Passages ranked by the engine's own fusion (``ranker``), each side contributing its ``depth`` best."""
        ...


# --- the backend's roles -------------------------------------------------------------------------


class IndexLifecycle(ABC):
    """Where a backend's indexes live: parsing its URLs, opening, creating, publishing and removing them."""

    name: ClassVar[str]
    scheme: ClassVar[str | None] = None
    """The URL scheme naming this backend's indexes (``milvus`` in ``milvus://HOST:PORT/NAME``); None: paths."""

    @classmethod
    def locate(cls, url: str) -> IndexLocation:
        """The index a URL of this backend's scheme names; ``IndexFormatError`` says what is wrong with it."""
        return IndexLocation(Path(url), cls.name)

    @classmethod
    @abstractmethod
    def open(cls, location: IndexLocation) -> Self:
        """The live index at ``location``; ``IndexNotFound`` or ``IndexFormatError`` (with the fix) otherwise."""

    @classmethod
    @abstractmethod
    def create(cls, location: IndexLocation, settings: IndexSettings) -> Self:
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


class IndexReader(ABC):
    """An open index as searches see it: snapshots, the writer's commits followed, the catalog."""

    settings: IndexSettings

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[ReadView]:
        """A read view for one search."""

    @abstractmethod
    def refresh(self) -> bool:
        """Follow what writers committed since the last call; False when nothing changed."""

    @abstractmethod
    def caught_up(self) -> bool:
        """Whether this reader holds everything writers have committed (a writer's own reader after ``commit``)."""

    @abstractmethod
    def document(self, doc_id: str) -> DocumentRecord | None: ...

    @abstractmethod
    def documents(self, doc_ids: Iterable[str] | None = None) -> list[DocumentSummary]:
        """Every document (or the named ones that exist), without its text, by id."""

    @abstractmethod
    def counts(self) -> IndexCounts: ...

    def close(self) -> None:  # noqa: B027 - optional on purpose: a reader that holds nothing open has nothing to release
        """Release what this reader holds open (files, connections); nothing by default."""


PreparedT = TypeVar("PreparedT")
T = TypeVar("T")


class IndexWriter(ABC, Generic[PreparedT]):
    """The commit protocol; the caller holds ``IndexLifecycle.writer``."""

    @abstractmethod
    def prepare(self, change: Change, report: StageReporter = quiet) -> PreparedT:
        """Write everything ``change`` needs where readers do not see it yet; returns what ``commit`` takes."""

    @abstractmethod
    def commit(self, prepared: PreparedT, report: StageReporter = quiet) -> CommitResult:
        """Make a prepared change visible to readers in one atomic step."""

    @abstractmethod
    def abandon(self, prepared: PreparedT) -> None:
        """Remove what a prepared change wrote, when it will not be committed; a change whose commit point was
        reached before the failure is committed and must be left alone."""

    @abstractmethod
    def recover(self) -> None:
        """Bring the index to a committed state after a crash: finish what committed, drop what did not."""

    def apply(self, change: Change, report: StageReporter = quiet) -> CommitResult:
        """prepare, then commit; a failure between them abandons the prepared work."""
        prepared = self.prepare(change, report)
        try:
            return self.commit(prepared, report)
        except BaseException:
            self.abandon(prepared)
            raise


class RetrievalBackend(IndexLifecycle, IndexReader, IndexWriter[PreparedT]):
    """An index held by one engine: the three roles together, as a registry row names them."""


# --- optional capabilities of a backend ----------------------------------------------------------


@dataclass(frozen=True)
class MaintenanceReport:
    """What a backend's own housekeeping (compaction, merging) did."""

    merged_segments: int = 0
    dropped_deleted: int = 0
    segments_after: int = 0


@runtime_checkable
class Maintainable(Protocol):
    """A backend that reorganises its own storage on request (the local backend merges segments); a service
    that does its own housekeeping does not offer it."""

    def maintain(self, force: bool = False, report: StageReporter = quiet) -> MaintenanceReport:
        """Housekeeping by the backend's own policy (everything worth it when ``force``); the caller holds the writer."""
        ...

    def seal(self, report: StageReporter = quiet) -> MaintenanceReport:
        """Once on a fresh index after its last change, before it is published: reorganise what the build's
        bounded commits left for searching."""
        ...


@dataclass(frozen=True)
class SegmentCounts:
    segments: int
    deleted_fraction: float


@runtime_checkable
class SegmentStatistics(Protocol):
    """A backend whose storage is segments it manages itself, with vectors of deleted passages still held."""

    def segment_counts(self) -> SegmentCounts: ...


class Stage(Protocol):
    """Where the rows of one change go, handed to worker processes (picklable): slot ``i`` of ``documents``
    reserved for the ``i``-th document of the change."""

    documents: int

    def write(self, upserts: Sequence[DocumentUpsert], slots: Sequence[int]) -> StagedRows:
        """Write these documents' rows (``upserts[i]`` into ``slots[i]``), unseen until the change commits; a task
        retried with the same slots writes the same rows again, not twice."""
        ...


@runtime_checkable
class StagedWrites(Protocol):
    """A backend whose rows worker processes write themselves, a build's driver only committing them: ``stage``
    reserves room for a change of ``documents`` documents, workers write through the ``Stage``, and the ``Change``
    naming what they returned (``Change.staged``) goes through prepare and commit like any other. The caller holds
    the writer; one stage at a time, committed or abandoned before the next."""

    def stage(self, documents: int) -> Stage: ...


@runtime_checkable
class Prefetchable(Protocol):
    """A backend whose index can be read into memory ahead of the first searches (a server's warm-up)."""

    def prefetch(self) -> None: ...


def iter_chunks(values: Sequence[T], size: int) -> Iterator[list[T]]:
    """Bounded pieces of a list, for statements and requests that limit how many values one call takes."""
    for first in range(0, len(values), size):
        yield list(values[first : first + size])
