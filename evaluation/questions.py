"""Questions answered by verbatim quotes: a passage answers when its span covers half of a quote."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from search.errors import SemsearchError
from search.records import DocumentRecord, Hit

CUTOFF = 10


@dataclass(frozen=True)
class Question:
    question: str
    doc: str
    quotes: tuple[str, ...]


@dataclass(frozen=True)
class QuestionScores:
    questions: int
    hit_at_1: float
    hit_at_5: float
    mrr_at_10: float

    def as_dict(self) -> dict[str, float | int]:
        return {"questions": self.questions, "hit@1": self.hit_at_1, "hit@5": self.hit_at_5, "mrr@10": self.mrr_at_10}


def load_questions(path: Path) -> list[Question]:
    """One JSON object per line with ``question``, ``doc`` and ``quotes``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        return [Question(row["question"], row["doc"], tuple(row["quotes"])) for row in rows]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SemsearchError(f"cannot read questions from {path}: {exc}") from None


def answers(hit: Hit, question: Question, documents: Mapping[str, DocumentRecord]) -> bool:
    """True when the hit's span covers at least half of one quote's span in the question's document."""
    if hit.doc_id != question.doc:
        return False
    text = documents[hit.doc_id].text
    for quote in question.quotes:
        found = text.find(quote)
        if found < 0:
            continue
        overlap = min(hit.end, found + len(quote)) - max(hit.start, found)
        if overlap * 2 >= len(quote):
            return True
    return False


def score_questions(
    questions: list[Question],
    rank: Callable[[str], list[Hit]],
    documents: Mapping[str, DocumentRecord],
) -> QuestionScores:
    """hit@1, hit@5 and MRR@10 of ``rank`` over ``questions``."""
    first_ranks = []
    for question in questions:
        hits = rank(question.question)[:CUTOFF]
        first_ranks.append(next((i for i, hit in enumerate(hits, 1) if answers(hit, question, documents)), None))
    count = len(questions) or 1
    return QuestionScores(
        questions=len(questions),
        hit_at_1=sum(r == 1 for r in first_ranks if r) / count,
        hit_at_5=sum(r <= 5 for r in first_ranks if r) / count,
        mrr_at_10=sum(1 / r for r in first_ranks if r) / count,
    )
