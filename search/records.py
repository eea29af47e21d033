"""Records that cross module boundaries: documents and passages as stored, hits as returned."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DocumentRecord:
    """A document as the index keeps it; passage offsets point into ``text``."""

    doc_id: str
    title: str
    date: str | None
    text: str
    sha256: str

    @property
    def length(self) -> int:
        return len(self.text)


@dataclass(frozen=True)
class PassageRecord:
    """Row i of the vector index is passage i: a span of one document's text."""

    passage_id: str
    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class SentenceRecord:
    """Row i of the sentence vectors: one sentence of a document, scored against queries to pick highlights."""

    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Span:
    """A half-open character range."""

    start: int
    end: int


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
    scores: dict[str, float | None] = field(default_factory=dict)
    highlights: tuple[Span, ...] = ()
