"""Which ANN index, measured: IVF-Flat, IVF with float16 lists (the local backend's), IVF-SQ8 with exact
re-ranking, and HNSW on realistic vectors.

Vectors are mixtures of real sentence embeddings (``benchmarks.vectors``); queries are fresh mixtures
from the same recipe, not in the index. Each kind is built and measured in a fresh process, so its
memory figures are its own: build time (all cores), the index file's size, the resident memory a
server gains by reading it, and single-thread query latency at the smallest search setting (nprobe or
efSearch) whose recall@10 against exact search reaches ``TARGET_RECALL``. Every setting tried is
reported with its recall, so the probe rule in ``faiss_segments`` can be read off the curves.
Measured, never asserted: the machines are noisy.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks.fresh_process import run_fresh
from benchmarks.scale import resident_mb
from benchmarks.vectors import KIND, Mixtures, load_basis, recall_at_k
from search.backends.local.faiss_segments import ivf_cells
from search.errors import SemsearchError

KINDS = ("ivf", "ivf-fp16", "ivf-sq8", "hnsw")
_IVF_CODES = {"ivf": "Flat", "ivf-fp16": "SQfp16", "ivf-sq8": "SQ8,RFlat"}
TARGET_RECALL = 0.95
QUERIES = 200
_K = 10
_HNSW_M = 32
_HNSW_EF_CONSTRUCTION = 64
_EF_SEARCH = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384)
# IVF-SQ8 re-ranks this many times k candidates with the exact vectors.
_REFINE_FACTOR = 4
_TRAIN_POINTS_PER_CELL = 40


def run_ann(vectors: int, kinds: list[str], log=lambda message: None) -> dict:
    """Measure each of ``kinds`` on ``vectors`` synthetic vectors, each in a fresh process."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise SemsearchError(f"--kinds must be among {', '.join(KINDS)}, not {', '.join(unknown)}")
    database, queries = _vectors(vectors)
    exact = faiss.IndexFlatIP(database.shape[1])
    exact.add(database)
    _, truth = exact.search(queries, _K)
    del exact, database
    result: dict = {
        "vectors": vectors,
        "vector_kind": KIND,
        "dimension": int(queries.shape[1]),
        "queries": QUERIES,
        "target_recall_at_10": TARGET_RECALL,
        "threads_build": faiss.omp_get_max_threads(),
        "threads_search": 1,
        "indexes": {},
    }
    for kind in kinds:
        log(f"{kind}: building and measuring in a fresh process")
        result["indexes"][kind] = _measure_in_fresh_process(vectors, kind, truth.tolist())
    return result


def _vectors(count: int) -> tuple[np.ndarray, np.ndarray]:
    mixtures = Mixtures(load_basis().vectors)
    database = np.vstack(
        [mixtures.vectors(np.arange(first, min(count, first + 100_000), dtype=np.uint64)) for first in range(0, count, 100_000)]
    ).astype(np.float32)
    queries = mixtures.vectors(np.arange(count, count + QUERIES, dtype=np.uint64)).astype(np.float32)
    return database, queries


def _measure_in_fresh_process(vectors: int, kind: str, truth: list[list[int]]) -> dict:
    return run_fresh("benchmarks.ann", "measure_main", {"vectors": vectors, "kind": kind, "truth": truth}, f"measuring {kind}")


def measure_main() -> None:
    """Entry point of the fresh process: JSON request on stdin, JSON measurements on stdout."""
    request = json.loads(sys.stdin.read())
    print(json.dumps(measure(request["vectors"], request["kind"], np.array(request["truth"]))))


def measure(count: int, kind: str, truth: np.ndarray) -> dict:
    database, queries = _vectors(count)
    started = time.perf_counter()
    index, description = _built(kind, database)
    build_s = time.perf_counter() - started
    del database
    with tempfile.TemporaryDirectory(prefix="semsearch-ann-") as folder:
        path = Path(folder) / "index.faiss"
        faiss.write_index(index, str(path))
        del index
        before = resident_mb()
        index = faiss.read_index(str(path))
        memory_mb = resident_mb() - before
        disk_mb = path.stat().st_size / 2**20
    faiss.omp_set_num_threads(1)
    curve: dict[int, float] = {}
    for value in _settings(kind, index):
        curve[value] = round(recall_at_k(_search_all(index, kind, value, queries), truth), 4)
        if curve[value] >= TARGET_RECALL:
            break
    setting = value if curve[value] >= TARGET_RECALL else None
    latencies = _latencies(index, kind, value, queries)
    return {
        "index": description,
        "build_s": round(build_s, 2),
        "disk_mb": round(disk_mb, 1),
        "memory_mb": round(memory_mb, 1),
        "setting_name": "efSearch" if kind == "hnsw" else "nprobe",
        "setting": setting,
        "recall_at_10": curve[value],
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(statistics.quantiles(latencies, n=100, method="inclusive")[98], 3),
        "curve": curve,
    }


def _built(kind: str, database: np.ndarray) -> tuple[faiss.Index, str]:
    dimension = database.shape[1]
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dimension, _HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = _HNSW_EF_CONSTRUCTION
        hnsw.add(database)
        return hnsw, f"HNSW{_HNSW_M},Flat efConstruction={_HNSW_EF_CONSTRUCTION}"
    cells = ivf_cells(len(database))
    description = f"IVF{cells},{_IVF_CODES[kind]}"
    index = faiss.index_factory(dimension, description, faiss.METRIC_INNER_PRODUCT)
    sample = database[np.random.default_rng(0).choice(len(database), min(len(database), cells * _TRAIN_POINTS_PER_CELL), replace=False)]
    index.train(sample)
    index.add(database)
    if kind == "ivf-sq8":
        description += f" k_factor={_REFINE_FACTOR}"
    return index, description


def _settings(kind: str, index: faiss.Index) -> list[int]:
    if kind == "hnsw":
        return list(_EF_SEARCH)
    cells = faiss.extract_index_ivf(index).nlist
    return sorted(
        {
            min(cells, max(1, math.ceil(cells * share)))
            for share in (0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.6, 1.0)
        }
    )


def _parameters(kind: str, value: int) -> faiss.SearchParameters:
    # faiss's bundled stubs lack SearchParametersHNSW and the keyword constructor that faiss.class_wrappers gives
    # every SearchParameters class (which also keeps base_index_params alive as long as the refine parameters).
    if kind == "hnsw":
        return faiss.SearchParametersHNSW(efSearch=value)  # type: ignore[attr-defined]  # stubs gap, see above
    ivf = faiss.SearchParametersIVF(nprobe=value)  # type: ignore[call-arg]  # stubs gap, see above
    if kind == "ivf-sq8":
        return faiss.IndexRefineSearchParameters(k_factor=_REFINE_FACTOR, base_index_params=ivf)  # type: ignore[call-arg]  # stubs gap
    return ivf


def _search_all(index: faiss.Index, kind: str, value: int, queries: np.ndarray) -> np.ndarray:
    return index.search(queries, _K, params=_parameters(kind, value))[1]


def _latencies(index: faiss.Index, kind: str, value: int, queries: np.ndarray) -> list[float]:
    params = _parameters(kind, value)
    latencies = []
    for row in range(len(queries)):
        began = time.perf_counter()
        index.search(queries[row : row + 1], _K, params=params)
        latencies.append((time.perf_counter() - began) * 1000)
    return latencies
