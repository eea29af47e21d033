"""Finding and reading the documents of a folder, skipping what cannot be indexed with a warning.

Listing (``list_files``: path, size, mtime) and loading (``load_document``) are separate so an
indexer can compare the cheap stat with what it stored and read only the files that changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from indexer.doc_ids import validate_doc_id
from indexer.metadata import extract_date, extract_title
from indexer.readers import SNIFF_BYTES, UNKNOWN_TYPE, Section, UnreadableDocument, extract, of_unknown_type
from search.backends.contract import DocumentSummary
from search.errors import SemsearchError
from search.records import DocumentRecord


@dataclass(frozen=True)
class Document(DocumentRecord):
    """A readable document: ``doc_id`` is its path relative to the documents folder, ``sha256`` hashes its bytes.

    ``pages`` and ``sections`` locate offsets of ``text`` (see ``indexer.structure.locate``); ``source`` is
    the file's stat when it was read (``file_source``).
    """

    sections: tuple[Section, ...] = ()


@dataclass(frozen=True)
class FileState:
    """What change detection compares: stat first, content hash only when the stat changed. The stat travels
    to the index as each document's opaque ``source`` string, which backends store without reading."""

    size: int
    mtime_ns: int
    sha256: str


def file_source(size: int, mtime_ns: int) -> str:
    return json.dumps({"size": size, "mtime_ns": mtime_ns})


def file_states(documents: Iterable[DocumentSummary]) -> dict[str, FileState]:
    """The stat and hash the index holds for each document; a source that is not ours never matches a file."""
    states = {}
    for document in documents:
        try:
            stat_ = json.loads(document.source)
            states[document.doc_id] = FileState(int(stat_["size"]), int(stat_["mtime_ns"]), document.sha256)
        except (ValueError, TypeError, KeyError):
            states[document.doc_id] = FileState(-1, -1, document.sha256)
    return states


@dataclass(frozen=True)
class LeftOut:
    """A file (or folder) of the documents folder that the index does not hold, and why: files left out for one
    reason are counted together in a build's summary and named one by one on request."""

    doc_id: str
    reason: str

    def __str__(self) -> str:
        return f"skipped {self.doc_id}: {self.reason}"


@dataclass(frozen=True)
class FileEntry:
    """A file found in the folder, with the stat an indexer compares against the last run."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FileRead:
    """A file whose stat changed, read: its new content, or ``unchanged`` when its bytes hash as indexed
    (only the stat is new), or neither and ``left_out`` saying why; ``warnings`` are the reader's notes."""

    entry: FileEntry
    document: Document | None
    unchanged: bool
    warnings: tuple[str, ...]
    left_out: LeftOut | None = None


@dataclass
class ReadResult:
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)


def read_documents(folder: Path, max_bytes: int) -> ReadResult:
    """Every file under ``folder``; a bad file is reported, never fatal."""
    require_folder(folder)
    result = ReadResult()
    for entry in list_files(folder, result.left_out):
        document = load_document(entry, max_bytes, result.warnings)
        if isinstance(document, LeftOut):
            result.left_out.append(document)
        else:
            result.documents.append(document)
    return result


def require_folder(folder: Path) -> None:
    """Fail before anything is written when the documents folder is wrong."""
    if not folder.is_dir():
        raise SemsearchError(f"documents folder {folder} does not exist or is not a folder")


def list_files(folder: Path, left_out: list[LeftOut]) -> list[FileEntry]:
    """Files under ``folder`` sorted by ``doc_id``, with size and mtime; nothing is read yet. What cannot be
    listed goes to ``left_out``."""
    entries = []
    for path in _candidate_files(folder, left_out):
        doc_id = path.relative_to(folder).as_posix()
        try:
            info = path.stat()
        except OSError as exc:
            left_out.append(LeftOut(doc_id, exc.strerror or str(exc)))
            continue
        entries.append(FileEntry(doc_id, path, info.st_size, info.st_mtime_ns))
    return sorted(entries, key=lambda entry: entry.doc_id)


