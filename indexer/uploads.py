"""Putting a document into the documents folder, and taking it out, for the write API.

The folder stays the source of truth: an uploaded document is a file like any other, so a later
``semsearch index`` or a watcher sees exactly what the API wrote.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from indexer.doc_ids import InvalidDocumentId, validate_doc_id
from indexer.documents import FileEntry, LeftOut, load_document, require_folder
from indexer.readers import UnreadableDocument
from search.durability import fsync_dir


def place_document(docs_dir: Path, doc_id: str, body: bytes, max_bytes: int) -> bool:
    """Write ``body`` as document ``doc_id`` atomically; True when it is new, False when it replaced one.

    The bytes are read by the same reader the indexer uses before anything lands in the folder, so a
    document that would only be skipped with a warning is refused with the reader's reason instead.
    """
    require_folder(docs_dir)
    target = _target(docs_dir, doc_id)
    _require_inside(docs_dir, target)
    _require_readable(doc_id, body, max_bytes)
    target.parent.mkdir(parents=True, exist_ok=True)
    created = not target.exists()
    _write_atomically(target, body)
    return created


def remove_document(docs_dir: Path, doc_id: str) -> bool:
    """Delete document ``doc_id`` from the folder; False when there was no such file."""
    target = _target(docs_dir, doc_id)
    _require_inside(docs_dir, target)
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    fsync_dir(target.parent)
    return True


def _target(docs_dir: Path, doc_id: str) -> Path:
    return docs_dir.joinpath(*validate_doc_id(doc_id).parts)


def _require_inside(docs_dir: Path, target: Path) -> None:
    """A symlinked folder inside the documents folder could still lead elsewhere; writes never follow one out."""
    existing = next(folder for folder in target.parents if folder.exists())
    if not existing.resolve().is_relative_to(docs_dir.resolve()):
        raise InvalidDocumentId(f"the document id {target.relative_to(docs_dir).as_posix()!r} leads outside the documents folder")


def _require_readable(doc_id: str, body: bytes, max_bytes: int) -> None:
    """Read a staged copy (outside the folder, so no scan sees it) under the document's own file name."""
    with tempfile.TemporaryDirectory(prefix="semsearch-upload-") as staging:
        staged = Path(staging) / Path(doc_id).name
        staged.write_bytes(body)
        info = staged.stat()
        read = load_document(FileEntry(doc_id, staged, info.st_size, info.st_mtime_ns), max_bytes, [])
        if isinstance(read, LeftOut):
            raise UnreadableDocument(str(read))


def _write_atomically(target: Path, body: bytes) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old file or the new one, never half.

    Not ``durability.write_durably``: its temporary keeps the document's extension, and a folder scan
    running meanwhile (another process watching the folder) would index it as a document.
    """
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        with temp.open("xb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    fsync_dir(target.parent)
