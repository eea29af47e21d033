"""Documents chunked and embedded into what a backend stores: the compute half of every write.

Nothing here touches an index, so the same function runs in the build's process or in a Ray actor
(``indexer.ray_ingest``), and every backend receives the same passages and vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from indexer.chunking import ChunkingParams, pack_passages, sentence_units
from indexer.documents import Document, FileRead
from indexer.structure import locate
from search.backends.contract import DocumentUpsert, NewPassage
from search.encoding.embedder import Embedder, EncodeProgress
from search.text.analyzer import with_context


@dataclass(frozen=True)
class EmbeddedDocument:
    """A document ready for a backend, and what embedding it cost in tokens the encoder ran."""

    upsert: DocumentUpsert
    tokens: int


def document_upserts(
    documents: list[Document], embedder: Embedder, params: ChunkingParams, progress: EncodeProgress | None = None
) -> list[EmbeddedDocument]:
    """Each document's passages and vectors: per passage its own vector, then its sentences' vectors.

    One forward pass per passage gives both (``Embedder.encode_passages``): the passage's vector is the
    model's pooling of all its tokens, each sentence's the pooling of its own tokens in that pass. A passage
    repeated word for word (with the same sentences) is embedded once, and all go in one call.
    """
    chunked = [(document, _passages(document, embedder, params)) for document in documents]
    keyword_texts = [[with_context(p.section, d.text[p.start : p.end]) for p in passages] for d, passages in chunked]
    keys = [
        [(text, _sentence_spans(text, passage)) for text, passage in zip(texts, passages)]
        for texts, (_, passages) in zip(keyword_texts, chunked)
    ]
    distinct = {key: row for row, key in enumerate(dict.fromkeys(key for document_keys in keys for key in document_keys))}
    embedded = embedder.encode_passages([text for text, _ in distinct], [spans for _, spans in distinct], progress)
    span_rows = np.cumsum([0, *(len(spans) for _, spans in distinct)])
    charged: set[int] = set()
    results = []
    for (document, passages), passage_texts, document_keys in zip(chunked, keyword_texts, keys):
        rows = np.zeros((len(passages) + sum(len(p.sentences) for p in passages), embedder.dimension), dtype=np.float32)
        row = tokens = 0
        for key in document_keys:
            text_row = distinct[key]
            rows[row] = embedded.texts[text_row]
            rows[row + 1 : row + 1 + len(key[1])] = embedded.spans[span_rows[text_row] : span_rows[text_row + 1]]
            row += 1 + len(key[1])
            if text_row not in charged:
                charged.add(text_row)
                tokens += int(embedded.tokens[text_row])
        results.append(EmbeddedDocument(DocumentUpsert(document, tuple(passages), rows, tuple(passage_texts)), tokens))
    return results


def _sentence_spans(text: str, passage: NewPassage) -> tuple[tuple[int, int], ...]:
    """The passage's sentences as offsets into the text it is embedded as (its heading path, then its text)."""
    shift = len(text) - (passage.end - passage.start) - passage.start
    return tuple((start + shift, end + shift) for start, end in passage.sentences)


def _passages(document: Document, embedder: Embedder, params: ChunkingParams) -> list[NewPassage]:
    section_starts = tuple(section.start for section in document.sections)
    units = sentence_units(document.text, embedder.count_tokens, params.max_tokens, section_starts=section_starts)
    passages = []
    for ordinal, chunk in enumerate(pack_passages(document.text, units, embedder.count_tokens, params)):
        where = locate(document, chunk.start, chunk.end)
        sentences = tuple((u.start, u.end) for u in units if chunk.start <= u.start and u.end <= chunk.end)
        passages.append(NewPassage(ordinal, chunk.start, chunk.end, where.page, where.page_end, where.section, sentences))
    return passages


@dataclass(frozen=True)
class IngestedFile:
    """A file whose stat changed, once read and embedded: how its read went (its document left out, since
    the upsert carries it) and, for new content, the embedded document."""

    read: FileRead
    embedded: EmbeddedDocument | None


def ingested_files(
    reads: list[FileRead], embedder: Embedder, params: ChunkingParams, progress: EncodeProgress | None = None
) -> list[IngestedFile]:
    """The files read (``read_changed``), their new content chunked and embedded in one ``document_upserts``."""
    documents = [read.document for read in reads if read.document is not None]
    embedded = iter(document_upserts(documents, embedder, params, progress))
    return [IngestedFile(replace(read, document=None), next(embedded) if read.document is not None else None) for read in reads]
