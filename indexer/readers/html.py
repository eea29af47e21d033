"""HTML: the visible main text, boilerplate (navigation, header, footer, scripts) left out.

selectolax (lexbor) rather than trafilatura: it keeps headings where they are, is several times
faster on large pages, and lxml (under trafilatura) silently drops everything nested deeper than
256 elements. lexbor's tree building is quadratic in nesting depth (100,000 nested divs take 30 s),
so a cheap scan of the tags refuses absurdly deep documents first.
"""

from __future__ import annotations

import codecs
import re

from selectolax.lexbor import LexborHTMLParser

from indexer.readers.base import Extracted, UnreadableDocument, heading_sections
from indexer.readers.text import decode_text

MAX_DEPTH = 1000
_BOILERPLATE = (
    "script,style,noscript,template,svg,nav,header,footer,aside,form,[role=navigation],[role=banner],[role=contentinfo],[aria-hidden=true]"
)
_BLOCK_TAGS = "address|article|blockquote|br|caption|dd|div|dl|dt|figcaption|figure|h[1-6]|hr|li|main|ol|p|pre|section|table|ul"
# Markers inserted into the source before parsing, so lines and headings survive text extraction in C.
_LINE, _HEADING, _CELL = "\x02", "\x03", "\x04"
_BLOCK = re.compile(rf"<(?=/?(?:{_BLOCK_TAGS})[\s/>])", re.IGNORECASE)
_HEADINGS = [(re.compile(rf"<(?=h{level}[\s/>])", re.IGNORECASE), f"{_HEADING}{level}<") for level in range(1, 7)]
_HEADING_MARK = re.compile(rf"{_HEADING}[1-6]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")
_SPACE = re.compile(r"\s+")
_EMPTY_LINES = re.compile(rf"[{_LINE} ]*{_LINE}[{_LINE} ]*")
_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_-]+)""", re.IGNORECASE)
_SKIPPED_FOR_DEPTH = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)")
_VOID_OR_SELF_CLOSING = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
        "p",
        "li",
        "dt",
        "dd",
        "tr",
        "td",
        "th",
        "option",
    ]
)


class HtmlReader:
    """``<title>`` as title, ``h1``-``h6`` as lines of the text and as sections, tables one row per line."""

    def read(self, data: bytes, name: str) -> Extracted:
        text, notes = decode_text(data, _declared_charset(data))
        source = _CONTROL.sub("", text)
        _require_sane_depth(source)
        # Constant replacements keep the work in C; a heading's marker opens its line.
        source = _BLOCK.sub(_LINE + "<", source)
        for pattern, marker in _HEADINGS:
            source = pattern.sub(marker, source)
        tree = LexborHTMLParser(source)
        title_node = tree.css_first("title")
        title = _SPACE.sub(" ", title_node.text()).strip() if title_node else ""
        for node in tree.css(_BOILERPLATE):
            node.decompose()
        # Inside tables text typed into the source would be moved out of the table; the tree keeps it.
        for node in tree.css("tr"):
            node.insert_before(_LINE)
        for node in tree.css("td,th"):
            node.insert_before(_CELL)
        root = tree.css_first("main") or tree.css_first("article") or tree.body or tree.root
        lines, headings = _lines_and_headings(root.text(deep=True) if root else "")
        return Extracted(
            text="\n".join(lines),
            title=(title.replace(_LINE, "").replace(_HEADING, "") or None),
            sections=heading_sections(headings),
            notes=notes,
        )


def _declared_charset(data: bytes) -> str:
    declared = _CHARSET.search(data[:4096])
    if declared:
        try:
            return codecs.lookup(declared.group(1).decode("ascii")).name
        except LookupError:
            pass
    return "utf-8"


def _require_sane_depth(source: str) -> None:
    """Approximate the element depth the parser will build, refusing what would take minutes."""
    stack: list[str] = []
    open_count: dict[str, int] = {}
    for closing, tag in _TAG.findall(_SKIPPED_FOR_DEPTH.sub("", source)):
        tag = tag.lower()
        if tag in _VOID_OR_SELF_CLOSING:
            continue
        if not closing:
            stack.append(tag)
            open_count[tag] = open_count.get(tag, 0) + 1
            if len(stack) > MAX_DEPTH:
                raise UnreadableDocument(f"HTML nested deeper than {MAX_DEPTH} elements")
        elif open_count.get(tag):
            while stack:
                top = stack.pop()
                open_count[top] -= 1
                if top == tag:
                    break


def _lines_and_headings(raw: str) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Lines of the marked text, and ``(offset, level, heading)`` for the lines that are headings."""
    collapsed = _EMPTY_LINES.sub(_LINE, _SPACE.sub(" ", raw)).strip(_LINE + " ")
    pieces = collapsed.split(_LINE) if collapsed else []
    if _CELL in collapsed:
        pieces = [" | ".join(c for c in (cell.strip() for cell in p.split(_CELL)) if c) for p in pieces]
    lines: list[str] = []
    headings: list[tuple[int, int, str]] = []
    offset = 0
    for piece in pieces:
        level = 0
        if _HEADING in piece:
            level = int(piece[1]) if piece[0] == _HEADING else 0
            piece = _HEADING_MARK.sub("", piece).strip()
        if piece:
            if level:
                headings.append((offset, level, piece))
            lines.append(piece)
            offset += len(piece) + 1
    return lines, headings
