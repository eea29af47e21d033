"""Questions with one typo each, seeded: how well search holds up when a user mistypes a word.

One word of ``MIN_LETTERS`` or more letters that the index knows is picked per question and given one edit
(a letter dropped, doubled, replaced by a keyboard neighbour, or swapped with the next) at a position that is
neither the first nor the last letter, as people mistype; the result must still have ``MIN_LETTERS`` letters
(shorter words are never corrected) and be a word the index does not know, or another edit or word is
tried. The same seed gives the same typos.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import replace

from evaluation.questions import Question
from search.ranking.typos import MIN_LETTERS

SEED = 31
_WORD = re.compile(r"[A-Za-z]+")
# Each letter's neighbours on a QWERTY keyboard: the replacements a slipping finger makes.
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {
    letter: "".join(row[j] for j in (i - 1, i + 1) if 0 <= j < len(row))
    + "".join(other[i] for other in _ROWS if other != row and i < len(other) and abs(_ROWS.index(other) - _ROWS.index(row)) == 1)
    for row in _ROWS
    for i, letter in enumerate(row)
}


def with_typos(questions: list[Question], knows: Callable[[str], bool], seed: int = SEED) -> list[Question]:
    """Each question with one seeded typo in a word of ``MIN_LETTERS``+ letters that ``knows`` (and the typo does not)."""
    chance = random.Random(seed)
    return [replace(question, question=_mistyped(question.question, knows, chance)) for question in questions]


def _mistyped(text: str, knows: Callable[[str], bool], chance: random.Random) -> str:
    words = [match for match in _WORD.finditer(text) if len(match[0]) >= MIN_LETTERS and knows(match[0])]
    chance.shuffle(words)
    for match in words:
        for _ in range(20):
            typo = _one_edit(match[0], chance)
            if typo != match[0] and len(typo) >= MIN_LETTERS and not knows(typo):
                return text[: match.start()] + typo + text[match.end() :]
    return text


def _one_edit(word: str, chance: random.Random) -> str:
    at = chance.randrange(1, len(word) - 1)
    kind = chance.choice(("drop", "double", "neighbour", "swap"))
    if kind == "drop":
        return word[:at] + word[at + 1 :]
    if kind == "double":
        return word[:at] + word[at] + word[at:]
    if kind == "swap":
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    letter = word[at].lower()
    return word[:at] + chance.choice(_NEIGHBOURS.get(letter, letter)) + word[at + 1 :]
