"""The rescore stage: dense candidates scored again from their best sentence. Reads no storage.

    retrieve (the backend's ReadView) -> rescore -> fuse (fusion) -> feedback -> shape (shaping) -> hydrate

``search.ranking.searcher`` runs the pipeline and does the reads; each stage is a module of array functions
that can be tested alone on small arrays. A new stage (a reranker) is a new module and one line in the pipeline.
"""

from __future__ import annotations

import numpy as np

from search.backends.contract import NO_RANKING, Ranking, VectorBlocks
from search.ranking.fusion import rerank, semantic_scores


def best_sentence_cosines(blocks: VectorBlocks, query_vector: np.ndarray) -> np.ndarray:
    """Per block, the best sentence's cosine with the query; a passage without sentences scores its own vector."""
    if not len(blocks.ids):
        return np.zeros(0)
    cosines = blocks.matrix @ query_vector
    has_sentences = blocks.counts > 1
    # A passage's own row competes only when it has no sentence row.
    cosines[blocks.offsets[has_sentences]] = -np.inf
    return np.maximum.reduceat(cosines, blocks.offsets).astype(np.float64)


def rescore_semantic(
    ids: np.ndarray, cosines: np.ndarray, blocks: VectorBlocks, query_vector: np.ndarray, best_part: bool = False
) -> Ranking:
    """Nearest passages re-scored from their own cosine and their best sentence's cosine with the question
    (``semantic_scores``: their mean, or with ``best_part`` their maximum).

    The passage vector says what the passage is about; the best sentence whether it holds the answer. Either
    alone ranks worse (measured on Cranfield and the seed questions). Candidates without vectors (gone since
    the snapshot) drop out.
    """
    best = dict(zip(blocks.ids.tolist(), best_sentence_cosines(blocks, query_vector).tolist()))
    kept = np.array([pid in best for pid in ids.tolist()], dtype=bool)
    if not kept.any():
        return NO_RANKING
    rows = np.asarray(ids, dtype=np.int64)[kept]
    return rerank(rows, semantic_scores(np.asarray(cosines)[kept], np.array([best[pid] for pid in rows.tolist()]), best_part))
