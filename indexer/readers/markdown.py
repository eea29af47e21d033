"""Markdown: the source itself is the text (exact offsets); headings outside code become sections."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from indexer.readers.base import Extracted, heading_sections
from indexer.readers.text import decode_text

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class MarkdownReader:
    """CommonMark parsing finds headings (ATX and setext) and ignores ``#`` lines inside fences."""

    def __init__(self) -> None:
        self._parser = MarkdownIt("commonmark")

    def read(self, data: bytes, name: str) -> Extracted:
        text, notes = decode_text(data)
        line_starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]
        tokens = self._parser.parse(text)
        headings = [
            (line_starts[token.map[0]], int(token.tag[1]), tokens[i + 1].content.strip())
            for i, token in enumerate(tokens)
            if token.type == "heading_open" and token.map is not None
        ]
        sections = heading_sections(headings)
        title = next((s.path[-1] for s in sections if s.path[-1]), None)
        return Extracted(text=text, title=title, sections=sections, notes=notes)
