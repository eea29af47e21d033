"""Applying one change (documents added, replaced or removed) to an open index, all or nothing.

Order of a change, chosen so that a crash at any point leaves the previous or the new state:
new vectors go to fresh files (invisible until named), one store transaction names them, inserts
and deletes the rows, tombstones the old vectors and journals the keyword work; then the keyword
indexes are brought in step and the journal entry cleared. A journal entry left by a crash is
replayed by the next writer or reader (``Index.replay_keyword_journal``). Nothing here reads, rewrites or
re-scores what did not change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from indexer.chunking import ChunkingParams, pack_passages, sentence_units
from indexer.documents import Document
from search.stages import EMBEDDING, KEYWORD_COMMITTED, SEGMENT_WRITTEN, STORE_COMMITTED, StageReporter, quiet, reach
from indexer.structure import locate
from search.embedding import Embedder
from search.index import Index
from search.index_format import SEGMENTS_DIR, VECTORS_DIR
from search.keyword import with_context
from search.store import Store
from search.vector_files import write_vector_file


@dataclass
class _NewPassage:
    document: int
    ordinal: int
    start: int
    end: int
    page: int | None
    page_end: int | None
    section: str | None
    sentences: list[tuple[int, int]]


@dataclass
class ChangeResult:
    embedded_passages: int = 0
    removed_passages: int = 0
    stat_updates: int = 0
    generation: int = 0
    warnings: list[str] = field(default_factory=list)


def apply_change(
    index: Index,
    embedder: Embedder,
    params: ChunkingParams,
    new_documents: list[Document],
    removed_doc_ids: list[str],
    touched: list[Document] | None = None,
    show_progress: bool = False,
    report: StageReporter = quiet,
) -> ChangeResult:
    """Index ``new_documents`` (replacing any with the same id), drop ``removed_doc_ids``, and record new
    file stats for ``touched`` documents whose content did not change."""
    result = ChangeResult()
    store = index.store
    meta = store.meta()
    replaced = [d.doc_id for d in new_documents]
    old_keys = store.document_keys([*removed_doc_ids, *replaced])
    old_passages = store.passage_ids_of_documents(old_keys.values())
    next_document, next_passage = int(meta["next_document"]), int(meta["next_passage"])
    document_keys = {d.doc_id: next_document + i for i, d in enumerate(new_documents)}
    passages = _chunk(new_documents, document_keys, embedder, params)
    ids = np.arange(next_passage, next_passage + len(passages), dtype=np.int64)
    reach(EMBEDDING, report)
    texts_by_key = {document_keys[d.doc_id]: d.text for d in new_documents}
    rows, passage_vectors = _embed(passages, texts_by_key, embedder, show_progress)
    segment = vector_file = None
    if len(passages):
        vector_file = write_vector_file(index.folder / VECTORS_DIR, rows)
        segment = index.vectors.prepare(index.folder / SEGMENTS_DIR, ids, passage_vectors)
    reach(SEGMENT_WRITTEN, report)
    segment_of = store.segments_of(old_passages)
    with store.transaction() as db:
        generation = int(meta["generation"]) + 1
        segment_id = vector_file_id = 0
        if segment is not None:
            segment_id = db.execute("INSERT INTO segments(file, kind, size) VALUES (?, ?, ?)", (segment.file, segment.kind, segment.size)).lastrowid
            vector_file_id = db.execute("INSERT INTO vector_files(file, rows) VALUES (?, ?)", (vector_file, len(rows))).lastrowid
        db.executemany("INSERT OR REPLACE INTO tombstones(passage, segment) VALUES (?, ?)", segment_of.items())
        for key in old_keys.values():
            db.execute("DELETE FROM passages WHERE document = ?", (key,))
            db.execute("DELETE FROM documents WHERE key = ?", (key,))
        db.executemany(
            "INSERT INTO documents(key, doc_id, title, date, sha256, size, mtime_ns, pages, length, text) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(document_keys[d.doc_id], d.doc_id, d.title, d.date, d.sha256, d.size, d.mtime_ns, json.dumps(list(d.pages)),
              len(d.text), d.text) for d in new_documents],
        )
        db.executemany(
            "INSERT INTO passages(id, document, ordinal, start, end, page, page_end, section, segment, vector_file, vector_row, sentences) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [(int(pid), p.document, p.ordinal, p.start, p.end, p.page, p.page_end, p.section, segment_id, vector_file_id,
              row, json.dumps(p.sentences)) for pid, p, row in zip(ids, passages, _first_rows(passages))],
        )
        db.executemany(
            "UPDATE documents SET size = ?, mtime_ns = ? WHERE doc_id = ?", [(d.size, d.mtime_ns, d.doc_id) for d in touched or []]
        )
        db.execute(
            "INSERT INTO keyword_journal VALUES (?, ?, ?, ?, ?)",
            (generation, json.dumps(ids.tolist()), json.dumps(old_passages), json.dumps(list(document_keys.values())),
             json.dumps(list(old_keys.values()))),
        )
        Store.set_meta(db, {"generation": generation, "next_document": next_document + len(new_documents),
                            "next_passage": next_passage + len(passages)})
    reach(STORE_COMMITTED, report)
    index.replay_keyword_journal()
    reach(KEYWORD_COMMITTED, report)
    _remove_unused_vector_files(index)
    index.refresh()
    result.embedded_passages, result.removed_passages = len(passages), len(old_passages)
    result.stat_updates, result.generation = len(touched or []), generation
    return result


def remove_unnamed_files(index: Index) -> None:
    """Files a crash left behind: segments and vector files the store does not name, and vector files no
    live passage points at any more. The caller holds the writer lock."""
    _remove_unused_vector_files(index)
    for folder, named in ((SEGMENTS_DIR, {s.file for s in index.store.segments()}), (VECTORS_DIR, set(index.store.vector_files().values()))):
        for path in (index.folder / folder).iterdir():
            if path.name not in named:
                path.unlink(missing_ok=True)


def _remove_unused_vector_files(index: Index) -> None:
    unused = index.store.query(
        "SELECT v.id, v.file FROM vector_files v WHERE NOT EXISTS (SELECT 1 FROM passages p WHERE p.vector_file = v.id)"
    )
    if not unused:
        return
    with index.store.transaction() as db:
        db.executemany("DELETE FROM vector_files WHERE id = ?", [(file_id,) for file_id, _ in unused])
    for _, name in unused:
        (index.folder / VECTORS_DIR / name).unlink(missing_ok=True)


def _chunk(documents: list[Document], keys: dict[str, int], embedder: Embedder, params: ChunkingParams) -> list[_NewPassage]:
    passages = []
    for document in documents:
        section_starts = tuple(section.start for section in document.sections)
        units = sentence_units(document.text, embedder.count_tokens, params.max_tokens, section_starts=section_starts)
        for ordinal, chunk in enumerate(pack_passages(document.text, units, embedder.count_tokens, params)):
            where = locate(document, chunk.start, chunk.end)
            sentences = [(u.start, u.end) for u in units if chunk.start <= u.start and u.end <= chunk.end]
            passages.append(_NewPassage(keys[document.doc_id], ordinal, chunk.start, chunk.end, where.page, where.page_end,
                                        where.section, sentences))
    return passages


def _embed(passages: list[_NewPassage], texts: dict[int, str], embedder: Embedder, show_progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """float16 rows (each passage, then its sentences) and the float32 passage vectors for the segment."""
    passage_texts = [with_context(p.section, texts[p.document][p.start:p.end]) for p in passages]
    sentence_texts = [texts[p.document][a:b] for p in passages for a, b in p.sentences]
    # One encode over distinct texts: the sentences two passages share (their overlap), and any text repeated
    # word for word, are embedded once; one length-sorted pass also pads less than two.
    distinct = {text: i for i, text in enumerate(dict.fromkeys(passage_texts + sentence_texts))}
    vectors = embedder.encode(list(distinct), progress=show_progress)
    passage_vectors = vectors[[distinct[text] for text in passage_texts]]
    sentence_vectors = vectors[[distinct[text] for text in sentence_texts]]
    rows = np.zeros((len(passages) + len(sentence_texts), embedder.dimension), dtype=np.float16)
    first_rows = _first_rows(passages)
    sentence_rows = [row + 1 + i for row, p in zip(first_rows, passages) for i in range(len(p.sentences))]
    rows[first_rows] = passage_vectors
    rows[sentence_rows] = sentence_vectors
    return rows, passage_vectors


def _first_rows(passages: list[_NewPassage]) -> list[int]:
    rows, row = [], 0
    for passage in passages:
        rows.append(row)
        row += 1 + len(passage.sentences)
    return rows
