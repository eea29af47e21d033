"""How long a page image takes: every page of some PDFs rendered as ``GET /documents/{doc_id}/pages/{n}.png``
renders one on a cache miss (``semsearch bench pages``).

Each page is rendered with a passage and an answer marked (the page's first 600 and 150 characters), so the
time includes rebuilding the page's text to place the marks, not only rasterising and PNG encoding.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from indexer.readers import extract
from indexer.readers.pdf import PAGE_BREAK
from indexer.readers.pdf_pages import ANSWER, PASSAGE, Mark, render_page

TARGET_MS = 300.0


def run_page_render(pdfs: Sequence[Path], width: int, log: Callable[[str], None] = lambda _: None) -> dict:
    """Milliseconds per page (median, p95, slowest) over every page of ``pdfs`` at ``width`` pixels."""
    timings: list[float] = []
    for path in pdfs:
        extracted = extract(path.read_bytes(), path.name)
        ends = [start - len(PAGE_BREAK) for start in extracted.pages[1:]] + [len(extracted.text)]
        for number, (start, end) in enumerate(zip(extracted.pages, ends), start=1):
            page = extracted.text[start:end]
            marks = (Mark(0, min(600, len(page)), PASSAGE), Mark(0, min(150, len(page)), ANSWER))
            began = time.perf_counter()
            render_page(path, number, width, page, marks)
            timings.append((time.perf_counter() - began) * 1000)
        log(f"{path.name}: {len(extracted.pages)} pages")
    if not timings:
        raise ValueError("no pages to render")
    ordered = sorted(timings)
    return {
        "pdfs": len(pdfs),
        "pages": len(timings),
        "width": width,
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max_ms": round(ordered[-1], 1),
        "target_ms": TARGET_MS,
    }
