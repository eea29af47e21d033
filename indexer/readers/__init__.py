"""The one table of document formats: a new format is a reader module plus a row here."""

from __future__ import annotations

from dataclasses import replace

from indexer.readers.base import Extracted, Reader, Section, UnreadableDocument
from indexer.readers.docx import DocxReader
from indexer.readers.html import HtmlReader
from indexer.readers.markdown import MarkdownReader
from indexer.readers.pdf import PdfReader
from indexer.readers.text import TextReader

_MARKDOWN, _HTML = MarkdownReader(), HtmlReader()
READERS: dict[str, Reader] = {
    ".txt": TextReader(),
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

__all__ = [
    "CONTENT_TYPES",
    "READERS",
    "SUPPORTED_SUFFIXES",
    "Extracted",
    "Reader",
    "Section",
    "UnreadableDocument",
    "extract",
    "reader_for",
]


def reader_for(name: str, content_type: str | None = None) -> Reader:
    """The reader for a known content type, else for the file name's extension."""
    return READERS[_format_of(name, content_type)]


def extract(data: bytes, name: str, content_type: str | None = None) -> Extracted:
    """Text and structure of ``data``; ``UnreadableDocument`` says why not."""
    declared = _format_of(name, content_type)
    actual = next((suffix for magic, suffix in _MAGIC if data.startswith(magic)), declared)
    extracted = READERS[actual].read(data, name)
    if actual == declared:
        return extracted
    note = f"content is {actual[1:].upper()}, not {declared[1:].upper()} as its name says; read as {actual[1:].upper()}"
    return replace(extracted, notes=(*extracted.notes, note))


def _format_of(name: str, content_type: str | None) -> str:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in CONTENT_TYPES:
        return CONTENT_TYPES[media_type]
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in READERS:
        raise UnreadableDocument(f"unsupported format {suffix or '(no extension)'}")
    return suffix
