"""Rows of the three collections, built from a ``DocumentUpsert`` and read back into records.

Ids are made, not allocated one by one: a document version's ``doc_key`` comes from the state's counter
(``next_document``), and everything else from it. A passage's id is ``doc_key x 2^16 + ordinal``, a
sentence's ``passage id x 2^10 + position``, a catalog piece's ``doc_key x 2^16 + piece``: a reader that holds
a passage id knows its sentences' ids, and a writer on another machine (a Ray worker) can write a
document's rows knowing only its ``doc_key``. ``doc_key`` stays below 2^37, so every id fits in 63 bits.

Whole-document BM25: a Milvus VARCHAR holds at most 65,535 bytes, so a document's text is stored as
pieces of at most that size, cut at whitespace, and each piece is a row of the documents collection with
its own BM25 entry. A document's score is the sum of its pieces' BM25 scores. For a document under 64 KB
(one piece: about 10,000 words, nearly every document) that *is* BM25 over the whole document; a longer
one is scored as the sum over its pieces, so a term's frequency saturates per piece rather than per
document and length is normalised per piece. The alternative, one sparse vector per document computed by
us, would need our own document-frequency statistics kept in step with every write, which is what the
BM25 function inside Milvus exists to do.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from search.backends.contract import DocumentSummary, DocumentUpsert, StoredPassage, document_type
from search.backends.milvus.schema import VARCHAR_BYTES
from search.records import DocumentRecord, PassageRecord

PIECES_PER_DOCUMENT = 1 << 16
PASSAGES_PER_DOCUMENT = 1 << 16
SENTENCES_PER_PASSAGE = 1 << 10
MAX_DOC_KEY = 1 << 37
_WHITESPACE_LOOKBACK = 2_048
NONE = -1


def piece_key(doc_key: int, piece: int) -> int:
    return doc_key * PIECES_PER_DOCUMENT + piece


def passage_id(doc_key: int, ordinal: int) -> int:
    return doc_key * PASSAGES_PER_DOCUMENT + ordinal


def sentence_ids(pid: int, count: int) -> range:
    """The ids of a passage's ``count`` sentences, in order."""
    return range(pid * SENTENCES_PER_PASSAGE, pid * SENTENCES_PER_PASSAGE + count)


def sentence_count(row: dict[str, Any]) -> int:
    """How many sentences a passage row holds (its ``sentences`` spans)."""
    return len(json.loads(row["sentences"]))


def text_pieces(text: str, limit: int = VARCHAR_BYTES) -> list[tuple[int, str]]:
    """(start offset, piece) pairs covering ``text``, each at most ``limit`` UTF-8 bytes, cut after a
    whitespace character where one lies near the limit (so no word is split) and never inside a character."""
    pieces: list[tuple[int, str]] = []
    start = 0
    while start < len(text) or not pieces:
        end = start + limit  # a character is at least one byte: no piece holds more than ``limit`` characters
        while len(text[start:end].encode("utf-8")) > limit:
            end -= (len(text[start:end].encode("utf-8")) - limit + 3) // 4
        if end < len(text):
            window = max(start, end - _WHITESPACE_LOOKBACK)
            cut = max(text.rfind(" ", window, end), text.rfind("\n", window, end))
            end = cut + 1 if cut > start else end
        pieces.append((start, text[start:end]))
        start = end
    return pieces


def checked(text: str, what: str) -> str:
    if len(text.encode("utf-8")) > VARCHAR_BYTES:
        raise ValueError(f"{what} is over Milvus's {VARCHAR_BYTES}-byte VARCHAR limit")
    return text


