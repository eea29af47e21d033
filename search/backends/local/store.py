"""The local backend's SQLite store (WAL): the only module that holds SQL, read on demand, one transaction per change.

The store is the single commit point of an index. Vector segments and sentence-vector files are
written first under fresh names and only become part of the index when the transaction that names
them commits; the keyword index is brought in step afterwards from a journal kept in the same
transaction. A crash at any moment therefore leaves the previous or the new state.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from search.backends.contract import DocumentSummary, NewPassage, StoredPassage, iter_chunks
from search.backends.local.vector_store import PreparedSegment
from search.errors import IndexFormatError
from search.records import DocumentRecord, PassageRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    key INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    date TEXT,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    pages TEXT NOT NULL,
    length INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_by_date ON documents(date);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY,
    document INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    page INTEGER,
    page_end INTEGER,
    section TEXT,
    segment INTEGER NOT NULL,
    vector_file INTEGER NOT NULL,
    vector_row INTEGER NOT NULL,
    sentences TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_by_document ON passages(document);
CREATE INDEX IF NOT EXISTS passages_by_vector_file ON passages(vector_file);
CREATE TABLE IF NOT EXISTS segments (id INTEGER PRIMARY KEY, file TEXT NOT NULL, kind TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vector_files (id INTEGER PRIMARY KEY, file TEXT NOT NULL, rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tombstones (passage INTEGER PRIMARY KEY, segment INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS keyword_journal (
    generation INTEGER PRIMARY KEY,
    added_passages TEXT NOT NULL,
    removed_passages TEXT NOT NULL,
    added_documents TEXT NOT NULL,
    removed_documents TEXT NOT NULL
);
"""


class PassageLocation(NamedTuple):
    """Rows ``vector_row`` (the passage) and the next ``sentences`` (its sentences) of ``vector_file``, and
    characters ``start``..``end`` of the document with key ``document``. Fixed for the life of a passage id."""

    vector_file: int
    vector_row: int
    sentences: int
    document: int
    start: int
    end: int


# SQLite limits the number of bound parameters per statement.
_MAX_PARAMETERS = 900


@dataclass(frozen=True)
class Segment:
    id: int
    file: str
    kind: str
    size: int


@dataclass(frozen=True)
class LocalCommit:
    """Everything one change writes to the store: the files prepared for it, the rows it adds (document key and
    record; passage id, document key, passage, first vector row), the documents it replaces or removes (by key),
    new sources for unchanged content (doc id, source) and the counters after it."""

    segment: PreparedSegment | None
    vector_file: tuple[str, int] | None
    documents: list[tuple[int, DocumentRecord]]
    passages: list[tuple[int, int, NewPassage, int]]
    removed_documents: list[int]
    sources: list[tuple[str, str]]
    next_document: int
    next_passage: int


@dataclass(frozen=True)
class JournalEntry:
    generation: int
    added_passages: list[int]
    removed_passages: list[int]
    added_documents: list[int]
    removed_documents: list[int]


