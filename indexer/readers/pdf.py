"""PDF through pdfium (BSD/Apache, unlike the AGPL PyMuPDF): text page by page, each page closed at once.

A page's text is its paragraphs, one per line, with the layout's wrapping undone (``pdf_layout``); pages
are joined with a blank line.
"""

from __future__ import annotations

import threading

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from indexer.metadata import plausible_title
from indexer.readers.base import Extracted, UnreadableDocument
from indexer.readers.pdf_layout import page_text

MAX_PAGES = 20_000
# pdfium is not thread-safe: a server reads uploads and renders pages from several threads, one at a time.
PDFIUM_LOCK = threading.Lock()
PAGE_BREAK = "\n\n"
_REASONS = {
    pdfium_c.FPDF_ERR_PASSWORD: "encrypted PDF (needs a password)",
    pdfium_c.FPDF_ERR_SECURITY: "encrypted PDF (unsupported security handler)",
    pdfium_c.FPDF_ERR_FORMAT: "damaged PDF",
    pdfium_c.FPDF_ERR_FILE: "damaged PDF",
}


class PdfReader:
    """Pages joined with a blank line; ``pages`` holds where each starts; the metadata title when it is one."""

    def read(self, data: bytes, name: str) -> Extracted:
        if b"%PDF-" not in data[:1024]:
            raise UnreadableDocument("not a PDF (no %PDF- header)")
        with PDFIUM_LOCK:
            texts, title = _pages_and_title(data)
        if not any(text.strip() for text in texts):
            raise UnreadableDocument("no text layer (scanned or image-only PDF)")
        starts, offset = [], 0
        for text in texts:
            starts.append(offset)
            offset += len(text) + len(PAGE_BREAK)
        return Extracted(text=PAGE_BREAK.join(texts), title=title, pages=tuple(starts))


def _pages_and_title(data: bytes) -> tuple[list[str], str | None]:
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise UnreadableDocument(_REASONS.get(getattr(exc, "err_code", None), "damaged PDF")) from None
    try:
        if len(document) > MAX_PAGES:
            raise UnreadableDocument(f"PDF has {len(document)} pages, over the {MAX_PAGES}-page limit")
        return [_page_text(document, index) for index in range(len(document))], plausible_title(document.get_metadata_value("Title"))
    finally:
        document.close()


def _page_text(document: pdfium.PdfDocument, index: int) -> str:
    try:
        page = document[index]
    except pdfium.PdfiumError:
        raise UnreadableDocument(f"damaged PDF (page {index + 1} cannot be read)") from None
    try:
        textpage = page.get_textpage()
        try:
            return page_text(textpage).text
        finally:
            textpage.close()
    finally:
        page.close()
