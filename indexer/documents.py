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
from indexer.readers import SUPPORTED_SUFFIXES, Section, UnreadableDocument, extract
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
class FileEntry:
    """A supported file found in the folder, with the stat an indexer compares against the last run."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FileRead:
    """A file whose stat changed, read: its new content, or ``unchanged`` when its bytes hash as indexed
    (only the stat is new), or neither with the warnings that say why it was skipped."""

    entry: FileEntry
    document: Document | None
    unchanged: bool
    warnings: tuple[str, ...]


@dataclass
class ReadResult:
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_documents(folder: Path, max_bytes: int) -> ReadResult:
    """Every supported file under ``folder``; a bad file is reported, never fatal."""
    require_folder(folder)
    result = ReadResult()
    for entry in list_files(folder, result.warnings):
        document = load_document(entry, max_bytes, result.warnings)
        if document is not None:
            result.documents.append(document)
    return result


def require_folder(folder: Path) -> None:
    """Fail before anything is written when the documents folder is wrong."""
    if not folder.is_dir():
        raise SemsearchError(f"documents folder {folder} does not exist or is not a folder")


def list_files(folder: Path, warnings: list[str]) -> list[FileEntry]:
    """Supported files under ``folder`` sorted by ``doc_id``, with size and mtime; nothing is read yet."""
    entries = []
    for path in _candidate_files(folder, warnings):
        doc_id = path.relative_to(folder).as_posix()
        try:
            info = path.stat()
        except OSError as exc:
            warnings.append(f"skipped {doc_id}: {exc.strerror or exc}")
            continue
        entries.append(FileEntry(doc_id, path, info.st_size, info.st_mtime_ns))
    return sorted(entries, key=lambda entry: entry.doc_id)


def list_named_files(folder: Path, doc_ids: Sequence[str], warnings: list[str]) -> list[FileEntry]:
    """Like ``list_files``, for the named documents only; a name with no regular file behind it is absent."""
    entries = []
    for doc_id in sorted(set(doc_ids)):
        path = folder.joinpath(*validate_doc_id(doc_id).parts)
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            warnings.append(f"skipped {doc_id}: {exc.strerror or exc}")
            continue
        if stat.S_ISREG(info.st_mode):
            entries.append(FileEntry(doc_id, path, info.st_size, info.st_mtime_ns))
    return entries


def load_document(entry: FileEntry, max_bytes: int, warnings: list[str]) -> Document | None:
    """The document in ``entry``'s file, or ``None`` with a warning ``skipped <doc_id>: <reason>``."""
    raw = _read_bytes(entry, max_bytes, warnings)
    if raw is None:
        return None
    try:
        extracted = extract(raw, entry.path.name)
    except UnreadableDocument as exc:
        warnings.append(f"skipped {entry.doc_id}: {exc}")
        return None
    warnings.extend(f"{entry.doc_id}: {note}" for note in extracted.notes)
    if not extracted.text.strip():
        warnings.append(f"skipped {entry.doc_id}: empty")
        return None
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
    if document is not None and document.sha256 == indexed_sha256:
        return FileRead(entry, None, True, tuple(warnings))
    return FileRead(entry, document, False, tuple(warnings))


def _candidate_files(folder: Path, warnings: list[str]) -> Iterator[Path]:
    """Walk iteratively (no recursion limit on deep trees), following links but never a loop."""
    seen: set[tuple[int, int]] = set()
    pending = [folder]
    while pending:
        directory = pending.pop()
        try:
            info = directory.stat()
            if (info.st_dev, info.st_ino) in seen:
                warnings.append(f"skipped {directory}: folder already visited (symlink loop)")
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = list(os.scandir(directory))
        except OSError as exc:
            warnings.append(f"skipped {directory}: {exc.strerror or exc}")
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    pending.append(path)
                elif entry.name.lower().endswith(SUPPORTED_SUFFIXES):
                    yield path
            except OSError as exc:
                warnings.append(f"skipped {path}: {exc.strerror or exc}")


def _read_bytes(entry: FileEntry, max_bytes: int, warnings: list[str]) -> bytes | None:
    """The file's bytes, provided its stat before and after reading is the one listed."""
    listed = (entry.size, entry.mtime_ns)
    try:
        # Non-blocking, so opening a FIFO cannot wait forever for a writer; regular files read as usual.
        with open(os.open(entry.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:
            before = os.fstat(handle.fileno())
            if not stat.S_ISREG(before.st_mode):
                warnings.append(f"skipped {entry.doc_id}: not a regular file")
                return None
            if before.st_size > max_bytes:
                warnings.append(f"skipped {entry.doc_id}: {before.st_size} bytes is over the {max_bytes}-byte limit")
                return None
            raw = handle.read(max_bytes + 1)
        after = entry.path.stat()
    except OSError as exc:
        warnings.append(f"skipped {entry.doc_id}: {exc.strerror or exc}")
        return None
    if len(raw) > max_bytes:
        warnings.append(f"skipped {entry.doc_id}: over the {max_bytes}-byte limit")
        return None
    observed = {(before.st_size, before.st_mtime_ns), (after.st_size, after.st_mtime_ns), (len(raw), after.st_mtime_ns)}
    if observed != {listed}:
        warnings.append(f"skipped {entry.doc_id}: changed while being read; it will be read on the next run")
        return None
    return raw