class Store:
    """One SQLite database; a connection per thread, since sqlite3 connections are not shared across threads."""

    def __init__(self, path: Path, create: bool = False) -> None:
        if not create and not path.is_file():
            raise IndexFormatError(f"index store {path} is missing; rebuild it with `semsearch index --full`")
        self.path = path
        self._local = threading.local()
        if create:
            self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
            except sqlite3.DatabaseError as exc:
                raise IndexFormatError(
                    f"index store {self.path} cannot be opened ({exc}); rebuild it with `semsearch index --full`"
                ) from None
            self._local.connection = connection
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing: every statement inside commits together or not at all."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees the state committed when it began (a WAL read transaction); writers are not blocked.

        SQLite takes a deferred transaction's snapshot at its first read, so one read happens here: a commit
        between entering and the caller's first read must not be seen.
        """
        db = self._connection()
        db.execute("BEGIN")
        try:
            db.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
            yield
        finally:
            db.execute("COMMIT")

    def backup_to(self, target: Path) -> None:
        """Copy the database as the caller's ``snapshot`` sees it into a new file, with SQLite's online backup:
        the copy reuses the open read transaction, so writers go on committing meanwhile."""
        destination = sqlite3.connect(target)
        try:
            self._connection().backup(destination)
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"index store {self.path} cannot be copied ({exc}); rebuild it with `semsearch index --full`") from None
        finally:
            destination.close()

    def query(self, sql: str, parameters: Iterable[Any] = ()) -> list[tuple]:
        try:
            return self._connection().execute(sql, tuple(parameters)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise IndexFormatError(f"index store {self.path} cannot be read ({exc}); rebuild it with `semsearch index --full`") from None

    def query_in(self, sql: str, values: Iterable[Any]) -> list[tuple]:
        """Rows of ``sql`` whose ``{marks}`` stands for ``values`` as bound parameters, in chunks: SQLite limits
        the parameters of one statement."""
        values = list(values)
        return [
            row for chunk in iter_chunks(values, _MAX_PARAMETERS) for row in self.query(sql.format(marks=",".join("?" * len(chunk))), chunk)
        ]

    # --- meta ---------------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self.query("SELECT key, value FROM meta")}

    def state(self) -> tuple[int, int]:
        """(generation, pending keyword journal entries): changes whenever a writer commits anything."""
        ((generation,),) = self.query("SELECT value FROM meta WHERE key = 'generation'") or [("0",)]
        ((pending,),) = self.query("SELECT COUNT(*) FROM keyword_journal")
        return int(json.loads(generation)), pending

    # --- documents ----------------------------------------------------------------------------

    def document(self, doc_id: str) -> DocumentRecord | None:
        rows = self.query("SELECT doc_id, title, date, text, sha256, pages, source FROM documents WHERE doc_id = ?", (doc_id,))
        return _document(rows[0]) if rows else None

    def document_summaries(self, doc_ids: Iterable[str] | None = None) -> list[DocumentSummary]:
        """Every document (or the named ones) without its text."""
        sql = (
            "SELECT d.doc_id, d.title, d.date, d.length, (SELECT COUNT(*) FROM passages p WHERE p.document = d.key), d.sha256, d.source "
            "FROM documents d"
        )
        rows = self.query(sql + " ORDER BY d.doc_id") if doc_ids is None else self.query_in(sql + " WHERE d.doc_id IN ({marks})", doc_ids)
        return [DocumentSummary(*row) for row in rows]

    def document_keys(self, doc_ids: Iterable[str]) -> dict[str, int]:
        return dict(self.query_in("SELECT doc_id, key FROM documents WHERE doc_id IN ({marks})", doc_ids))

    def document_keys_dated(self, date_from: str | None, date_to: str | None) -> list[int]:
        return [
            key
            for (key,) in self.query(
                "SELECT key FROM documents WHERE date IS NOT NULL AND date >= ? AND date <= ?",
                (date_from or "", date_to or "9999-12-31"),
            )
        ]

    def document_keys_of_types(self, types: Iterable[str]) -> list[int]:
        """Documents whose id ends with ``.<type>``, case as given (GLOB, unlike LIKE, respects case)."""
        patterns = [f"*.{kind}" for kind in types]
        where = " OR ".join("doc_id GLOB ?" for _ in patterns)
        return [key for (key,) in self.query(f"SELECT key FROM documents WHERE {where}", patterns)] if patterns else []

    def document_keys_between(self, lower: str, upper: str) -> list[int]:
        """Documents with ``lower <= doc_id < upper`` (a folder's ids, ``Filters.folder_range``), by the id index."""
        return [key for (key,) in self.query("SELECT key FROM documents WHERE doc_id >= ? AND doc_id < ?", (lower, upper))]

    def counts(self) -> tuple[int, int]:
        ((documents,),) = self.query("SELECT COUNT(*) FROM documents")
        ((passages,),) = self.query("SELECT COUNT(*) FROM passages")
        return documents, passages

    # --- passages -----------------------------------------------------------------------------

    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        """What a page shows of each passage, its text cut from its document inside SQLite; ids gone are absent."""
        return {
            row[0]: _passage(row)
            for row in self.query_in(
                "SELECT p.id, d.doc_id, p.ordinal, p.start, p.end, p.page, p.page_end, p.section, p.document, "
                "substr(d.text, p.start + 1, p.end - p.start), d.title, d.date, p.sentences, "
                "CASE WHEN p.page_end > p.page THEN d.pages ELSE '[]' END "
                "FROM passages p JOIN documents d ON d.key = p.document WHERE p.id IN ({marks})",
                (int(i) for i in ids),
            )
        }

    def locations(self, ids: Iterable[int]) -> dict[int, PassageLocation]:
        """Where each passage lies, in its vector file and in its document: what ranking a candidate needs."""
        return {
            row[0]: PassageLocation(*row[1:])
            for row in self.query_in(
                "SELECT id, vector_file, vector_row, json_array_length(sentences), document, start, end "
                "FROM passages WHERE id IN ({marks})",
                (int(i) for i in ids),
            )
        }

    def passage_ids_by_document(self, keys: Iterable[int]) -> dict[int, list[int]]:
        found: dict[int, list[int]] = {}
        for key, pid in self.query_in("SELECT document, id FROM passages WHERE document IN ({marks}) ORDER BY id", keys):
            found.setdefault(key, []).append(pid)
        return found

    def passage_ids_of_documents(self, keys: Iterable[int]) -> list[int]:
        return [i for (i,) in self.query_in("SELECT id FROM passages WHERE document IN ({marks})", keys)]

    def document_texts(self, keys: Iterable[int]) -> dict[int, tuple[str, str]]:
        """(doc_id, text) by document key, for the few documents a query or an update needs."""
        rows = self.query_in("SELECT key, doc_id, text FROM documents WHERE key IN ({marks})", keys)
        return {key: (doc_id, text) for key, doc_id, text in rows}

    # --- segments, vector files, tombstones, journal ------------------------------------------

    def segments(self) -> list[Segment]:
        return [Segment(*row) for row in self.query("SELECT id, file, kind, size FROM segments ORDER BY id")]

    def vector_files(self) -> dict[int, str]:
        return dict(self.query("SELECT id, file FROM vector_files"))

    def tombstones(self) -> dict[int, int]:
        """Deleted passage id -> segment still holding its vector."""
        return dict(self.query("SELECT passage, segment FROM tombstones"))

    def journal(self) -> list[JournalEntry]:
        return [
            JournalEntry(generation, *(json.loads(value) for value in rest))
            for generation, *rest in self.query("SELECT * FROM keyword_journal ORDER BY generation")
        ]

    def clear_journal(self, generations: Iterable[int]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM keyword_journal WHERE generation = ?", [(g,) for g in generations])

    # --- writes ---------------------------------------------------------------------------------

    def initialize(self, meta: dict[str, Any]) -> None:
        """The meta of a new index: its settings and empty counters."""
        with self.transaction() as db:
            _set_meta(db, {**meta, "generation": 0, "next_passage": 1, "next_document": 1})

    def commit_change(self, commit: LocalCommit) -> int:
        """One transaction: name the new files, swap the documents' rows, tombstone old vectors, journal the
        keyword work; returns the new generation."""
        with self.transaction() as db:
            generation = int(self._meta_value(db, "generation")) + 1
            segment_id: int | None = 0
            vector_file_id: int | None = 0
            if commit.segment is not None and commit.vector_file is not None:
                segment_id = _fresh_id(db, "segments")
                db.execute(
                    "INSERT INTO segments(id, file, kind, size) VALUES (?, ?, ?, ?)",
                    (segment_id, commit.segment.file, commit.segment.kind, commit.segment.size),
                )
                vector_file_id = _fresh_id(db, "vector_files")
                db.execute("INSERT INTO vector_files(id, file, rows) VALUES (?, ?, ?)", (vector_file_id, *commit.vector_file))
            old_keys = list(commit.removed_documents)
            removed = [pid for (pid,) in _query_in(db, "SELECT id FROM passages WHERE document IN ({marks})", old_keys)]
            db.executemany(
                "INSERT OR REPLACE INTO tombstones(passage, segment) VALUES (?, ?)",
                _query_in(db, "SELECT id, segment FROM passages WHERE document IN ({marks})", old_keys),
            )
            for key in old_keys:
                db.execute("DELETE FROM passages WHERE document = ?", (key,))
                db.execute("DELETE FROM documents WHERE key = ?", (key,))
            db.executemany(
                "INSERT INTO documents(key, doc_id, title, date, sha256, source, pages, length, text) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (key, d.doc_id, d.title, d.date, d.sha256, d.source, json.dumps(list(d.pages)), len(d.text), d.text)
                    for key, d in commit.documents
                ],
            )
            db.executemany(
                "INSERT INTO passages(id, document, ordinal, start, end, page, page_end, section, segment, vector_file, vector_row, "
                "sentences) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        pid,
                        key,
                        p.ordinal,
                        p.start,
                        p.end,
                        p.page,
                        p.page_end,
                        p.section,
                        segment_id,
                        vector_file_id,
                        row,
                        json.dumps(p.sentences),
                    )
                    for pid, key, p, row in commit.passages
                ],
            )
            db.executemany("UPDATE documents SET source = ? WHERE doc_id = ?", [(source, doc_id) for doc_id, source in commit.sources])
            db.execute(
                "INSERT INTO keyword_journal VALUES (?, ?, ?, ?, ?)",
                (
                    generation,
                    json.dumps([pid for pid, *_ in commit.passages]),
                    json.dumps(removed),
                    json.dumps([key for key, *_ in commit.documents]),
                    json.dumps(old_keys),
                ),
            )
            _set_meta(db, {"generation": generation, "next_document": commit.next_document, "next_passage": commit.next_passage})
        return generation

    def commit_compaction(self, merged: list[int], replacement: tuple[str, str, int] | None) -> int:
        """Replace segments ``merged`` by ``replacement`` (file, kind, size), dropping their tombstones; returns
        the tombstones dropped."""
        with self.transaction() as db:
            marks = ",".join("?" * len(merged))
            db.execute(f"DELETE FROM segments WHERE id IN ({marks})", merged)
            dropped = db.execute(f"DELETE FROM tombstones WHERE segment IN ({marks})", merged).rowcount
            if replacement is not None:
                new_id = _fresh_id(db, "segments")
                db.execute("INSERT INTO segments(id, file, kind, size) VALUES (?, ?, ?, ?)", (new_id, *replacement))
                db.execute(f"UPDATE passages SET segment = ? WHERE segment IN ({marks})", [new_id, *merged])
            _set_meta(db, {"generation": int(self._meta_value(db, "generation")) + 1})
        return int(dropped)

    def unused_vector_files(self) -> dict[int, str]:
        """Vector files no passage points at any more."""
        return dict(
            self.query("SELECT v.id, v.file FROM vector_files v WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.vector_file = v.id)")
        )

    def forget_vector_files(self, file_ids: Iterable[int]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM vector_files WHERE id = ?", [(file_id,) for file_id in file_ids])

    @staticmethod
    def _meta_value(db: sqlite3.Connection, key: str) -> Any:
        ((value,),) = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchall()
        return json.loads(value)


def _document(row: tuple) -> DocumentRecord:
    doc_id, title, date, text, sha256, pages, source = row
    return DocumentRecord(doc_id, title, date, text, sha256, tuple(json.loads(pages)), source)


def _passage(row: tuple) -> StoredPassage:
    pid, doc_id, ordinal, start, end, page, page_end, section, document, text, title, date, sentences, pages = row
    record = PassageRecord(f"{doc_id}#{ordinal}", doc_id, start, end, page, page_end, section, pid)
    spans = tuple((a, b) for a, b in json.loads(sentences))
    return StoredPassage(record, document, text, title, date, spans, tuple(json.loads(pages)))


def _fresh_id(db: sqlite3.Connection, table: str) -> int:
    """An id ``table`` has never used. SQLite hands a deleted highest id out again, and a reader that listed
    the old row (a segment a compaction merged, a vector file a delete emptied) would take the new file for it."""
    key = f"next_{table}_id"
    stored = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchall()
    ((highest,),) = db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchall()
    fresh = max(json.loads(stored[0][0]) if stored else 1, highest + 1)
    _set_meta(db, {key: fresh + 1})
    return fresh


def _set_meta(db: sqlite3.Connection, values: dict[str, Any]) -> None:
    db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])


def _query_in(db: sqlite3.Connection, sql: str, values: list[Any]) -> list[tuple]:
    return [
        row for chunk in iter_chunks(values, _MAX_PARAMETERS) for row in db.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)
    ]
