"""Whether the local backend's probe rule reaches recall@10 0.95 on real embeddings, at sizes past the basis.

The rule (``ivf_probes``) was first read off 10,000 real embeddings and mixtures of them, and mixtures
grow too easy far beyond their basis. Here it is checked on real embeddings of the sentences given
(``benchmarks.docstrings`` supplies ~290,000): held-out sentences search N others in the backend's own
IVF segment (``trained_ivf``: its cells, its float16 lists) at half, once and twice the rule's probes.
Beside them, at the same N: the benchmark's mixtures (``benchmarks.vectors``), and mixtures whose basis
is these real embeddings, which reach sizes beyond the sentences at hand.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from benchmarks.docstrings import seeded_order
from benchmarks.vectors import Mixtures, embedded_once, load_basis, recall_at_k
from search.backends.local.faiss_segments import ivf_cells, ivf_probes, trained_ivf
from search.errors import SemsearchError

QUERIES = 1000
_K = 10


def check_probe_rule(sentences_file: Path, sizes: list[int], log=lambda message: None) -> dict:
    """Recall@10 around the rule's probes at each of ``sizes``: real embeddings (sizes they cover), the
    benchmark's mixtures, and mixtures of the real embeddings."""
    sentences = seeded_order(list(set(sentences_file.read_text(encoding="utf-8").splitlines()) - {""}))
    if len(sentences) < 2 * QUERIES:
        raise SemsearchError(f"{sentences_file} holds {len(sentences)} distinct lines; at least {2 * QUERIES} are needed")
    log(f"embedding {len(sentences)} sentences once (cached)")
    real = embedded_once(sentences, "bench-real")
    queries, pool = real[:QUERIES], real[QUERIES:]
    kinds = {"mixtures": Mixtures(load_basis().vectors), "mixtures_of_these": Mixtures(pool)}
    rows = []
    for size in sorted(sizes):
        log(f"{size} vectors")
        cells = ivf_cells(size)
        rule = ivf_probes(cells)
        probes = {"half_rule": max(1, rule // 2), "rule": rule, "twice_rule": min(cells, 2 * rule)}
        row: dict = {"vectors": size, "cells": cells, "probes": probes}
        if size <= len(pool):
            row["real"] = _recall(pool[:size], queries, probes)
        for name, mixtures in kinds.items():
            synthetic = mixtures.vectors(np.arange(size + QUERIES, dtype=np.uint64))
            row[name] = _recall(synthetic[QUERIES:], synthetic[:QUERIES], probes)
        rows.append(row)
    return {"sentences": len(sentences), "queries": QUERIES, "mixture_basis": len(kinds["mixtures"].basis), "sizes": rows}


def _recall(database: np.ndarray, queries: np.ndarray, probes: dict[str, int]) -> dict[str, float]:
    """Recall@10 against exact search at each named number of probes."""
    index = trained_ivf(database, database.shape[1])
    index.add_with_ids(database, np.arange(len(database), dtype=np.int64))
    exact = faiss.IndexFlatIP(database.shape[1])
    exact.add(database)
    _, truth = exact.search(queries, _K)
    ivf = faiss.extract_index_ivf(index)
    recall = {}
    for name, count in probes.items():
        ivf.nprobe = count
        _, found = index.search(queries, _K)
        recall[name] = round(recall_at_k(found, truth), 3)
    return recall
