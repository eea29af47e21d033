"""FAISS segments behind the ``VectorStore`` interface.

Small segments are exact (``IndexFlatIP``): new passages land there and cost nothing to add.
Segments of ``ANN_MIN_VECTORS`` or more are sealed as IVF (inverted lists over k-means cells), the
measured choice over HNSW here: it trains and adds a million vectors in about a minute on two cores
where HNSW takes many (200,000 realistic vectors: IVF 4.4 s, HNSW 140 s, ``semsearch bench ann``), and
``nprobe`` trades recall for time (``semsearch bench scale`` reports the recall). Its lists hold float16
vectors (``SQfp16``): an IVF search reads every vector of the cells it probes, so it is bound by memory
bandwidth, and half the bytes is half the time (1,000,000 vectors, 64 of 1,000 cells probed, one thread:
2.8 ms against 5.3 ms for float32) at the same recall; scores move by about 1e-3, as the float16 vector
files' do. Segments are read into memory, not memory-mapped: FAISS searched the memory-mapped float32
lists in 10.1 ms, the same lists in memory in 5.9 ms.
Deleted passages stay in their segment as tombstones, hidden by an id selector, until compaction
rewrites the segment without them.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import faiss
import numpy as np

from search.backends.contract import NO_RANKING
from search.backends.local.vector_store import PreparedSegment, VectorStore
from search.durability import write_durably
from search.errors import IndexFormatError
from search.index_settings import FIX_HINT

ANN_MIN_VECTORS = 50_000
# Cells probed per query: _PROBES_PER_ROOT_CELL * sqrt(cells), never fewer than _MIN_PROBES. The probes
# recall@10 0.95 needs grow about as the square root of the cells. The factor is read off the hardest real
# embeddings measured (``semsearch bench vectors --sentences``, 259,000 docstring sentences, README): twice
# the root reached 0.912-0.951 on them at 10,000-259,000 vectors, four times 0.971-0.977 (three times, in a
# sweep on another split: 0.949-0.963), so four it is (40 of 100 cells, 60 of 223, 91 of 508, 127 of 1,000). Seed and Cranfield
# sentences, denser in topic, had reached 0.962 at twice the root.
_PROBES_PER_ROOT_CELL = 4.0
_MIN_PROBES = 16
_TRAIN_POINTS_PER_CELL = 40


@dataclass
class _OpenSegment:
    id: int
    file: str
    kind: str
    index: faiss.Index
    dead: np.ndarray
    # faiss selectors keep raw pointers to each other: holding them here keeps them alive.
    selector: faiss.IDSelector | None
    dead_batch: faiss.IDSelector | None


class FaissSegments(VectorStore):
    def __init__(self, folder: Path, dimension: int) -> None:
        self._folder = folder
        self._dimension = dimension
        self._segments: list[_OpenSegment] = []
        self._lock = threading.Lock()

    def open(self, segments: list[tuple[int, str, str]], tombstones: dict[int, int]) -> None:
        dead_by_segment: dict[int, list[int]] = {}
        for passage, segment in tombstones.items():
            dead_by_segment.setdefault(segment, []).append(passage)
        known = {segment.id: segment for segment in self._segments}
        opened = []
        for segment_id, file, kind in segments:
            index = known[segment_id].index if segment_id in known else self._read(file)
            dead = np.sort(np.array(dead_by_segment.get(segment_id, []), dtype=np.int64))
            if segment_id in known and np.array_equal(known[segment_id].dead, dead):
                opened.append(known[segment_id])
                continue
            batch = faiss.IDSelectorBatch(dead) if len(dead) else None
            selector = faiss.IDSelectorNot(batch) if batch is not None else None
            opened.append(_OpenSegment(segment_id, file, kind, index, dead, selector, batch))
        with self._lock:
            self._segments = opened

    def _read(self, file: str) -> faiss.Index:
        path = self._folder / file
        try:
            return faiss.read_index(str(path))
        except RuntimeError:
            raise IndexFormatError(f"vector segment {path} is missing or damaged; {FIX_HINT}") from None

    def size(self) -> int:
        return sum(segment.index.ntotal for segment in self._segments)

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        segments = self._segments
        if k < 1 or not segments:
            return NO_RANKING
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        allowed_batch = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)) if allowed is not None else None
        with _one_thread():
            found = [self._search_segment(segment, query, k, allowed_batch, exact) for segment in segments if segment.index.ntotal]
        if not found:
            return NO_RANKING
        ids, scores = np.concatenate([ids for ids, _ in found]), np.concatenate([scores for _, scores in found])
        order = np.lexsort((ids, -scores))[:k]
        return ids[order], scores[order].astype(np.float32)

    @staticmethod
    def _search_segment(
        segment: _OpenSegment, query: np.ndarray, k: int, allowed: faiss.IDSelector | None, exact: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        selector, keep = _combined(segment.selector, allowed)
        params = _parameters(segment, selector, exact)
        scores, ids = segment.index.search(query, min(k, segment.index.ntotal), params=params)
        del keep
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]

    def prepare(self, folder: Path, ids: np.ndarray, vectors: np.ndarray) -> PreparedSegment:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        kind = "ivf" if len(ids) >= ANN_MIN_VECTORS else "flat"
        index = trained_ivf(vectors, self._dimension) if kind == "ivf" else _flat(self._dimension)
        index.add_with_ids(vectors, ids)
        name = f"seg-{uuid.uuid4().hex}.faiss"
        write_durably(folder / name, lambda path: faiss.write_index(index, str(path)))
        return PreparedSegment(name, kind, len(ids))

    def live_vectors(self, segment_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        wanted = set(segment_ids)
        all_ids, all_vectors = [], []
        for segment in self._segments:
            if segment.id not in wanted:
                continue
            # Every segment is an IDMap around its index (``_flat``, ``trained_ivf``); read_index returns it as such.
            index = cast(faiss.IndexIDMap, faiss.read_index(str(self._folder / segment.file)))
            ids = faiss.vector_to_array(index.id_map).astype(np.int64)
            inner = faiss.downcast_index(index.index)
            if isinstance(inner, faiss.IndexIVF):
                inner.make_direct_map()
            vectors = inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else np.zeros((0, self._dimension), np.float32)
            live = ~np.isin(ids, segment.dead)
            all_ids.append(ids[live])
            all_vectors.append(vectors[live])
        if not all_ids:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self._dimension), dtype=np.float32)
        ids, vectors = np.concatenate(all_ids), np.vstack(all_vectors)
        order = np.argsort(ids, kind="stable")
        return ids[order], vectors[order]


@contextmanager
def _one_thread() -> Iterator[None]:
    """One query is too little work to share: OpenMP threads cost more in hand-offs than they save. On a
    busy two-core machine an IVF search (200,000 vectors, nprobe 28) took 37 ms with two threads and 9 ms
    with one. The setting is the calling thread's own, so a build on another thread keeps every core."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _combined(dead: faiss.IDSelector | None, allowed: faiss.IDSelector | None) -> tuple[faiss.IDSelector | None, object]:
    if dead is not None and allowed is not None:
        both = faiss.IDSelectorAnd(allowed, dead)
        return both, both
    return (dead or allowed), None


