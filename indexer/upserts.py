"""Documents chunked and embedded into what a backend stores: the compute half of every write.

Nothing here touches an index, so the same functions run in the build's process or on a Ray cluster
(``indexer.ray_ingest``: chunking in CPU tasks, with the model's tokenizer alone, and embedding in
actors), and every backend receives the same passages and vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from indexer.chunking import ChunkingParams, pack_passages, sentence_units
from indexer.documents import Document, FileRead
from indexer.structure import locate
from search.backends.contract import DocumentUpsert, NewPassage, StagedRows
from search.encoding.embedder import Embedder, EncodeProgress
from search.text.analyzer import with_context


@dataclass(frozen=True)
class EmbeddedDocument:
    """A document ready for a backend, and what embedding it cost in tokens the encoder ran."""

    upsert: DocumentUpsert
    tokens: int


@dataclass(frozen=True)
class ChunkedDocument:
    """A document and its passages, before embedding."""

    document: Document
    passages: tuple[NewPassage, ...]


class TokenCounter(Protocol):
    """What chunking needs of a model: its token counts (``Embedder`` has them; so does a tokenizer alone)."""

    def count_tokens(self, texts: list[str]) -> list[int]: ...


def document_upserts(
    documents: list[Document], embedder: Embedder, params: ChunkingParams, progress: EncodeProgress | None = None
) -> list[EmbeddedDocument]:
    """Each document's passages and vectors: per passage its own vector, then its sentences' vectors."""
    return embed_chunked(chunk_documents(documents, embedder, params), embedder, progress)


def chunk_documents(documents: list[Document], counter: TokenCounter, params: ChunkingParams) -> list[ChunkedDocument]:
    """Each document cut into passages; needs only the model's tokenizer (a Ray chunking task has no model)."""
    return [ChunkedDocument(document, tuple(_passages(document, counter, params))) for document in documents]


def embed_chunked(chunked: list[ChunkedDocument], embedder: Embedder, progress: EncodeProgress | None = None) -> list[EmbeddedDocument]:
    """The chunked documents ready for a backend.

    One embedding over the distinct texts of all documents: the sentences two passages share (their overlap),
    and any text repeated word for word, are embedded once, charged to the first document that holds them;
    one length-sorted pass also pads less than two.
    """
    keyword_texts = [[with_context(p.section, c.document.text[p.start : p.end]) for p in c.passages] for c in chunked]
    sentence_texts = [[c.document.text[a:b] for p in c.passages for a, b in p.sentences] for c in chunked]
    distinct = {text: i for i, text in enumerate(dict.fromkeys(text for texts in (*keyword_texts, *sentence_texts) for text in texts))}
    embedded = embedder.embed(list(distinct), progress)
    charged = np.zeros(len(distinct), dtype=bool)
    results = []
    for one, passage_texts, sentences in zip(chunked, keyword_texts, sentence_texts):
        rows = np.zeros((len(passage_texts) + len(sentences), embedder.dimension), dtype=np.float32)
        texts = iter(sentences)
        row = 0
        for passage, passage_text in zip(one.passages, passage_texts):
            rows[row] = embedded.vectors[distinct[passage_text]]
            for offset in range(1, 1 + len(passage.sentences)):
                rows[row + offset] = embedded.vectors[distinct[next(texts)]]
            row += 1 + len(passage.sentences)
        own = np.unique(np.asarray([distinct[text] for text in (*passage_texts, *sentences)], dtype=np.int64))
        own = own[~charged[own]]
        charged[own] = True
        upsert = DocumentUpsert(one.document, one.passages, rows, tuple(passage_texts))
        results.append(EmbeddedDocument(upsert, int(embedded.tokens[own].sum())))
    return results


def _passages(document: Document, counter: TokenCounter, params: ChunkingParams) -> list[NewPassage]:
    section_starts = tuple(section.start for section in document.sections)
    units = sentence_units(document.text, counter.count_tokens, params.max_tokens, section_starts=section_starts)
    passages = []
    for ordinal, chunk in enumerate(pack_passages(document.text, units, counter.count_tokens, params)):
        where = locate(document, chunk.start, chunk.end)
        sentences = tuple((u.start, u.end) for u in units if chunk.start <= u.start and u.end <= chunk.end)
        passages.append(NewPassage(ordinal, chunk.start, chunk.end, where.page, where.page_end, where.section, sentences))
    return passages


@dataclass(frozen=True)
class StagedCost:
    """What a worker that wrote a document's rows itself (``StagedWrites``) spent on it: passages and tokens."""

    passages: int
    tokens: int


@dataclass(frozen=True)
class IngestedFile:
    """A file whose stat changed, once read and embedded: how its read went (its document left out, since
    the upsert carries it) and, for new content, the embedded document, or ``staged`` when a worker wrote
    its rows to the backend itself."""

    read: FileRead
    embedded: EmbeddedDocument | None
    staged: StagedCost | None = None

    @property
    def new_content(self) -> bool:
        return self.embedded is not None or self.staged is not None

    @property
    def passages(self) -> int:
        """Passages of new content."""
        if self.embedded is not None:
            return len(self.embedded.upsert.passages)
        return self.staged.passages if self.staged is not None else 0

    @property
    def tokens(self) -> int:
        """Tokens its new content ran through the encoder."""
        if self.embedded is not None:
            return self.embedded.tokens
        return self.staged.tokens if self.staged is not None else 0


@dataclass
class IngestedBatch:
    """Files read and embedded, and where workers wrote the rows themselves, what they wrote (``staged``, one part
    per worker) in place of the documents' upserts."""

    files: list[IngestedFile] = field(default_factory=list)
    staged: dict[str, StagedRows] = field(default_factory=dict)

    def add_staged(self, part: StagedRows) -> None:
        held = self.staged.get(part.worker)
        if held is None:
            self.staged[part.worker] = part
            return
        rows = {name: held.rows.get(name, 0) + count for name, count in part.rows.items()}
        terms = dict(held.terms)
        for term, count in part.terms.items():
            terms[term] = terms.get(term, 0) + count
        self.staged[part.worker] = StagedRows(part.worker, held.doc_ids + part.doc_ids, held.passages + part.passages, rows, terms)


def ingested_files(
    reads: list[FileRead], embedder: Embedder, params: ChunkingParams, progress: EncodeProgress | None = None
) -> list[IngestedFile]:
    """The files read (``read_changed``), their new content chunked and embedded in one ``document_upserts``."""
    documents = [read.document for read in reads if read.document is not None]
    embedded = iter(document_upserts(documents, embedder, params, progress))
    return [IngestedFile(replace(read, document=None), next(embedded) if read.document is not None else None) for read in reads]
