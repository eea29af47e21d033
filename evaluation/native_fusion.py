"""Runs of a backend's own hybrid fusion, for comparison with ours in ``semsearch eval``.

Milvus fuses its dense and BM25 results itself (``hybrid_search`` with ``RRFRanker`` or
``WeightedRanker``); evaluated on the same index and queries, those runs show what our fusion adds.
A document scores as its best passage, as in every other run.
"""

from __future__ import annotations

from search.backends.contract import NativeHybridSearch
from search.ranking.searcher import Searcher

# Candidates each side of Milvus's fusion contributes, as deep as our own rankings go.
_DEPTH = 200
_RANKERS = {"milvus-rrf": "rrf", "milvus-weighted": "weighted"}


def native_runs(searcher: Searcher, queries: dict[str, str], k: int) -> dict[str, dict[str, dict[str, float]]]:
    """Per native ranker, ``{query id: {doc id: score}}``; empty for a backend without its own fusion."""
    runs: dict[str, dict[str, dict[str, float]]] = {}
    with searcher.backend.snapshot() as view:
        if not isinstance(view, NativeHybridSearch):
            return runs
        for name, ranker in _RANKERS.items():
            run: dict[str, dict[str, float]] = {}
            for query_id, text in queries.items():
                ids, scores = view.hybrid(searcher.embedder.encode_query(text), text, k, ranker=ranker, depth=_DEPTH)
                passages = view.passages(ids.tolist())
                best: dict[str, float] = {}
                for pid, score in zip(ids.tolist(), scores.tolist()):
                    if pid in passages:
                        doc_id = passages[pid].record.doc_id
                        best[doc_id] = max(best.get(doc_id, score), score)
                run[query_id] = best
            runs[name] = run
    return runs
