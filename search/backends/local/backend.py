"""The local backend: FAISS segments, float16 vector files, tantivy BM25 and a SQLite store in one folder.

The store is the single commit point. ``prepare`` writes the change's vectors to fresh files that no
reader sees; ``commit`` names them, swaps the documents' rows and journals the keyword work in one
store transaction, then brings the keyword indexes in step. A crash between the two leaves a journal
entry, replayed by the next writer or reader (``recover``); a crash before the transaction leaves
unnamed files, removed by the next writer. ``refresh`` picks up what another process committed at the
cost of what changed.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from search.backends.checkpoints import KEYWORD_COMMITTED, SEGMENT_WRITTEN, STORE_COMMITTED, StageReporter, quiet, reach
from search.backends.contract import (
    Change,
    CommitResult,
    DocumentSummary,
    IndexCounts,
    IndexLocation,
    MaintenanceReport,
    NewPassage,
    RetrievalBackend,
    SegmentCounts,
)
from search.backends.local.compaction import compact
from search.backends.local.faiss_segments import FaissSegments
from search.backends.local.layout import (
    FORMAT_VERSION,
    KEYWORD_DOCUMENTS_DIR,
    KEYWORD_PASSAGES_DIR,
    SEGMENTS_DIR,
    STORE_FILE,
    VECTORS_DIR,
    hold_writer_lock,
    index_exists,
    live_folder,
    new_folder,
    publish,
    remove_stale_folders,
)
from search.backends.local.page_cache import read_into_page_cache
from search.backends.local.parts import LocalParts
from search.backends.local.store import LocalCommit, PassageLocation, Segment, Store
from search.backends.local.term_index import KeywordIndex, TermIndex
from search.backends.local.vector_files import VectorFiles, write_vector_file
from search.backends.local.vector_store import PreparedSegment, VectorStore
from search.backends.local.view import LocalView
from search.errors import IndexFormatError, IndexLocked
from search.index_settings import FIX_HINT, IndexSettings
from search.records import DocumentRecord
from search.text.analyzer import with_context

# About 10 MB of recently looked-up passage locations.
_CACHED_LOCATIONS = 50_000


@dataclass(frozen=True)
class _Prepared:
    """A change whose vectors are on disk under fresh names, with the ids it will take."""

    change: Change
    commit: LocalCommit


class LocalBackend(RetrievalBackend[_Prepared]):
    """Also ``Maintainable`` (segments merged, tombstones dropped), ``SegmentStatistics`` and ``Prefetchable``."""

    name = "local"

    def __init__(self, folder: Path, index_dir: Path) -> None:
        self.folder = folder
        self.index_dir = index_dir
        self.store = Store(folder / STORE_FILE)
        meta = self.store.meta()
        if meta.get("format_version") != FORMAT_VERSION:
            raise IndexFormatError(
                f"index at {folder} has format {meta.get('format_version')}, this version reads {FORMAT_VERSION}; {FIX_HINT}"
            )
        self.settings = IndexSettings.from_meta(meta, f"store in {folder}")
        if self.settings.backend != self.name:
            raise IndexFormatError(f"index at {index_dir} belongs to the {self.settings.backend!r} backend; {FIX_HINT}")
        self.vectors: VectorStore = FaissSegments(folder / SEGMENTS_DIR, self.settings.dimension)
        self.vector_files = VectorFiles(folder / VECTORS_DIR, {})
        self.passage_terms: KeywordIndex = TermIndex(folder / KEYWORD_PASSAGES_DIR)
        self.document_terms: KeywordIndex = TermIndex(folder / KEYWORD_DOCUMENTS_DIR)
        self._state: tuple[int, int] | None = None
        self._refresh_lock = threading.Lock()
        self._locations: dict[int, PassageLocation] = {}
        self.refresh()

    # --- lifecycle --------------------------------------------------------------------------

    @classmethod
    def open(cls, location: IndexLocation) -> LocalBackend:
        backend = cls(live_folder(location.path), location.path)
        if backend.keyword_pending():
            # A writer killed between its store and keyword commits left a journal: replay it unless a writer
            # is busy (that writer replays it itself).
            try:
                with hold_writer_lock(location.path):
                    backend.replay_keyword_journal()
            except IndexLocked:
                pass
        return backend

    @classmethod
    def create(cls, location: IndexLocation, settings: IndexSettings) -> LocalBackend:
        folder = new_folder(location.path)
        store = Store(folder / STORE_FILE, create=True)
        store.initialize(
            {**settings.as_meta(), "format_version": FORMAT_VERSION, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
        )
        store.close()
        return cls(folder, location.path)

    @classmethod
    def writer(cls, location: IndexLocation) -> AbstractContextManager[None]:
        return hold_writer_lock(location.path)

    @classmethod
    def exists(cls, location: IndexLocation) -> bool:
        return index_exists(location.path)

    @classmethod
    def drop(cls, location: IndexLocation) -> None:
        shutil.rmtree(location.path, ignore_errors=True)

    @classmethod
    def discard_stale(cls, location: IndexLocation) -> None:
        remove_stale_folders(location.path)

    def publish(self) -> None:
        self.store.close()
        self.folder = publish(self.index_dir, self.folder)
        self.store = Store(self.folder / STORE_FILE)
        remove_stale_folders(self.index_dir)

    def superseded(self) -> bool:
        return live_folder(self.index_dir) != self.folder

    def close(self) -> None:
        self.store.close()

    def prefetch(self) -> None:
        read_into_page_cache(self.folder)

    @property
    def generation(self) -> int:
        return self._state[0] if self._state else 0

    def keyword_pending(self) -> bool:
        return bool(self._state and self._state[1])

    def refresh(self) -> bool:
        """Open what was committed since the last call; one caller refreshes while the others keep searching."""
        state = self.store.state()
        if state == self._state or not self._refresh_lock.acquire(blocking=self._state is None):
            return False
        try:
            state = self._open_listed_files()
            if self._state is not None:
                self.passage_terms.reload()
                self.document_terms.reload()
            self._state = state
        finally:
            self._refresh_lock.release()
        return True

    def _open_listed_files(self) -> tuple[int, int]:
        """Open the segments and vector files of one committed state, and return that state.

        A writer unlinks the files it retired (merged segments after a compaction commits; vector files no
        passage points at, which it forgets from the store after a commit without a new generation), so a
        listing read just before can name a file that is already gone: then the listing has moved on and the
        newer one is opened instead. A listed file missing while the listing stands still is damage, and its
        error goes to the caller.
        """
        while True:
            listing = self._listing()
            state, segments, tombstones, vector_files = listing
            try:
                self.vectors.open([(s.id, s.file, s.kind) for s in segments], tombstones)
                self.vector_files.update_names(vector_files)
                return state
            except IndexFormatError:
                if self._listing() == listing:
                    raise

    def _listing(self) -> tuple[tuple[int, int], list[Segment], dict[int, int], dict[int, str]]:
        """The state and the files it names, read in one snapshot."""
        with self.store.snapshot():
            return self.store.state(), self.store.segments(), self.store.tombstones(), self.store.vector_files()

    def caught_up(self) -> bool:
        """Whether this reader holds everything committed to the store."""
        return self._state == self.store.state() and not self.keyword_pending()

    # --- reads ------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[LocalView]:
        # One read transaction for the whole query: a writer committing meanwhile must not remove a passage
        # between the moment it is ranked and the moment its text is read.
        with self.store.snapshot():
            yield LocalView(self.parts())

    def parts(self) -> LocalParts:
        return LocalParts(
            self.folder, self.settings, self.store, self.vectors, self.vector_files, self.passage_terms, self.document_terms, self.locations
        )

    def document(self, doc_id: str) -> DocumentRecord | None:
        return self.store.document(doc_id)

    def documents(self, doc_ids: Iterable[str] | None = None) -> list[DocumentSummary]:
        return self.store.document_summaries(doc_ids)

    def counts(self) -> IndexCounts:
        documents, passages = self.store.counts()
        return IndexCounts(documents, passages, f"{self.folder.name}/{self.generation}")

    def segment_counts(self) -> SegmentCounts:
        held = self.vectors.size()
        dead = len(self.store.tombstones())
        return SegmentCounts(len(self.store.segments()), dead / held if held else 0.0)

    def locations(self, ids: list[int]) -> dict[int, PassageLocation]:
        """Where passages lie, from recent lookups where possible.

        A passage's location never changes (ids are not reused, vector files are written once), so a cached
        entry cannot be wrong; it can outlive its passage, which is then dropped when the page is read. The
        cache is emptied when full: memory follows recent queries, not the collection.
        """
        cache = self._locations
        found = {pid: location for pid in ids if (location := cache.get(pid)) is not None}
        missing = [pid for pid in ids if pid not in found]
        if missing:
            fresh = self.store.locations(missing)
            if len(cache) + len(fresh) > _CACHED_LOCATIONS:
                cache.clear()
            cache.update(fresh)
            found.update(fresh)
        return found

    # --- writes -----------------------------------------------------------------------------

    def prepare(self, change: Change, report: StageReporter = quiet) -> _Prepared:
        meta = self.store.meta()
        replaced = [u.record.doc_id for u in change.upserts]
        old_keys = self.store.document_keys([*change.removed, *replaced])
        next_document, next_passage = int(meta["next_document"]), int(meta["next_passage"])
        documents: list[tuple[int, DocumentRecord]] = []
        passages: list[tuple[int, int, NewPassage, int]] = []
        rows: list[np.ndarray] = []
        vector_rows = 0
        for offset, upsert in enumerate(change.upserts):
            key = next_document + offset
            documents.append((key, upsert.record))
            for passage, first in zip(upsert.passages, upsert.first_rows()):
                passages.append((next_passage + len(passages), key, passage, vector_rows + first))
            rows.append(upsert.vectors)
            vector_rows += len(upsert.vectors)
        segment: PreparedSegment | None = None
        vector_file: tuple[str, int] | None = None
        if passages:
            matrix = np.vstack(rows)
            vector_file = (write_vector_file(self.folder / VECTORS_DIR, matrix), len(matrix))
            ids = np.array([pid for pid, *_ in passages], dtype=np.int64)
            segment = self.vectors.prepare(self.folder / SEGMENTS_DIR, ids, matrix[[row for *_, row in passages]])
        reach(SEGMENT_WRITTEN, report)
        commit = LocalCommit(
            segment,
            vector_file,
            documents,
            passages,
            sorted(old_keys.values()),
            list(change.sources),
            next_document + len(documents),
            next_passage + len(passages),
        )
        return _Prepared(change, commit)

    def commit(self, prepared: _Prepared, report: StageReporter = quiet) -> CommitResult:
        removed = len(self.store.passage_ids_of_documents(prepared.commit.removed_documents))
        generation = self.store.commit_change(prepared.commit)
        reach(STORE_COMMITTED, report)
        self.replay_keyword_journal()
        reach(KEYWORD_COMMITTED, report)
        self._remove_unused_vector_files()
        self.refresh()
        return CommitResult(generation, len(prepared.commit.passages), removed)

    def abandon(self, prepared: _Prepared) -> None:
        self._remove_unnamed_files()

    def recover(self) -> None:
        self.replay_keyword_journal()
        self._remove_unnamed_files()

    def maintain(self, force: bool = False, report: StageReporter = quiet) -> MaintenanceReport:
        return compact(self.parts(), self.refresh, force, report)

    def seal(self, report: StageReporter = quiet) -> MaintenanceReport:
        """One segment for the whole fresh index: a search probes each segment at 4 sqrt(its cells), so the
        sealed segments of bounded commits would cost more than one of their size (at 2,000,000 passages in
        50,000-passage segments, 27 % of the vectors scanned against 11 %)."""
        return compact(self.parts(), self.refresh, force=True, report=report, whole=True)

    def replay_keyword_journal(self) -> int:
        """Bring the keyword indexes in step with the store after a writer died between the two commits.

        Safe to repeat (every added key is deleted first); the caller holds the writer lock.
        """
        entries = self.store.journal()
        analyzer = self.settings.analyzer
        for entry in entries:
            passages = self.store.passages(entry.added_passages)
            texts = self.store.document_texts({p.document for p in passages.values()} | set(entry.added_documents))
            self.passage_terms.apply(
                [(pid, p.document, " ".join(analyzer.terms(with_context(p.record.section, p.text)))) for pid, p in passages.items()],
                entry.removed_passages,
            )
            self.document_terms.apply(
                [(key, key, " ".join(analyzer.terms(texts[key][1]))) for key in entry.added_documents if key in texts],
                entry.removed_documents,
            )
        if entries:
            self.store.clear_journal([entry.generation for entry in entries])
            self.refresh()
        return len(entries)

    def _remove_unnamed_files(self) -> None:
        """Files a crash left behind: segments and vector files the store does not name, and vector files no
        live passage points at any more. The caller holds the writer lock."""
        self._remove_unused_vector_files()
        for folder, named in (
            (SEGMENTS_DIR, {s.file for s in self.store.segments()}),
            (VECTORS_DIR, set(self.store.vector_files().values())),
        ):
            for path in (self.folder / folder).iterdir():
                if path.name not in named:
                    path.unlink(missing_ok=True)

    def _remove_unused_vector_files(self) -> None:
        unused = self.store.unused_vector_files()
        if not unused:
            return
        self.store.forget_vector_files(unused)
        for name in unused.values():
            (self.folder / VECTORS_DIR / name).unlink(missing_ok=True)
