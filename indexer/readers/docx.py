"""Word documents through python-docx, after a zip-bomb check that reads only the zip's directory."""

from __future__ import annotations

import io
import re
import zipfile

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from lxml.etree import XMLSyntaxError

from indexer.metadata import plausible_title
from indexer.readers.base import Extracted, UnreadableDocument, heading_sections

MAX_EXPANDED_BYTES = 200_000_000
MAX_ENTRIES = 10_000
_HEADING_STYLE = re.compile(r"Heading ([1-9])$")


class DocxReader:
    """Paragraphs and tables in document order; ``Heading N`` paragraphs become sections, table rows lines."""

    def __init__(self, max_expanded_bytes: int = MAX_EXPANDED_BYTES, max_entries: int = MAX_ENTRIES) -> None:
        self.max_expanded_bytes = max_expanded_bytes
        self.max_entries = max_entries

    def read(self, data: bytes, name: str) -> Extracted:
        self._require_safe_zip(data)
        try:
            document = docx.Document(io.BytesIO(data))
            lines, headings = _lines_and_headings(document)
            core_title = plausible_title(document.core_properties.title)
        except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile, XMLSyntaxError) as exc:
            raise UnreadableDocument(f"damaged DOCX ({type(exc).__name__})") from None
        if not any(line.strip() for line in lines):
            raise UnreadableDocument("DOCX has no text")
        return Extracted(
            text="\n".join(lines),
            title=core_title or (headings[0][2] if headings else None),
            sections=heading_sections(headings),
        )

    def _require_safe_zip(self, data: bytes) -> None:
        """Sizes come from the zip directory; zipfile never inflates an entry past its stated size."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                entries = archive.infolist()
                names = {entry.filename for entry in entries}
        except zipfile.BadZipFile:
            raise UnreadableDocument("not a DOCX (not a zip file)") from None
        if len(entries) > self.max_entries:
            raise UnreadableDocument(f"DOCX has {len(entries)} zip entries, over the {self.max_entries} limit")
        if sum(entry.file_size for entry in entries) > self.max_expanded_bytes:
            raise UnreadableDocument("DOCX expands past the size limit")
        if "word/document.xml" not in names:
            raise UnreadableDocument("not a DOCX (a zip without word/document.xml)")


def _lines_and_headings(document: docx.document.Document) -> tuple[list[str], list[tuple[int, int, str]]]:
    lines: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            block_lines = [_row_text(row) for row in block.rows]
        else:
            block_lines = [block.text]
            level = _HEADING_STYLE.match(block.style.name if block.style is not None else "")
            if level and block.text.strip():
                headings.append((offset, int(level.group(1)), block.text.strip()))
        for line in block_lines:
            lines.append(line)
            offset += len(line) + 1
    return lines, headings


def _row_text(row) -> str:
    """Cells joined with " | "; a merged cell appears once, not once per grid column it spans."""
    cells: list[str] = []
    previous = None
    for cell in row.cells:
        if cell._tc is not previous:
            cells.append(" ".join(cell.text.split()))
        previous = cell._tc
    return " | ".join(cells)
