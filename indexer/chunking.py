"""Packing sentences into passages that fit the embedding model, with exact offsets.

Pure functions: the token counter is passed in, so tests can check every property on any text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from search.settings import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP_SENTENCES
from search.text.sentences import Segment, split_sentences

TokenCounter = Callable[[list[str]], list[int]]
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkingParams:
    """``max_tokens`` per passage (special tokens excluded) and whole sentences repeated between neighbours."""

    max_tokens: int = DEFAULT_CHUNK_TOKENS
    overlap_sentences: int = DEFAULT_OVERLAP_SENTENCES

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    tokens: int


@dataclass(frozen=True)
class Unit:
    """A sentence, or a piece of one too long for the budget: what passages are packed from and highlights pick.

    ``opens_section`` marks the first unit at or after a section start: passages always break before it.
    """

    start: int
    end: int
    opens_paragraph: bool
    tokens: int
    opens_section: bool = False


def chunk_text(text: str, count_tokens: TokenCounter, params: ChunkingParams, section_starts: Sequence[int] = ()) -> list[Chunk]:
    """Passages of at most ``params.max_tokens`` tokens covering every non-blank character of ``text``."""
    units = sentence_units(text, count_tokens, params.max_tokens, section_starts)
    return pack_passages(text, units, count_tokens, params)


def sentence_units(text: str, count_tokens: TokenCounter, budget: int, section_starts: Sequence[int] = ()) -> list[Unit]:
    """Sentences, with any sentence over the budget cut at word boundaries.

    A unit opens a section when it is the first to end after a section start (a heading mid-sentence
    marks the sentence that holds it).
    """
    segments = split_sentences(text)
    counts = count_tokens([text[s.start : s.end] for s in segments])
    pending = sorted(section_starts)
    next_start = 0
    units: list[Unit] = []
    for segment, tokens in zip(segments, counts):
        opens_section = False
        while next_start < len(pending) and pending[next_start] < segment.end:
            opens_section = True
            next_start += 1
        pieces = (
            [Unit(segment.start, segment.end, segment.opens_paragraph, tokens)]
            if tokens <= budget
            else _split_long(text, segment, count_tokens, budget)
        )
        if opens_section:
            pieces[0] = replace(pieces[0], opens_section=True)
        units.extend(pieces)
    return units


def _split_long(text: str, segment: Segment, count_tokens: TokenCounter, budget: int) -> list[Unit]:
    words = [m.span() for m in _WORD.finditer(text, segment.start, segment.end)]
    words = [piece for word in words for piece in _fit_word(text, word, count_tokens, budget)]
    counts = count_tokens([text[a:b] for a, b in words])
    pieces: list[Unit] = []
    first = 0
    while first < len(words):
        last, total = first, counts[first]
        while last + 1 < len(words) and total + counts[last + 1] <= budget:
            last += 1
            total += counts[last]
        start, end = words[first][0], words[last][1]
        exact = count_tokens([text[start:end]])[0]
        while exact > budget and last > first:
            last -= 1
            end = words[last][1]
            exact = count_tokens([text[start:end]])[0]
        pieces.append(Unit(start, end, segment.opens_paragraph and not pieces, exact))
        first = last + 1
    return pieces


def _fit_word(text: str, word: tuple[int, int], count_tokens: TokenCounter, budget: int) -> list[tuple[int, int]]:
    """A single word over the budget is cut into character runs that fit."""
    start, end = word
    if count_tokens([text[start:end]])[0] <= budget:
        return [word]
    runs = []
    while start < end:
        size = min(end - start, budget)
        while size > 1 and count_tokens([text[start : start + size]])[0] > budget:
            size = max(1, size * 3 // 4)
        runs.append((start, start + size))
        start += size
    return runs


def pack_passages(text: str, units: list[Unit], count_tokens: TokenCounter, params: ChunkingParams) -> list[Chunk]:
    """Greedy packing of whole units, always breaking where a section starts, preferably where a paragraph does."""
    budget = params.max_tokens
    chunks: list[Chunk] = []
    first = 0
    while first < len(units):
        last, total = first, units[first].tokens
        while last + 1 < len(units):
            following = units[last + 1]
            if following.opens_section or total + following.tokens > budget or (following.opens_paragraph and total >= budget // 2):
                break
            last += 1
            total += following.tokens
        exact = count_tokens([text[units[first].start : units[last].end]])[0]
        while exact > budget and last > first:
            last -= 1
            exact = count_tokens([text[units[first].start : units[last].end]])[0]
        chunks.append(Chunk(units[first].start, units[last].end, exact))
        first = _next_first(units, first, last, params)
    return chunks


def _next_first(units: list[Unit], first: int, last: int, params: ChunkingParams) -> int:
    """Repeat up to ``overlap_sentences`` trailing sentences, never across a paragraph or section start."""
    following = last + 1
    if following >= len(units) or units[following].opens_paragraph or units[following].opens_section:
        return following
    back = min(params.overlap_sentences, last - first)
    while back > 0 and sum(u.tokens for u in units[following - back : following + 1]) > params.max_tokens // 2:
        back -= 1
    return following - back