def _parameters(segment: _OpenSegment, selector: faiss.IDSelector | None, exact: bool) -> faiss.SearchParameters | None:
    if segment.kind == "ivf":
        cells = faiss.extract_index_ivf(segment.index).nlist
        probes = cells if exact else ivf_probes(cells)
        ivf = faiss.SearchParametersIVF()
        ivf.nprobe = min(probes, cells)
        parameters: faiss.SearchParameters = ivf
    elif selector is None:
        return None
    else:
        parameters = faiss.SearchParameters()
    # SWIG parameter objects are filled by attribute: the generated stubs declare no keyword arguments.
    if selector is not None:
        parameters.sel = selector
    return parameters


def _flat(dimension: int) -> faiss.Index:
    return faiss.index_factory(dimension, "IDMap,Flat", faiss.METRIC_INNER_PRODUCT)


def ivf_cells(vectors: int) -> int:
    """About ``sqrt(n)`` cells: k-means stays cheap to train and each cell holds about as many vectors."""
    return max(64, int(math.sqrt(vectors)))


def ivf_probes(cells: int) -> int:
    """Cells an approximate search probes in a segment of ``cells`` cells (the rule above)."""
    return min(cells, max(_MIN_PROBES, math.ceil(_PROBES_PER_ROOT_CELL * math.sqrt(cells))))


def trained_ivf(vectors: np.ndarray, dimension: int) -> faiss.Index:
    """IVF with ``ivf_cells`` cells of float16 vectors, trained on a deterministic sample (k-means needs ~40 points a cell)."""
    cells = ivf_cells(len(vectors))
    index = faiss.index_factory(dimension, f"IDMap,IVF{cells},SQfp16", faiss.METRIC_INNER_PRODUCT)
    sample_size = min(len(vectors), cells * _TRAIN_POINTS_PER_CELL)
    sample = vectors[np.random.default_rng(0).choice(len(vectors), sample_size, replace=False)]
    index.train(sample)
    return index
