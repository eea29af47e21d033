"""Packing sentences into passages that fit the embedding model, with exact offsets.

Pure functions: the token counter is passed in, so tests can check every property on any text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass

from search.sentences import Segment, split_sentences

TokenCounter = Callable[[list[str]], list[int]]
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkingParams:
    """``max_tokens`` per passage (special tokens excluded) and whole sentences repeated between neighbours."""

    max_tokens: int = 128
    overlap_sentences: int = 1

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    start: int
    end: int
    tokens: int


@dataclass(frozen=True)
class Unit:
    """A sentence, or a piece of one too long for the budget: what passages are packed from and highlights pick."""

    start: int
    end: int
    opens_paragraph: bool
    tokens: int


def chunk_text(text: str, count_tokens: TokenCounter, params: ChunkingParams) -> list[Chunk]:
    """Passages of at most ``params.max_tokens`` tokens covering every non-blank character of ``text``."""
    return pack_passages(text, sentence_units(text, count_tokens, params.max_tokens), count_tokens, params)


def sentence_units(text: str, count_tokens: TokenCounter, budget: int) -> list[Unit]:
    """Sentences, with any sentence over the budget cut at word boundaries."""
    segments = split_sentences(text)
    counts = count_tokens([text[s.start:s.end] for s in segments])
    units: list[Unit] = []
    for segment, tokens in zip(segments, counts):
        if tokens <= budget:
            units.append(Unit(segment.start, segment.end, segment.opens_paragraph, tokens))
        else:
            units.extend(_split_long(text, segment, count_tokens, budget))
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
        while size > 1 and count_tokens([text[start:start + size]])[0] > budget:
            size = max(1, size * 3 // 4)
        runs.append((start, start + size))
        start += size
    return runs


def pack_passages(text: str, units: list[Unit], count_tokens: TokenCounter, params: ChunkingParams) -> list[Chunk]:
    """Greedy packing of whole units, preferring to break where a paragraph starts."""
    budget = params.max_tokens
    chunks: list[Chunk] = []
    first = 0
    while first < len(units):
        last, total = first, units[first].tokens
        while last + 1 < len(units):
            following = units[last + 1]
            if total + following.tokens > budget or (following.opens_paragraph and total >= budget // 2):
                break
            last += 1
            total += following.tokens
        exact = count_tokens([text[units[first].start:units[last].end]])[0]
        while exact > budget and last > first:
            last -= 1
            exact = count_tokens([text[units[first].start:units[last].end]])[0]
        chunks.append(Chunk(units[first].start, units[last].end, exact))
        first = _next_first(units, first, last, params)
    return chunks


def _next_first(units: list[Unit], first: int, last: int, params: ChunkingParams) -> int:
    """Repeat up to ``overlap_sentences`` trailing sentences, never across a paragraph start, always moving on."""
    following = last + 1
    if following >= len(units) or units[following].opens_paragraph:
        return following
    back = min(params.overlap_sentences, last - first)
    while back > 0 and sum(u.tokens for u in units[following - back:following + 1]) > params.max_tokens // 2:
        back -= 1
    return following - back
