"""Where a passage sits in its document: the pages it spans and the heading path above it."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    page: int | None
    page_end: int | None
    section: str | None


def locate(document, start: int, end: int) -> Location:
    """1-based first and last page of ``[start, end)`` (None without pages) and the section path at ``start``."""
    pages = getattr(document, "pages", ())
    page = bisect_right(pages, start) if pages else None
    page_end = bisect_right(pages, max(start, end - 1)) if pages else None
    sections = getattr(document, "sections", ())
    starts = [section.start for section in sections]
    at = bisect_right(starts, start) - 1
    section = " > ".join(sections[at].path) if at >= 0 and sections[at].path else None
    return Location(page, page_end, section)
