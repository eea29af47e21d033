"""Records that cross module boundaries: documents and passages as stored, hits as returned."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DocumentRecord:
    """A document as the index keeps it; passage offsets point into ``text``, ``pages`` are page start offsets.

    ``source`` is the writer's own note on where the document came from (the indexer's file stat, as JSON):
    backends store it and give it back, and never read it."""

    doc_id: str
    title: str
    date: str | None
    text: str
    sha256: str
    pages: tuple[int, ...] = ()
    source: str = ""

    @property
    def length(self) -> int:
        return len(self.text)


@dataclass(frozen=True)
class PassageRecord:
    """A span of one document's text; ``key`` is its id in the vector and keyword indexes."""

    passage_id: str
    doc_id: str
    start: int
    end: int
    page: int | None = None
    page_end: int | None = None
    section: str | None = None
    key: int = 0


@dataclass(frozen=True)
class Span:
    """A half-open character range; ``page`` is the page it starts on, where the document has pages."""

    start: int
    end: int
    page: int | None = None


@dataclass(frozen=True)
class Hit:
    """One ranked passage with everything a caller needs to show it."""

    rank: int
    score: float
    doc_id: str
    title: str
    date: str | None
    passage_id: str
    text: str
    start: int
    end: int
    page: int | None = None
    page_end: int | None = None
    section: str | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    highlights: tuple[Span, ...] = ()
    explain: dict | None = None