def passage_rows(upsert: DocumentUpsert, doc_key: int, generation: int) -> tuple[list[dict], list[dict]]:
    """The passage rows and sentence rows of one document version."""
    record = upsert.record
    if not 0 < doc_key < MAX_DOC_KEY:
        raise ValueError(f"document key {doc_key} is outside 1..2^37; rebuild the index with --full")
    if len(upsert.passages) > PASSAGES_PER_DOCUMENT:
        raise ValueError(f"document {record.doc_id} has over {PASSAGES_PER_DOCUMENT} passages, more than the milvus backend holds")
    passages: list[dict[str, Any]] = []
    sentences: list[dict[str, Any]] = []
    for offset, (passage, row, keyword_text) in enumerate(zip(upsert.passages, upsert.first_rows(), upsert.keyword_texts)):
        text = record.text[passage.start : passage.end]
        if not keyword_text.endswith(text):
            raise ValueError(f"keyword text of {record.doc_id}#{passage.ordinal} does not end with the passage text")
        if len(passage.sentences) > SENTENCES_PER_PASSAGE:
            raise ValueError(f"passage {record.doc_id}#{passage.ordinal} has over {SENTENCES_PER_PASSAGE} sentences")
        pid = passage_id(doc_key, offset)
        passages.append(
            {
                "id": pid,
                "doc_key": doc_key,
                "generation": generation,
                "doc_id": record.doc_id,
                "doc_type": document_type(record.doc_id) or "",
                "ordinal": passage.ordinal,
                "start": passage.start,
                "end": passage.end,
                "page": _number(passage.page),
                "page_end": _number(passage.page_end),
                "section": checked(passage.section or "", "a section heading"),
                "title": checked(record.title, "a title"),
                "date": record.date or "",
                "context": len(keyword_text) - len(text),
                "text": checked(keyword_text, f"passage {record.doc_id}#{passage.ordinal}"),
                "sentences": json.dumps(passage.sentences),
                "vector": upsert.vectors[row].astype(np.float32),
            }
        )
        sentences.extend(
            {"id": sid, "doc_key": doc_key, "generation": generation, "vector": upsert.vectors[row + 1 + position].astype(np.float16)}
            for position, sid in enumerate(sentence_ids(pid, len(passage.sentences)))
        )
    return passages, sentences


def document_rows(upsert: DocumentUpsert, doc_key: int, generation: int) -> list[dict]:
    """The catalog rows of one document version: its text in pieces, each with the page starts inside it."""
    record = upsert.record
    meta = json.dumps(
        {
            "title": record.title,
            "sha256": record.sha256,
            "source": record.source,
            "length": record.length,
            "passages": len(upsert.passages),
        }
    )
    pieces = text_pieces(record.text)
    if len(pieces) >= PIECES_PER_DOCUMENT:
        raise ValueError(f"document {record.doc_id} is too long for the milvus backend ({len(record.text)} characters)")
    rows = []
    for number, (start, text) in enumerate(pieces):
        end = start + len(text)
        pages = [p for p in record.pages if start <= p < end or (number == len(pieces) - 1 and p >= end)]
        rows.append(
            {
                "id": piece_key(doc_key, number),
                "doc_key": doc_key,
                "generation": generation,
                "doc_id": record.doc_id,
                "doc_type": document_type(record.doc_id) or "",
                "piece": number,
                "date": record.date or "",
                "text": text,
                "pages": json.dumps(pages),
                "meta": checked(meta, "a document's metadata") if number == 0 else "{}",
            }
        )
    return rows


def sourced_row(row: dict[str, Any], source: str) -> dict[str, Any]:
    """A catalog piece-0 row with a new ``source`` (the content, and so the hash, unchanged)."""
    meta = json.loads(row["meta"]) | {"source": source}
    return {key: value for key, value in row.items() if key != "sparse"} | {"meta": json.dumps(meta)}


def document_summary(row: dict[str, Any]) -> DocumentSummary:
    """A document as the catalog's piece-0 row describes it."""
    meta = json.loads(row["meta"])
    return DocumentSummary(
        row["doc_id"], meta["title"], row["date"] or None, meta["length"], meta["passages"], meta["sha256"], meta["source"]
    )


def document_record(pieces: list[dict[str, Any]]) -> DocumentRecord:
    """A document put back together from its catalog rows (any order)."""
    pieces = sorted(pieces, key=lambda row: row["piece"])
    meta = json.loads(pieces[0]["meta"])
    pages = tuple(p for row in pieces for p in json.loads(row["pages"]))
    text = "".join(row["text"] for row in pieces)
    return DocumentRecord(pieces[0]["doc_id"], meta["title"], pieces[0]["date"] or None, text, meta["sha256"], pages, meta["source"])


def stored_passage(row: dict[str, Any], page_starts: tuple[int, ...]) -> StoredPassage:
    record = PassageRecord(
        f"{row['doc_id']}#{row['ordinal']}",
        row["doc_id"],
        row["start"],
        row["end"],
        _optional(row["page"]),
        _optional(row["page_end"]),
        row["section"] or None,
        row["id"],
    )
    return StoredPassage(
        record,
        row["doc_key"],
        row["text"][row["context"] :],
        row["title"],
        row["date"] or None,
        tuple(tuple(span) for span in json.loads(row["sentences"])),
        page_starts,
    )


def _number(value: int | None) -> int:
    return NONE if value is None else value


def _optional(value: int) -> int | None:
    return None if value == NONE else value
