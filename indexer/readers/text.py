"""Plain text files, and the decoding every text-based format shares."""

from __future__ import annotations

from indexer.readers.base import Extracted, UnreadableDocument

# How much of a file is looked at to tell text from binary content.
SNIFF_BYTES = 8192


def decode_text(data: bytes, encoding: str = "utf-8") -> tuple[str, tuple[str, ...]]:
    """Text of ``data`` (a BOM dropped); undecodable bytes become U+FFFD and a note, NUL bytes mean binary."""
    if b"\x00" in data[:SNIFF_BYTES]:
        raise UnreadableDocument("binary content")
    codec = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        return data.decode(codec), ()
    except UnicodeDecodeError:
        note = f"not valid {encoding.upper()}; undecodable bytes replaced with U+FFFD"
        return data.decode(codec, errors="replace"), (note,)


class TextReader:
    """``.txt``: the decoded bytes as they are, no structure."""

    def read(self, data: bytes, name: str) -> Extracted:
        text, notes = decode_text(data)
        return Extracted(text=text, notes=notes)
