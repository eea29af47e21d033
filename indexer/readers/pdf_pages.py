"""A PDF page as a PNG, with spans of its indexed text marked where they stand on the printed page.

The page's text is rebuilt as the PDF reader built it (``pdf_layout.page_text``), which keeps for every
character the text page character it came from; a span of the indexed text is therefore a run of text page
characters, and pdfium's own selection rectangles for that run (one per line) are what gets marked. When
the rebuilt text differs from the indexed text the file changed after it was indexed, and marking would
point at the wrong words: that is refused (``DocumentChanged``) rather than guessed.

Marks are drawn like a highlighter pen (the page multiplied by a colour), so the text stays black.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image

from indexer.readers.pdf import PDFIUM_LOCK
from indexer.readers.pdf_layout import ADDED, PageText, page_text
from search.errors import DocumentChanged, PageNotFound

MIN_WIDTH, DEFAULT_WIDTH, MAX_WIDTH = 100, 1200, 2000
# Highlighter colours as multipliers of the page's RGB: the passage pale yellow, its answer a stronger orange.
PASSAGE = (255, 243, 150)
ANSWER = (255, 190, 90)
# Level 1 of zlib: a 1,200-pixel page compresses to about the same size as at level 6, in a fraction of the time.
_PNG_COMPRESSION = 1


@dataclass(frozen=True)
class Mark:
    """Characters ``start``..``end`` of the page's indexed text, painted with ``color``."""

    start: int
    end: int
    color: tuple[int, int, int]


@dataclass(frozen=True)
class PageImage:
    """A rendered page: its PNG, its size in pixels and the box (left, top, right, bottom, in pixels) around the
    marks of the colour drawn last (the answer, where there is one), or None when nothing was marked."""

    png: bytes
    width: int
    height: int
    marked: tuple[int, int, int, int] | None


def render_page(path: Path, number: int, width: int, indexed_text: str, marks: Sequence[Mark] = ()) -> PageImage:
    """Page ``number`` (from 1) of the PDF at ``path``, ``width`` pixels wide, with ``marks`` painted in order.

    ``indexed_text`` is the page's text as the index holds it; marks are only drawn when the file still gives it.
    """
    with PDFIUM_LOCK:
        document = pdfium.PdfDocument(path)
        try:
            if not 1 <= number <= len(document):
                raise PageNotFound(f"page {number} is past the end: the PDF has {len(document)} pages")
            page = document[number - 1]
            try:
                return _render(page, width, indexed_text, marks)
            finally:
                page.close()
        finally:
            document.close()


def _render(page: pdfium.PdfPage, width: int, indexed_text: str, marks: Sequence[Mark]) -> PageImage:
    bitmap = page.render(scale=width / page.get_width(), rev_byteorder=True)
    pixels = bitmap.to_numpy()
    box = None
    if marks:
        textpage = page.get_textpage()
        try:
            text = page_text(textpage)
            if text.text != indexed_text:
                raise DocumentChanged("the file has changed since it was indexed; index it again to mark passages on its pages")
            converter = bitmap.get_posconv(page)
            framed: list[tuple[int, int, int, int]] = []
            for mark in marks:
                boxes = [_device_box(converter, rect) for rect in _selection_rects(textpage, text, mark.start, mark.end)]
                for left, top, right, bottom in boxes:
                    _highlight(pixels, left, top, right, bottom, mark.color)
                framed = [*framed, *boxes] if mark.color == marks[-1].color else framed
            if framed:
                box = (min(b[0] for b in framed), min(b[1] for b in framed), max(b[2] for b in framed), max(b[3] for b in framed))
        finally:
            textpage.close()
    buffer = io.BytesIO()
    Image.fromarray(pixels[:, :, :3]).save(buffer, format="PNG", compress_level=_PNG_COMPRESSION)
    return PageImage(buffer.getvalue(), bitmap.width, bitmap.height, box)


def _selection_rects(textpage: pdfium.PdfTextPage, text: PageText, start: int, end: int) -> list[tuple[float, float, float, float]]:
    """pdfium's rectangles (left, bottom, right, top in page points) for the text page characters behind
    ``text.text[start:end]``: the run from the first to the last of them, one rectangle per line."""
    indices = [index for index in text.chars[max(start, 0) : max(end, 0)] if index != ADDED]
    if not indices:
        return []
    first, last = min(indices), max(indices)
    count = textpage.count_rects(first, last - first + 1)
    return [textpage.get_rect(position) for position in range(count)]


def _device_box(converter: pdfium.PdfPosConv, rect: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """A page-space rectangle as (left, top, right, bottom) pixels of the bitmap, whatever the page's rotation."""
    left, bottom, right, top = rect
    corners = [converter.to_bitmap(x, y) for x, y in ((left, bottom), (right, top))]
    xs, ys = [x for x, _ in corners], [y for _, y in corners]
    return min(xs), min(ys), max(xs), max(ys)


def _highlight(pixels: np.ndarray, left: int, top: int, right: int, bottom: int, color: tuple[int, int, int]) -> None:
    height, width = pixels.shape[:2]
    # A little room above and below, as a pen stroke has; clipped to the bitmap.
    pad = max(1, (bottom - top) // 8)
    region = pixels[max(top - pad, 0) : min(bottom + pad, height), max(left - 1, 0) : min(right + 1, width), :3]
    region[...] = (region.astype(np.uint16) * np.array(color, dtype=np.uint16) // 255).astype(np.uint8)
