"""Page images of the indexed PDFs: the file found in the documents folder, the marks placed, renders cached.

A document id is looked up in the index first and only then joined to the documents folder; a path that
resolves outside the folder (an absolute id, a symlink leading out) is refused, never opened.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from indexer.readers.pdf import PAGE_BREAK
from indexer.readers.pdf_pages import Mark, PageImage, render_page
from search.errors import PageNotFound
from search.records import DocumentRecord

# Rendered pages kept: about 150 pages at 1,200 pixels (a PNG of a text page is 200-500 KB).
CACHE_BYTES = 64 << 20


class PageImages:
    """Renders pages of the documents folder's PDFs, keeping the most recent within ``budget`` bytes of PNG.

    A render is keyed by the file's size and modification time, so a file changed in place is rendered anew.
    """

    def __init__(self, docs: Path, budget: int = CACHE_BYTES) -> None:
        self._docs = docs
        self._budget = budget
        self._held = 0
        self._cache: OrderedDict[tuple, PageImage] = OrderedDict()
        self._lock = threading.Lock()

    def render(self, document: DocumentRecord, number: int, width: int, marks: Sequence[Mark] = ()) -> PageImage:
        """Page ``number`` (from 1) of ``document``, with ``marks`` given in offsets of the document's text."""
        if not document.pages:
            raise PageNotFound(f"{document.doc_id!r} has no pages to show: only PDF documents do")
        if not 1 <= number <= len(document.pages):
            raise PageNotFound(f"page {number} is past the end: {document.doc_id!r} has {len(document.pages)} pages")
        path = self._file_of(document.doc_id)
        try:
            info = path.stat()
        except OSError:
            raise PageNotFound(f"{document.doc_id!r} is no longer in the documents folder") from None
        start = document.pages[number - 1]
        end = document.pages[number] - len(PAGE_BREAK) if number < len(document.pages) else len(document.text)
        on_page = tuple(_on_page(mark, start, end) for mark in marks if mark.start < end and mark.end > start)
        key = (str(path), info.st_size, info.st_mtime_ns, number, width, on_page)
        with self._lock:
            if (cached := self._cache.get(key)) is not None:
                self._cache.move_to_end(key)
                return cached
        image = render_page(path, number, width, document.text[start:end], on_page)
        self._keep(key, image)
        return image

    def _file_of(self, doc_id: str) -> Path:
        folder = self._docs.resolve()
        path = (folder / doc_id).resolve()
        if not path.is_relative_to(folder) or path == folder:
            raise PageNotFound(f"{doc_id!r} is not a file in the documents folder")
        return path

    def _keep(self, key: tuple, image: PageImage) -> None:
        with self._lock:
            if key in self._cache or len(image.png) > self._budget:
                return
            self._cache[key] = image
            self._held += len(image.png)
            while self._held > self._budget:
                _, dropped = self._cache.popitem(last=False)
                self._held -= len(dropped.png)


def _on_page(mark: Mark, start: int, end: int) -> Mark:
    """``mark`` cut to the page ``start``..``end`` of the document's text, in offsets of the page's text."""
    return Mark(max(mark.start, start) - start, min(mark.end, end) - start, mark.color)
