"""Pseudo-relevance feedback: re-query with the meaning of the first results (Rocchio 1971).

The first fused results of a query are usually on topic even when they miss the answer; moving the
query vector towards their centroid reaches relevant passages phrased differently. It costs one more
vector-store query. RM3 term expansion was dropped: it cost the seed questions hit@1 0.92 -> 0.67 and
the manual questions MRR@10 0.57 -> 0.53 for +0.014 nDCG@10 on Cranfield.
"""

from __future__ import annotations

import numpy as np

# The first three fused results: the previous recipe's depth, kept as it was rather than fit again.
VECTOR_FEEDBACK_PASSAGES = 3


def moved_query_vector(query_vector: np.ndarray, feedback_vectors: np.ndarray) -> np.ndarray:
    """Rocchio: the query moved towards the centroid of the first results, back to unit length."""
    if len(feedback_vectors) == 0:
        return query_vector
    moved = query_vector + feedback_vectors.mean(axis=0)
    norm = float(np.linalg.norm(moved))
    return moved / norm if norm > 0 else query_vector
