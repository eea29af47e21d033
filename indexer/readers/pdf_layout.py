"""One PDF page's text as paragraphs: pdfium's lines joined where the layout only wrapped them.

pdfium hands over a page's characters in reading order, with a generated CR LF between lines, and it has
already joined a word hyphenated at a line end, marking that hyphen U+0002. Wrapping carries no meaning, so
the lines of a paragraph are joined with a space. A line ends its paragraph when either

- the next line is not the page's usual line pitch below it: more than ``PARAGRAPH_GAP`` times that pitch
  (paragraph spacing, a blank line), or level with or above it (a new column or block). The usual pitch is
  the page's most frequent baseline step, so 1.5- or double-spaced text is judged against itself; or
- the next line's first word would have fitted at its end, so the layout did not wrap there (a paragraph's
  short last line, a heading, a list item). The room is measured to the right edge of the page's lines
  that start at the same left edge, which is the column's edge or short of it, never past it.

The marked hyphen is dropped before a lower-case letter ("nego-|tiations" -> "negotiations") and kept
before anything else ("Anglo-|Saxon", "COVID-|19"). Without a dictionary a compound split at a line end
before a lower-case word ("well-|known") loses its hyphen; hyphenation is by far the commoner case in
wrapped prose. Rotated text is read as pdfium orders it, the geometry rules assume horizontal lines.

Every character of the page text keeps the index of the text page character it came from (``PageText``), so
a span of the indexed text can be found again on the page, character box by character box.
"""

from __future__ import annotations

import ctypes
import itertools
import re
from collections import Counter
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

PARAGRAPH_GAP = 1.2
# Wider than any font's space (about a quarter to a third of the font height), so a line the layout had to
# wrap is never taken for a paragraph's last line.
_SPACE_HEIGHTS = 0.5
# From a line's first to its last non-blank character; pdfium ends lines with CR LF, blank characters both.
_INKED_LINE = re.compile(r"\S(?:[^\r\n]*\S)?")
_WORD = re.compile(r"\S+")
# pdfium's mark for a hyphen at which it joined two lines.
_MARKED_HYPHEN = "\x02"
# The text page index of a character the layout added: a space joining lines, a line break between paragraphs.
ADDED = -1


@dataclass(frozen=True)
class PageText:
    """A page's text as the PDF reader indexes it (paragraphs, one a line) and, for each of its characters, the
    index of the text page character it came from (``ADDED`` for a space or line break the layout added)."""

    text: str
    chars: tuple[int, ...]


@dataclass(frozen=True)
class _Line:
    """One pdfium line: its characters with their indices and, in page points, where its ink starts and ends and
    its first word ends.

    A line pdfium joined at a hyphen spans two layout lines, so it has a first and a last baseline.
    """

    chars: tuple[tuple[str, int], ...]
    left: float
    right: float
    first_word_right: float
    first_baseline: float
    last_baseline: float
    height: float


def page_text(textpage: pdfium.PdfTextPage) -> PageText:
    """The page's paragraphs in reading order, one a line, each with its wrapped lines joined by spaces."""
    lines = _layout_lines(textpage)
    if not lines:
        return PageText("", ())
    pitch = _usual_pitch(lines)
    text: list[tuple[str, int]] = []
    paragraph = list(lines[0].chars)
    for line, following in itertools.pairwise(lines):
        if _ends_paragraph(line, following, pitch, _column_right(line, lines)):
            text += [*_mend_hyphens(paragraph), ("\n", ADDED)]
            paragraph = []
        else:
            paragraph.append((" ", ADDED))
        paragraph += following.chars
    text += _mend_hyphens(paragraph)
    return PageText("".join(char for char, _ in text), tuple(index for _, index in text))


def _layout_lines(textpage: pdfium.PdfTextPage) -> list[_Line]:
    """pdfium's lines with their geometry; blank lines are dropped (the gap they leave still counts)."""
    raw, code_at = textpage.raw, pdfium_c.FPDFText_GetUnicode
    # One character per index, so a match's offsets are the char indices the geometry calls take.
    chars = "".join(map(chr, [code_at(raw, index) for index in range(textpage.count_chars())]))
    inked_lines = (inked for inked in _INKED_LINE.finditer(chars) if inked[0].strip("\x00"))
    return [_measure_line(textpage, chars, inked.start(), inked.end() - 1) for inked in inked_lines]


def _measure_line(textpage: pdfium.PdfTextPage, chars: str, first: int, last: int) -> _Line:
    word = _WORD.match(chars, first)
    word_end = (word.end() if word else first + 1) - 1
    # The loose box spans the font's ascent to descent in page space, whatever scaling the text matrix applies.
    _, bottom, _, top = textpage.get_charbox(first, loose=True)
    return _Line(
        chars=tuple((chars[index], index) for index in range(first, last + 1) if chars[index] != "\x00"),
        left=textpage.get_charbox(first)[0],
        right=textpage.get_charbox(last)[2],
        first_word_right=textpage.get_charbox(word_end)[2],
        first_baseline=_baseline(textpage, first),
        last_baseline=_baseline(textpage, last),
        height=top - bottom,
    )


def _baseline(textpage: pdfium.PdfTextPage, index: int) -> float:
    x, y = ctypes.c_double(), ctypes.c_double()
    pdfium_c.FPDFText_GetCharOrigin(textpage.raw, index, x, y)
    return y.value


def _usual_pitch(lines: list[_Line]) -> float:
    """The most frequent step down from one baseline to the next (to half a point; ties: the smaller)."""
    drops = [line.last_baseline - following.first_baseline for line, following in itertools.pairwise(lines)]
    steps = Counter(round(drop * 2) / 2 for drop in drops)
    positive = [(-count, step) for step, count in steps.items() if step > 0]
    return min(positive)[1] if positive else 0.0


def _column_right(line: _Line, lines: list[_Line]) -> float:
    return max(other.right for other in lines if abs(other.left - line.left) <= line.height)


def _ends_paragraph(line: _Line, following: _Line, pitch: float, column_right: float) -> bool:
    drop = line.last_baseline - following.first_baseline
    if drop <= 0 or drop > PARAGRAPH_GAP * pitch:
        return True
    word = following.first_word_right - following.left
    return word + _SPACE_HEIGHTS * following.height <= column_right - line.right


def _mend_hyphens(chars: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Each marked hyphen dropped before a lower-case letter, else made a hyphen (at the mark's index); the
    character after a mark is taken as it is."""
    mended: list[tuple[str, int]] = []
    position = 0
    while position < len(chars):
        char, index = chars[position]
        if char != _MARKED_HYPHEN:
            mended.append((char, index))
            position += 1
            continue
        following = chars[position + 1 : position + 2]
        if not (following and following[0][0].islower()):
            mended.append(("-", index))
        mended += following
        position += 2
    return mended
