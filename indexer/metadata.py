"""Titles and dates read from a document's own text."""

from __future__ import annotations

import re
from datetime import date

from search.text.sentences import split_sentences

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(\S.*?)\s*#*\s*$", re.MULTILINE)
_MAX_TITLE_CHARS = 120
_SHORT_TITLE_CHARS = 80
_MAX_METADATA_TITLE_CHARS = 200
# What authoring tools write when the author gave no title: the file's name or path (a browser prints the
# page's file name, "r.html"), a placeholder ("Untitled", "Document1"), or the program's label before the file
# name ("Microsoft Word - report.docx").
_FILE_EXTENSION = re.compile(
    r"\.(html?|xhtml|php|aspx?|jsp|pdf|docx?|odt|rtf|txt|md|tex|indd|pptx?|xlsx?|ps|eps|dvi|qxd|pages|key)$",
    re.IGNORECASE,
)
_SINGLE_FILE_NAME = re.compile(r"^[\w.-]+\.[A-Za-z][A-Za-z0-9]{0,4}$")
_PATH_OR_URL = re.compile(r"^([a-z][a-z0-9+.-]*://|www\.|[a-z]:[\\/]|[/\\~])", re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"^(untitled(\s+(document|presentation))?|new\s+document|(document|presentation|book|workbook)\s*\d+)[\s_-]*\d*$",
    re.IGNORECASE,
)
_PRODUCER_LABEL = re.compile(r"^microsoft\s+(office\s+)?\w+\s+-\s", re.IGNORECASE)
_DATE_WINDOW = 400
_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE_PATTERNS = [
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), ("y", "m", "d")),
    (re.compile(rf"\b(\d{{1,2}})\s+{_MONTH}\s+(\d{{4}})\b", re.IGNORECASE), ("d", "mon", "y")),
    (re.compile(rf"\b{_MONTH}\s+(\d{{1,2}}),?\s+(\d{{4}})\b", re.IGNORECASE), ("mon", "d", "y")),
]


def extract_title(text: str, fallback: str) -> str:
    """First Markdown heading, else a short first line, else that line's first sentence, else ``fallback``.

    A first sentence over ``_SHORT_TITLE_CHARS`` is cut at a word boundary and ends with "…"; the file
    name is the last resort because it tells a reader nothing about the document.
    """
    heading = _HEADING.search(text)
    if heading:
        return heading.group(1).strip()
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not line:
        return fallback
    if len(line) <= _MAX_TITLE_CHARS:
        return line
    first = split_sentences(line)[0]
    sentence = line[first.start : first.end]
    if len(sentence) <= _SHORT_TITLE_CHARS:
        return sentence
    cut = sentence.rfind(" ", 0, _SHORT_TITLE_CHARS)
    return sentence[:cut].rstrip(" ,;:—–-") + "…" if cut > 0 else fallback


def plausible_title(value: str | None) -> str | None:
    """A metadata title with its white space collapsed, or None when it is not one an author wrote.

    Not a title: a file name ("r.html", "scan_0012.jpg"), a path or URL, a placeholder ("Untitled",
    "Document1"), a producer's label ("Microsoft Word - report.docx"), no letters at all, or a long text.
    Callers then take the title from the text (``extract_title``).
    """
    title = " ".join((value or "").split())
    if not title or len(title) > _MAX_METADATA_TITLE_CHARS or not any(c.isalpha() for c in title):
        return None
    patterns = (_FILE_EXTENSION, _SINGLE_FILE_NAME, _PATH_OR_URL, _PLACEHOLDER, _PRODUCER_LABEL)
    return None if any(pattern.search(title) for pattern in patterns) else title


def extract_date(text: str) -> str | None:
    """An ISO date stated near the start of the text (``date 2025-11-28``, ``15 MAR 2023``), if any."""
    window = text[:_DATE_WINDOW]
    found: list[tuple[int, str]] = []
    for pattern, order in _DATE_PATTERNS:
        for match in pattern.finditer(window):
            parsed = _to_iso(dict(zip(order, match.groups())))
            if parsed:
                found.append((match.start(), parsed))
    return min(found)[1] if found else None


def _to_iso(parts: dict[str, str]) -> str | None:
    month = _MONTHS[parts["mon"].lower().rstrip(".")] if "mon" in parts else int(parts["m"])
    try:
        return date(int(parts["y"]), month, int(parts["d"])).isoformat()
    except ValueError:
        return None
