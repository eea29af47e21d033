"""One search's view of a Milvus index: every query filtered to the committed state read for it.

A row is visible when its generation is committed and its document version is not pending deletion:
``generation <= G and doc_key not in [pending]``. The request's filters go into the same expression, so
Milvus applies them before its top-k cut.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pymilvus import AnnSearchRequest, MilvusClient, RRFRanker, WeightedRanker

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
    iter_chunks,
)
from search.backends.milvus.rows import stored_passage
from search.backends.milvus.schema import PASSAGE_FIELDS, CollectionSet, dense_search_params
from search.index_settings import IndexSettings
from search.text.analyzer import Analyzer
from search.text.query_terms import MAX_QUERY_TERMS

# Milvus returns at most 16,384 hits per search.
MAX_TOP_K = 16_384
# Whole-document BM25 looks at this many pieces per document wanted (most documents are one piece).
_PIECES_PER_DOCUMENT_ASKED = 4
# Ids per ``in [...]`` query: keeps each query's rows (sentences: ~10 a passage) under the 16,384 cap.
_IDS_PER_QUERY = 1_000
_SENTENCE_PASSAGES_PER_QUERY = 500


@dataclass(frozen=True)
class Committed:
    """What readers may see: rows of generations up to ``generation``, minus document versions ``pending``
    deletion (replaced or removed by the last commit, their rows not yet deleted)."""

    generation: int
    pending: tuple[int, ...] = ()
    passages: int = 0

    def expression(self, filters: Filters = NO_FILTERS) -> str:
        parts = [f"generation <= {self.generation}"]
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
            # Types are letters and digits only (``document_type``): no wildcard to escape after the "%".
            parts.append("(" + " or ".join(f"doc_id like {json.dumps('%.' + kind)}" for kind in filters.types) + ")")
        if (folder := filters.folder_range) is not None:
            parts.append(f"doc_id >= {json.dumps(folder[0])} and doc_id < {json.dumps(folder[1])}")
        return " and ".join(parts)


class MilvusView(ReadView):
    """Also a ``DocumentKeywordSearch`` (BM25 over the catalog's document pieces) and a ``NativeHybridSearch``."""

    def __init__(self, client: MilvusClient, names: CollectionSet, committed: Committed, index_type: str, settings: IndexSettings) -> None:
        self.client = client
        self.names = names
        self.committed = committed
        self.index_type = index_type
        self.dimension = settings.dimension
        self.analyzer = settings.analyzer

    def dense(self, vector: np.ndarray, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        if k < 1:
            return NO_RANKING
        hits = self.client.search(
            self.names.passages,
            data=[np.asarray(vector, dtype=np.float32)],
            anns_field="vector",
            limit=min(k, MAX_TOP_K),
            filter=self.committed.expression(filters),
            search_params=dense_search_params(self.index_type),
        )[0]
        return _ranking(hits)

    def keyword(self, query: str, k: int, filters: Filters = NO_FILTERS) -> Ranking:
        if k < 1 or not query.strip():
            return NO_RANKING
        return _ranking(self._bm25(self.names.passages, query, k, filters))

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
        for row in self._query(self.names.passages, "doc_key", [key for key, _ in best], ["doc_key"]):
            by_document.setdefault(row["doc_key"], []).append(row["id"])
        ids = [pid for key, _ in best for pid in sorted(by_document.get(key, []))]
        repeated = [score for key, score in best for _ in by_document.get(key, [])]
        return np.asarray(ids, dtype=np.int64), np.asarray(repeated, dtype=np.float64)

    def term_statistics(self, query: str) -> TermStatistics:
        """Milvus keeps its term statistics to itself, so a term's document frequency is counted as the committed
        passages its own BM25 search for the term returns: one search per distinct term (at most
        ``MAX_QUERY_TERMS``, in query order), exact up to ``MAX_TOP_K`` hits."""
        words = _word_per_term(query, self.analyzer)
        limit = min(self.committed.passages, MAX_TOP_K)
        frequencies = {term: len(self._bm25(self.names.passages, words[term], limit, NO_FILTERS)) for term in list(words)[:MAX_QUERY_TERMS]}
        return TermStatistics(frequencies, self.committed.passages)

    def spans(self, ids: Iterable[int]) -> dict[int, PassageSpan]:
        rows = self._query(self.names.passages, "id", ids, ["doc_key", "start", "end"])
        return {row["id"]: PassageSpan(row["doc_key"], row["start"], row["end"]) for row in rows}

    def vectors(self, ids: Iterable[int], sentences: bool = True) -> VectorBlocks:
        wanted = [int(i) for i in ids]
        found = {row["id"]: row["vector"] for row in self._query(self.names.passages, "id", wanted, ["vector"])}
        order = [pid for pid in wanted if pid in found]
        if not order:
            return VectorBlocks.empty(self.dimension)
        blocks: dict[int, list[np.ndarray]] = {pid: [np.asarray(found[pid], dtype=np.float32)] for pid in order}
        if sentences:
            rows = [
                row
                for chunk in iter_chunks(order, _SENTENCE_PASSAGES_PER_QUERY)
                for row in self.client.query(
                    self.names.sentences, filter=f"passage in {chunk}", output_fields=["passage", "position", "vector"]
                )
            ]
            for row in sorted(rows, key=lambda r: (r["passage"], r["position"])):
                blocks[row["passage"]].append(np.frombuffer(row["vector"][0], dtype=np.float16).astype(np.float32))
        counts = np.array([len(blocks[pid]) for pid in order], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        matrix = np.vstack([row for pid in order for row in blocks[pid]]).astype(np.float32)
        return VectorBlocks(np.asarray(order, dtype=np.int64), matrix, offsets, counts)

    def passages(self, ids: Iterable[int]) -> dict[int, StoredPassage]:
        rows = self._query(self.names.passages, "id", ids, PASSAGE_FIELDS)
        paged = sorted({row["doc_key"] for row in rows if row["page"] >= 0})
        page_starts: dict[int, list[int]] = {}
        for piece in sorted(self._query(self.names.documents, "doc_key", paged, ["doc_key", "piece", "pages"]), key=lambda r: r["piece"]):
            page_starts.setdefault(piece["doc_key"], []).extend(json.loads(piece["pages"]))
        return {row["id"]: stored_passage(row, tuple(page_starts.get(row["doc_key"], ()))) for row in rows}

    def document_passages(self, doc_id: str) -> list[StoredPassage]:
        rows = self.client.query(
            self.names.passages, filter=f"{self.committed.expression()} and doc_id == {json.dumps(doc_id)}", output_fields=["id"]
        )
        found = self.passages(row["id"] for row in rows)
        return sorted(found.values(), key=lambda passage: passage.record.start)

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
            AnnSearchRequest([np.asarray(vector, dtype=np.float32)], "vector", dense_search_params(self.index_type), depth, expression),
            AnnSearchRequest([query], "sparse", {"metric_type": "BM25"}, depth, expression),
        ]
        if ranker not in ("rrf", "weighted"):
            raise ValueError(f"unknown ranker {ranker!r}; choose one of rrf, weighted")
        fusion = RRFRanker(60) if ranker == "rrf" else WeightedRanker(*weights)
        return _ranking(self.client.hybrid_search(self.names.passages, requests, fusion, limit=min(k, MAX_TOP_K))[0])

    def _bm25(self, collection: str, query: str, k: int, filters: Filters, fields: list[str] | None = None) -> list[dict]:
        return self.client.search(
            collection,
            data=[query],
            anns_field="sparse",
            limit=min(k, MAX_TOP_K),
            filter=self.committed.expression(filters),
            search_params={"metric_type": "BM25"},
            output_fields=fields,
        )[0]

    def _query(self, collection: str, field: str, values: Iterable[int], fields: list[str]) -> list[dict]:
        keys = sorted({int(v) for v in values})
        visible = self.committed.expression()
        return [
            row
            for chunk in iter_chunks(keys, _IDS_PER_QUERY)
            for row in self.client.query(collection, filter=f"{visible} and {field} in {chunk}", output_fields=["id", *fields])
        ]


def _word_per_term(query: str, analyzer: Analyzer) -> dict[str, str]:
    """Each analyzed term of the query with the first word that gives it: Milvus analyzes a search text itself."""
    words: dict[str, str] = {}
    for word in re.findall(analyzer.pattern, query.lower()):
        for term in analyzer.terms(word):
            words.setdefault(term, word)
    return words


def _ranking(hits: list[dict]) -> Ranking:
    if not hits:
        return NO_RANKING
    return (np.array([hit["id"] for hit in hits], dtype=np.int64), np.array([hit["distance"] for hit in hits], dtype=np.float64))
