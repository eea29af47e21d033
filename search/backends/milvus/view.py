"""One search's view of a Milvus index: every request filtered to the committed state it was made from.

A row is visible when its generation is committed and not void, and its document version is not pending
deletion: ``generation <= G and generation not in [void] and doc_key not in [pending]``. The request's
filters go into the same expression, so Milvus applies them before its top-k cut.

Every request reads at Bounded consistency (``schema.READ_LEVEL``): the writer flips the state only once
its rows are visible at that level, and keeps replaced rows for a grace longer than a search takes.

A hybrid passage search makes five requests: the BM25 search, the term statistics (one read by key), the
dense search, the sentences of every candidate (one read by id) and the page's rows (one read by id). A
search returns, with each hit, what the later stages ask of it (span, sentence count, passage vector:
``schema.HIT_FIELDS``), and the view keeps it; the sentences of the BM25 candidates are fetched with those
of the dense candidates, so a page's highlights need no read of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

from search.backends.contract import (
    NO_FILTERS,
    NO_RANKING,
    Filters,
    PassageSpan,
    Ranking,
    ReadView,
    StoredPassage,
    TermStatistics,
    VectorBlocks,
    Vocabulary,
    iter_chunks,
)
from search.backends.milvus.control import Control
from search.backends.milvus.rows import sentence_count, sentence_ids, stored_passage
from search.backends.milvus.schema import HIT_FIELDS, PASSAGE_FIELDS, READ_LEVEL, CollectionSet, dense_search_params
from search.backends.milvus.terms import Vocabularies, frequency_at, term_key
from search.index_settings import IndexSettings

# Milvus returns at most 16,384 hits per search, and as many rows per query.
MAX_TOP_K = 16_384
# Whole-document BM25 looks at this many pieces per document wanted (most documents are one piece).
_PIECES_PER_DOCUMENT_ASKED = 4
# Ids per ``in [...]`` query, and sentences: both keep a query's rows under Milvus's 16,384.
_IDS_PER_QUERY = 4_000
_SENTENCES_PER_QUERY = 16_000


@dataclass(frozen=True)
class Committed:
    """What readers may see: rows of generations up to ``generation`` that are not ``void`` (staged by a writer
    that lost its lease), minus document versions ``pending`` deletion (replaced or removed, their rows
    kept for searches that started before)."""

    generation: int
    pending: tuple[int, ...] = ()
    passages: int = 0
    void: tuple[int, ...] = ()

    def expression(self, filters: Filters = NO_FILTERS) -> str:
        parts = [f"generation <= {self.generation}"]
        if self.void:
            parts.append(f"generation not in {list(self.void)}")
        if self.pending:
            parts.append(f"doc_key not in {list(self.pending)}")
        if filters.doc_ids:
            parts.append(f"doc_id in {json.dumps(list(filters.doc_ids))}")
        if filters.date_from or filters.date_to:
            parts.append('date != ""')
        if filters.date_from:
            parts.append(f"date >= {json.dumps(filters.date_from)}")
        if filters.date_to:
            parts.append(f"date <= {json.dumps(filters.date_to)}")
        if filters.types:
            parts.append(f"doc_type in {json.dumps(list(filters.types))}")
        if (folder := filters.folder_range) is not None:
            parts.append(f"doc_id >= {json.dumps(folder[0])} and doc_id < {json.dumps(folder[1])}")
        return " and ".join(parts)


class MilvusView(ReadView):
    """Also a ``DocumentKeywordSearch`` (BM25 over the catalog's document pieces), a ``TermVocabulary`` and a
    ``NativeHybridSearch``."""

    def __init__(
        self, client: Any, names: CollectionSet, committed: Committed, index_type: str, settings: IndexSettings, vocabularies: Vocabularies
    ) -> None:
        self.client = client
        self.names = names
        self.committed = committed
        self.index_type = index_type
        self.dimension = settings.dimension
        self.analyzer = settings.analyzer
        self._vocabularies = vocabularies
        self._hits: dict[int, dict] = {}
        self._sentences: dict[int, list[np.ndarray]] = {}
        self._keyword_candidates: list[int] = []
        self._term_rows: dict[str, Any] = {}
        self._dense_candidates: set[int] = set()

    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        if k < 1:
            return NO_RANKING
        limit = min(k, MAX_TOP_K)
        hits = self.client.search(
            self.names.passages,
            data=[np.asarray(vector, dtype=np.float32)],
            anns_field="vector",
            limit=limit,
            filter=self.committed.expression(filters),
            search_params=dense_search_params(self.index_type, limit),
            output_fields=HIT_FIELDS,
            consistency_level=READ_LEVEL,
        )[0]
        ranking = self._kept(hits)
        self._dense_candidates.update(ranking[0].tolist())
        return ranking

    def keyword(self, query: str, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        if k < 1 or not query.strip():
            return NO_RANKING
        ranking = self._kept(self._bm25(self.names.passages, query, k, filters, HIT_FIELDS))
        self._keyword_candidates.extend(ranking[0].tolist())
        return ranking

    def keyword_documents(self, query: str, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        """BM25 over the catalog's document pieces, a document scoring the sum of its pieces' scores."""
        if k < 1 or not query.strip():
            return NO_RANKING
        pieces = self._bm25(self.names.documents, query, k * _PIECES_PER_DOCUMENT_ASKED, filters, ["doc_key"])
        scores: dict[int, float] = {}
        for hit in pieces:
            key = hit["entity"]["doc_key"]
            scores[key] = scores.get(key, 0.0) + hit["distance"]
        best = sorted(scores.items(), key=lambda item: -item[1])[:k]
        by_document: dict[int, list[int]] = {}
        for row in self._query(self.names.passages, "doc_key", [key for key, _ in best], HIT_FIELDS):
            self._hits[row["id"]] = row
            by_document.setdefault(row["doc_key"], []).append(row["id"])
        ids = [pid for key, _ in best for pid in sorted(by_document.get(key, []))]
        repeated = [score for key, score in best for _ in by_document.get(key, [])]
        self._keyword_candidates.extend(ids)
        return np.asarray(ids, dtype=np.int64), np.asarray(repeated, dtype=np.float64)

    def term_statistics(self, query: str) -> TermStatistics:
        """Kept at ingest (``terms``): one read of the query's terms' rows by key, each counted as of this view's
        generation; rows already read by this view are not read again."""
        terms = list(dict.fromkeys(self.analyzer.terms(query)))
        keys = {term: term_key(self.names.name, term) for term in terms}
        unread = [key for key in keys.values() if key not in self._term_rows]
        if unread:  # a search asks twice (typo check, then specificity): the second read is from here
            found = Control(self.client).rows(unread)
            self._term_rows.update({key: found.get(key) for key in unread})
        frequencies = {term: frequency_at(self._term_rows[key], self.committed.generation) for term, key in keys.items()}
        return TermStatistics(frequencies, self.committed.passages)

    def vocabulary(self) -> Vocabulary:
        """The terms kept at ingest with their passage counts (``terms.Vocabularies``): what typos are corrected to."""
        return self._vocabularies.at(self.committed.generation)

    def spans(self, ids: Iterable[int]) -> dict[int, PassageSpan]:
        rows = self._rows([int(i) for i in ids])
        return {pid: PassageSpan(row["doc_key"], row["start"], row["end"]) for pid, row in rows.items()}

    def vectors(self, ids: Iterable[int], sentences: bool = True) -> VectorBlocks:
        wanted = [int(i) for i in ids]
        rows = self._rows(wanted)
        order = [pid for pid in wanted if pid in rows]
        if not order:
            return VectorBlocks.empty(self.dimension)
        if sentences:
            self._fetch_sentences(order)
        blocks = [np.asarray(rows[pid]["vector"], dtype=np.float32)[None, :] for pid in order]
        if sentences:
            blocks = [np.vstack([block, *self._sentences[pid]]) if self._sentences[pid] else block for block, pid in zip(blocks, order)]
        return VectorBlocks.stacked(order, blocks, self.dimension)

    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        return self._stored(self._query(self.names.passages, "id", ids, PASSAGE_FIELDS))

    def document_passages(self, doc_id: str) -> list[StoredPassage]:
        rows = self.client.query(
            self.names.passages,
            filter=f"{self.committed.expression()} and doc_id == {json.dumps(doc_id)}",
            output_fields=PASSAGE_FIELDS,
            consistency_level=READ_LEVEL,
        )
        return sorted(self._stored(rows).values(), key=lambda passage: passage.record.start)

    def hybrid(
        self,
        vector: np.ndarray,
        query: str,
        k: int,
        ranker: str = "rrf",
        weights: tuple[float, float] = (0.5, 0.5),
        filters: Filters = NO_FILTERS,
        depth: int = 100,
    ) -> Ranking:
        """Passages ranked by Milvus's own fusion of dense and BM25 (``hybrid_search``), for comparison with
        ours: ``ranker`` "rrf" (``RRFRanker(60)``) or "weighted" (``WeightedRanker(dense, bm25)``, which
        Milvus normalises with arctan for IP and BM25 scores); each side contributes its ``depth`` best."""
        expression = self.committed.expression(filters)
        requests = [
            AnnSearchRequest(
                [np.asarray(vector, dtype=np.float32)], "vector", dense_search_params(self.index_type, depth), depth, expression
            ),
            AnnSearchRequest([query], "sparse", {"metric_type": "BM25"}, depth, expression),
        ]
        if ranker not in ("rrf", "weighted"):
            raise ValueError(f"unknown ranker {ranker!r}; choose one of rrf, weighted")
        fusion = RRFRanker(60) if ranker == "rrf" else WeightedRanker(*weights)
        hits = self.client.hybrid_search(self.names.passages, requests, fusion, limit=min(k, MAX_TOP_K), consistency_level=READ_LEVEL)
        return _ranking(hits[0])

    # --- internals --------------------------------------------------------------------------

    def _kept(self, hits: list[dict]) -> Ranking:
        """A search's ranking, its hits' fields kept for the stages that follow."""
        for hit in hits:
            self._hits[hit["id"]] = hit["entity"] | {"id": hit["id"]}
        return _ranking(hits)

    def _rows(self, ids: list[int]) -> dict[int, dict]:
        """The search fields of these passages: kept from the searches, the others read by id."""
        missing = [pid for pid in ids if pid not in self._hits]
        for row in self._query(self.names.passages, "id", missing, HIT_FIELDS):
            self._hits[row["id"]] = row
        return {pid: self._hits[pid] for pid in ids if pid in self._hits}

    def _fetch_sentences(self, order: list[int]) -> None:
        """Read the sentences of ``order``, and with those of dense candidates (the rescore stage) those of every
        BM25 candidate too, which the page's highlights will want: one read instead of two."""
        wanted = [pid for pid in order if pid not in self._sentences]
        if not wanted:
            return
        if self._dense_candidates.intersection(wanted):
            wanted += [pid for pid in self._keyword_candidates if pid not in self._sentences and pid in self._hits]
        wanted = list(dict.fromkeys(wanted))
        ids = [sid for pid in wanted for sid in sentence_ids(pid, sentence_count(self._hits[pid]))]
        found = {
            row["id"]: row["vector"]
            for chunk in iter_chunks(ids, _SENTENCES_PER_QUERY)
            for row in self.client.query(
                self.names.sentences, filter=f"id in {chunk}", output_fields=["vector"], consistency_level=READ_LEVEL
            )
        }
        for pid in wanted:
            vectors = [found.get(sid) for sid in sentence_ids(pid, sentence_count(self._hits[pid]))]
            self._sentences[pid] = [np.frombuffer(v[0], dtype=np.float16).astype(np.float32) for v in vectors if v is not None]

    def _stored(self, rows: list[dict]) -> dict[int, StoredPassage]:
        """Rows as pages show them, with the page starts of documents whose passages cross pages (one read)."""
        crossing = sorted({row["doc_key"] for row in rows if row["page_end"] > row["page"] >= 0})
        page_starts: dict[int, list[int]] = {}
        for piece in sorted(
            self._query(self.names.documents, "doc_key", crossing, ["doc_key", "piece", "pages"]), key=lambda r: r["piece"]
        ):
            page_starts.setdefault(piece["doc_key"], []).extend(json.loads(piece["pages"]))
        return {
            row["id"]: stored_passage(row, tuple(page_starts.get(row["doc_key"], ())) if row["page_end"] > row["page"] >= 0 else ())
            for row in rows
        }

    def _bm25(self, collection: str, query: str, k: int, filters: Filters, fields: list[str] | None = None) -> list[dict]:
        return self.client.search(
            collection,
            data=[query],
            anns_field="sparse",
            limit=min(k, MAX_TOP_K),
            filter=self.committed.expression(filters),
            search_params={"metric_type": "BM25"},
            output_fields=fields,
            consistency_level=READ_LEVEL,
        )[0]

    def _query(self, collection: str, field: str, values: Iterable[int], fields: list[str]) -> list[dict]:
        keys = sorted({int(v) for v in values})
        visible = self.committed.expression()
        return [
            row
            for chunk in iter_chunks(keys, _IDS_PER_QUERY)
            for row in self.client.query(
                collection, filter=f"{visible} and {field} in {chunk}", output_fields=["id", *fields], consistency_level=READ_LEVEL
            )
        ]


def _ranking(hits: list[dict]) -> Ranking:
    if not hits:
        return NO_RANKING
    return (np.array([hit["id"] for hit in hits], dtype=np.int64), np.array([hit["distance"] for hit in hits], dtype=np.float64))
