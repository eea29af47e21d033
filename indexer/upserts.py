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

    One embedding over the distinct texts of all documents: the sentences two passages share (their overlap),
    and any text repeated word for word, are embedded once, charged to the first document that holds them;
    one length-sorted pass also pads less than two.
    """
    chunked = [(document, _passages(document, embedder, params)) for document in documents]
    keyword_texts = [[with_context(p.section, d.text[p.start : p.end]) for p in passages] for d, passages in chunked]
    sentence_texts = [[d.text[a:b] for p in passages for a, b in p.sentences] for d, passages in chunked]
    distinct = {text: i for i, text in enumerate(dict.fromkeys(text for texts in (*keyword_texts, *sentence_texts) for text in texts))}
    embedded = embedder.embed(list(distinct), progress)
    charged = np.zeros(len(distinct), dtype=bool)
    results = []
    for (document, passages), passage_texts, sentences in zip(chunked, keyword_texts, sentence_texts):
        rows = np.zeros((len(passage_texts) + len(sentences), embedder.dimension), dtype=np.float32)
        texts = iter(sentences)
        row = 0
        for passage, passage_text in zip(passages, passage_texts):
            rows[row] = embedded.vectors[distinct[passage_text]]
            for offset in range(1, 1 + len(passage.sentences)):
                rows[row + offset] = embedded.vectors[distinct[next(texts)]]
            row += 1 + len(passage.sentences)
        own = np.unique(np.asarray([distinct[text] for text in (*passage_texts, *sentences)], dtype=np.int64))
        own = own[~charged[own]]
        charged[own] = True
        upsert = DocumentUpsert(document, tuple(passages), rows, tuple(passage_texts))
        results.append(EmbeddedDocument(upsert, int(embedded.tokens[own].sum())))
    return results


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
