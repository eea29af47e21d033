"""The one table of document formats: a new format is a reader module plus a row here."""

from __future__ import annotations

import codecs
from dataclasses import replace

from indexer.readers.base import Extracted, Reader, Section, UnreadableDocument
from indexer.readers.docx import DocxReader
from indexer.readers.html import HtmlReader
from indexer.readers.markdown import MarkdownReader
from indexer.readers.pdf import PdfReader
from indexer.readers.text import SNIFF_BYTES, TextReader

_TEXT, _MARKDOWN, _HTML = TextReader(), MarkdownReader(), HtmlReader()
READERS: dict[str, Reader] = {
    ".txt": _TEXT,
    ".rst": _TEXT,
    ".md": _MARKDOWN,
    ".markdown": _MARKDOWN,
    ".html": _HTML,
    ".htm": _HTML,
    ".pdf": PdfReader(),
    ".docx": DocxReader(),
}
CONTENT_TYPES = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/html": ".html",
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
}
SUPPORTED_SUFFIXES = tuple(READERS)
# Binary formats announce themselves; a file named for another format is read as what it is.
_MAGIC = ((b"%PDF-", ".pdf"), (b"PK\x03\x04", ".docx"))
# A file of no known format is read as plain text when its first SNIFF_BYTES are UTF-8 without a NUL
# byte: README, NEWS, COPYING and README.Debian are the first files a person reads.
UNKNOWN_TYPE = "unknown type"

__all__ = [
    "CONTENT_TYPES",
    "READERS",
    "SNIFF_BYTES",
    "SUPPORTED_SUFFIXES",
    "UNKNOWN_TYPE",
    "Extracted",
    "Reader",
    "Section",
    "UnreadableDocument",
    "extract",
    "of_unknown_type",
    "reader_for",
]


def reader_for(name: str, content_type: str | None = None) -> Reader:
    """The reader for a known content type, else for the file name's extension."""
    declared = _format_of(name, content_type)
    if declared is None:
        raise UnreadableDocument(UNKNOWN_TYPE)
    return READERS[declared]


def extract(data: bytes, name: str, content_type: str | None = None) -> Extracted:
    """Text and structure of ``data``; ``UnreadableDocument`` says why not. A name of no known format is
    read as plain text when its bytes are text, and is of ``UNKNOWN_TYPE`` otherwise."""
    if of_unknown_type(name, data, content_type):
        raise UnreadableDocument(UNKNOWN_TYPE)
    declared = _format_of(name, content_type)
    if declared is None:
        return _TEXT.read(data, name)
    actual = next((suffix for magic, suffix in _MAGIC if data.startswith(magic)), declared)
    extracted = READERS[actual].read(data, name)
    if actual == declared:
        return extracted
    note = f"content is {actual[1:].upper()}, not {declared[1:].upper()} as its name says; read as {actual[1:].upper()}"
    return replace(extracted, notes=(*extracted.notes, note))


def of_unknown_type(name: str, head: bytes, content_type: str | None = None) -> bool:
    """Whether a file is of no format we read: no known content type or extension, and its first
    ``SNIFF_BYTES`` (``head``) are not UTF-8 text without NUL bytes. Decided before the rest is read."""
    return _format_of(name, content_type) is None and not _looks_like_text(head[:SNIFF_BYTES])


def _format_of(name: str, content_type: str | None) -> str | None:
    """The key of ``READERS`` the content type or the extension names; None for neither."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in CONTENT_TYPES:
        return CONTENT_TYPES[media_type]
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return suffix if suffix in READERS else None


def _looks_like_text(head: bytes) -> bool:
    """No NUL and UTF-8 throughout (a character cut by the end of a full ``SNIFF_BYTES`` allowed)."""
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < SNIFF_BYTES)
    except UnicodeDecodeError:
        return False
    return True