def list_named_files(folder: Path, doc_ids: Sequence[str], left_out: list[LeftOut]) -> list[FileEntry]:
    """Like ``list_files``, for the named documents only; a name with no regular file behind it is absent."""
    entries = []
    for doc_id in sorted(set(doc_ids)):
        path = folder.joinpath(*validate_doc_id(doc_id).parts)
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            left_out.append(LeftOut(doc_id, exc.strerror or str(exc)))
            continue
        if stat.S_ISREG(info.st_mode):
            entries.append(FileEntry(doc_id, path, info.st_size, info.st_mtime_ns))
    return entries


def load_document(entry: FileEntry, max_bytes: int, warnings: list[str]) -> Document | LeftOut:
    """The document in ``entry``'s file, or why it is left out; the reader's notes go to ``warnings``."""
    raw = _read_bytes(entry, max_bytes)
    if isinstance(raw, str):
        return LeftOut(entry.doc_id, raw)
    try:
        extracted = extract(raw, entry.path.name)
    except UnreadableDocument as exc:
        return LeftOut(entry.doc_id, str(exc))
    warnings.extend(f"{entry.doc_id}: {note}" for note in extracted.notes)
    if not extracted.text.strip():
        return LeftOut(entry.doc_id, "empty")
    return Document(
        doc_id=entry.doc_id,
        title=extracted.title or extract_title(extracted.text, fallback=entry.path.name),
        date=extract_date(extracted.text),
        text=extracted.text,
        sha256=hashlib.sha256(raw).hexdigest(),
        pages=extracted.pages,
        source=file_source(entry.size, entry.mtime_ns),
        sections=extracted.sections,
    )


def read_changed(entry: FileEntry, indexed_sha256: str | None, max_bytes: int) -> FileRead:
    """Read a file whose stat differs from the index's; the same step in the build's process and in a Ray task."""
    warnings: list[str] = []
    document = load_document(entry, max_bytes, warnings)
    if isinstance(document, LeftOut):
        return FileRead(entry, None, False, tuple(warnings), document)
    if document.sha256 == indexed_sha256:
        return FileRead(entry, None, True, tuple(warnings))
    return FileRead(entry, document, False, tuple(warnings))


def _candidate_files(folder: Path, left_out: list[LeftOut]) -> Iterator[Path]:
    """Walk iteratively (no recursion limit on deep trees), following links but never a loop.

    Hidden files and folders are left out unopened: editors, version control and sync tools keep their own
    files there, and an upload's temporary file is one until it is renamed into place."""
    seen: set[tuple[int, int]] = set()
    pending = [folder]
    while pending:
        directory = pending.pop()
        where = directory.relative_to(folder).as_posix()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in seen:
                left_out.append(LeftOut(f"{where}/", "folder already visited (symlink loop)"))
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = list(os.scandir(directory))
        except OSError as exc:
            left_out.append(LeftOut(f"{where}/", exc.strerror or str(exc)))
            continue
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith("."):
                left_out.append(LeftOut(path.relative_to(folder).as_posix(), "hidden"))
                continue
            try:
                if entry.is_dir():
                    pending.append(path)
                else:
                    yield path
            except OSError as exc:
                left_out.append(LeftOut(path.relative_to(folder).as_posix(), exc.strerror or str(exc)))


def _read_bytes(entry: FileEntry, max_bytes: int) -> bytes | str:
    """The file's bytes, provided its stat before and after reading is the one listed; else why not. A file of
    no known type is refused on its first bytes, whatever its size."""
    listed = (entry.size, entry.mtime_ns)
    over_limit = f"over the {max_bytes}-byte limit"
    try:
        # Non-blocking, so opening a FIFO cannot wait forever for a writer; regular files read as usual.
        with open(os.open(entry.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            before = os.fstat(handle.fileno())
            if not stat.S_ISREG(before.st_mode):
                return "not a regular file"
            head = handle.read(SNIFF_BYTES)
            if of_unknown_type(entry.path.name, head):
                return UNKNOWN_TYPE
            if before.st_size > max_bytes:
                return over_limit
            raw = head + handle.read(max_bytes + 1 - len(head))
        after = entry.path.stat()
    except OSError as exc:
        return exc.strerror or str(exc)
    if len(raw) > max_bytes:
        return over_limit
    observed = {(before.st_size, before.st_mtime_ns), (after.st_size, after.st_mtime_ns), (len(raw), after.st_mtime_ns)}
    if observed != {listed}:
        return "changed while being read; it will be read on the next run"
    return raw
