"""What every reader returns, and the one error a reader raises for a file it cannot use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from search.errors import SemsearchError


class UnreadableDocument(SemsearchError):
    """A file that cannot be indexed; the message is a short reason shown next to the file name."""


@dataclass(frozen=True)
class Section:
    """The heading path (outermost first) that applies from ``start`` until the next section starts."""

    start: int
    path: tuple[str, ...]


@dataclass(frozen=True)
class Extracted:
    """Text of a document plus its structure; every offset points into ``text``.

    ``pages`` holds the offset where each page starts (first is 0), empty for formats without pages.
    ``notes`` are problems worth a warning that did not stop the reading (bad bytes, a wrong extension).
    """

    text: str
    title: str | None = None
    pages: tuple[int, ...] = ()
    sections: tuple[Section, ...] = ()
    notes: tuple[str, ...] = ()


class Reader(Protocol):
    """One document format: bytes in, text and structure out, or ``UnreadableDocument``."""

    def read(self, data: bytes, name: str) -> Extracted: ...


def heading_sections(headings: list[tuple[int, int, str]]) -> tuple[Section, ...]:
    """Sections from ``(start, level, heading)`` in text order: a heading closes those at its level and deeper."""
    stack: list[tuple[int, str]] = []
    sections = []
    for start, level, heading in headings:
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, heading))
        sections.append(Section(start, tuple(name for _, name in stack)))
    return tuple(sections)
