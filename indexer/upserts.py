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
from search.encoding.embedder import Embedder
from search.text.analyzer import with_context


def document_upserts(
    documents: list[Document], embedder: Embedder, params: ChunkingParams, show_progress: bool = False
) -> list[DocumentUpsert]:
    """Each document's passages and vectors: per passage its own vector, then its sentences' vectors.

    One encode over the distinct texts of all documents: the sentences two passages share (their overlap),
    and any text repeated word for word, are embedded once; one length-sorted pass also pads less than two.
    """
    chunked = [(document, _passages(document, embedder, params)) for document in documents]
    keyword_texts = [[with_context(p.section, d.text[p.start : p.end]) for p in passages] for d, passages in chunked]
    sentence_texts = [[d.text[a:b] for p in passages for a, b in p.sentences] for d, passages in chunked]
    distinct = {text: i for i, text in enumerate(dict.fromkeys(text for texts in (*keyword_texts, *sentence_texts) for text in texts))}
    vectors = embedder.encode(list(distinct), progress=show_progress)
    upserts = []
    for (document, passages), passage_texts, sentences in zip(chunked, keyword_texts, sentence_texts):
        rows = np.zeros((len(passage_texts) + len(sentences), embedder.dimension), dtype=np.float32)
        texts = iter(sentences)
        row = 0
        for passage, passage_text in zip(passages, passage_texts):
            rows[row] = vectors[distinct[passage_text]]
            for offset in range(1, 1 + len(passage.sentences)):
                rows[row + offset] = vectors[distinct[next(texts)]]
            row += 1 + len(passage.sentences)
        upserts.append(DocumentUpsert(document, tuple(passages), rows, tuple(passage_texts)))
    return upserts


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
    the upsert carries it) and, for new content, the document's upsert."""

    read: FileRead
    upsert: DocumentUpsert | None


def ingested_files(reads: list[FileRead], embedder: Embedder, params: ChunkingParams, show_progress: bool = False) -> list[IngestedFile]:
    """The files read (``read_changed``), their new content chunked and embedded in one ``document_upserts``."""
    documents = [read.document for read in reads if read.document is not None]
    upserts = iter(document_upserts(documents, embedder, params, show_progress))
    return [IngestedFile(replace(read, document=None), next(upserts) if read.document is not None else None) for read in reads]
