"""Where a span of a document sits: its page range and the heading path in force."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Protocol

from indexer.readers.base import Section


class Structured(Protocol):
    @property
    def pages(self) -> tuple[int, ...]: ...

    @property
    def sections(self) -> tuple[Section, ...]: ...


@dataclass(frozen=True)
class Location:
    """1-based ``page`` and ``page_end`` (None without pages); ``section`` like "Report > Details"."""

    page: int | None
    page_end: int | None
    section: str | None


def locate(document: Structured, start: int, end: int) -> Location:
    """The location of ``text[start:end]``: the section is the one in force where the span starts."""
    page = page_end = None
    if document.pages:
        page = bisect_right(document.pages, start)
        page_end = max(page, bisect_right(document.pages, max(start, end - 1)))
    starts = [section.start for section in document.sections]
    index = bisect_right(starts, start) - 1
    path = document.sections[index].path if index >= 0 else ()
    return Location(page, page_end, " > ".join(path) if path else None)
