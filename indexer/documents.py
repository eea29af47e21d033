"""Finding and reading the documents of a folder, skipping what cannot be indexed with a warning."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from indexer.metadata import extract_date, extract_title
from search.errors import SemsearchError

DOCUMENT_SUFFIXES = (".txt", ".md")
_BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class Document:
    """A readable document: ``doc_id`` is its path relative to the documents folder."""

    doc_id: str
    title: str
    date: str | None
    text: str
    sha256: str
    pages: tuple[int, ...] = ()
    sections: tuple = ()
    size: int = 0
    mtime_ns: int = 0


@dataclass(frozen=True)
class FileEntry:
    """A candidate file with the stat that change detection compares before reading it."""

    doc_id: str
    path: Path
    size: int
    mtime_ns: int


@dataclass
class ReadResult:
    documents: list[Document] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_documents(folder: Path, max_bytes: int) -> ReadResult:
    """Every ``.txt`` and ``.md`` file under ``folder``; a bad file is reported, never fatal."""
    require_folder(folder)
    result = ReadResult()
    for path in sorted(_candidate_files(folder, result.warnings)):
        doc_id = path.relative_to(folder).as_posix()
        document = _read_document(path, doc_id, max_bytes, result.warnings)
        if document is not None:
            result.documents.append(document)
    return result


def list_files(folder: Path, warnings: list[str]) -> list[FileEntry]:
    """Every supported file under ``folder`` with its size and modification time, sorted by id."""
    entries = []
    for path in _candidate_files(folder, warnings):
        try:
            info = path.stat()
        except OSError as exc:
            warnings.append(f"skipped {path}: {exc.strerror or exc}")
            continue
        entries.append(FileEntry(path.relative_to(folder).as_posix(), path, info.st_size, info.st_mtime_ns))
    return sorted(entries, key=lambda entry: entry.doc_id)


def load_document(entry: FileEntry, max_bytes: int, warnings: list[str]) -> Document | None:
    document = _read_document(entry.path, entry.doc_id, max_bytes, warnings)
    if document is None:
        return None
    return Document(document.doc_id, document.title, document.date, document.text, document.sha256, size=entry.size, mtime_ns=entry.mtime_ns)


def require_folder(folder: Path) -> None:
    """Fail before anything is written when the documents folder is wrong."""
    if not folder.is_dir():
        raise SemsearchError(f"documents folder {folder} does not exist or is not a folder")


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
                elif entry.name.lower().endswith(DOCUMENT_SUFFIXES):
                    yield path
            except OSError as exc:
                warnings.append(f"skipped {path}: {exc.strerror or exc}")


def _read_document(path: Path, doc_id: str, max_bytes: int, warnings: list[str]) -> Document | None:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            warnings.append(f"skipped {doc_id}: not a regular file")
            return None
        if info.st_size > max_bytes:
            warnings.append(f"skipped {doc_id}: {info.st_size} bytes is over the {max_bytes}-byte limit")
            return None
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        warnings.append(f"skipped {doc_id}: {exc.strerror or exc}")
        return None
    if len(raw) > max_bytes:
        warnings.append(f"skipped {doc_id}: over the {max_bytes}-byte limit")
        return None
    if b"\x00" in raw[:_BINARY_SNIFF_BYTES]:
        warnings.append(f"skipped {doc_id}: binary content")
        return None
    text = _decode(raw, doc_id, warnings)
    if not text.strip():
        warnings.append(f"skipped {doc_id}: empty")
        return None
    return Document(
        doc_id=doc_id,
        title=extract_title(text, fallback=path.name),
        date=extract_date(text),
        text=text,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _decode(raw: bytes, doc_id: str, warnings: list[str]) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        warnings.append(f"{doc_id}: not valid UTF-8; undecodable bytes replaced with U+FFFD")
        return raw.decode("utf-8-sig", errors="replace")
