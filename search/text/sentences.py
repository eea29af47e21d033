"""Sentence and line segmentation with exact character offsets."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "jr",
        "sr",
        "no",
        "nos",
        "fig",
        "cf",
        "approx",
        "gen",
        "col",
        "lt",
        "sgt",
        "gov",
        "sen",
        "rep",
        "inc",
        "ltd",
        "co",
        "mt",
        "ft",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "vol",
        "pp",
        "ch",
        "sec",
        "art",
        "para",
        "est",
        "dept",
        "univ",
    ]
)
_LAST_WORD = re.compile(r"(\S+)$")


@dataclass(frozen=True)
class Segment:
    """A sentence (or a line without end punctuation); ``opens_paragraph`` marks the first of a line."""

    start: int
    end: int
    opens_paragraph: bool


def split_sentences(text: str) -> list[Segment]:
    """Sentences of ``text`` without surrounding white space; together they hold every non-blank character."""
    segments: list[Segment] = []
    line_start = 0
    for line in text.split("\n"):
        first = True
        for start, end in _sentences_in_line(line):
            segments.append(Segment(line_start + start, line_start + end, first))
            first = False
        line_start += len(line) + 1
    return segments


def _sentences_in_line(line: str) -> list[tuple[int, int]]:
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(line):
        if _is_false_boundary(line, match):
            continue
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(line)))
    return [trimmed for span in spans if (trimmed := _trim(line, *span))]


def _is_false_boundary(line: str, match: re.Match[str]) -> bool:
    """Abbreviations ("Dr.", "U.S.") and a lower-case continuation do not end a sentence.

    A mark detached from its word ("flow . the") always does: lower-cased, pre-tokenised text writes
    every sentence end that way.
    """
    if match.start() > 0 and line[match.start() - 1].isspace():
        return False
    rest = line[match.end() :].lstrip()
    if rest[:1].islower():
        return True
    if match.group().startswith(".") and len(match.group()) == 1:
        word = _LAST_WORD.search(line[: match.start()])
        if word:
            token = word.group(1).lower().strip("(\"'“‘")
            return token in _ABBREVIATIONS or len(token) == 1 or "." in token
    return False


def _trim(line: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and line[start].isspace():
        start += 1
    while end > start and line[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None
