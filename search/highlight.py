"""The vectors of candidate passages and their sentences, and the sentences that best answer a query.

Only candidates are read (float16 rows of memory-mapped files), so scoring the best sentence costs
what a query touches, not what the collection holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from search.keyword import Analyzer
from search.records import Span
from search.store import PassageLocation, StoredPassage
from search.vector_files import VectorFiles

# Sentences this close to the best one are highlighted too: two sentences often answer together.
_NEAR_BEST = 0.03


@dataclass(frozen=True)
class PassageVectors:
    """A passage's own vector and its sentences' vectors (one row per ``StoredPassage.sentences``)."""

    passage: np.ndarray
    sentences: np.ndarray


def load_vectors(files: VectorFiles, passages: dict[int, StoredPassage]) -> dict[int, PassageVectors]:
    """Each passage's own vector and its sentences' vectors.

    Passages whose file is gone (replaced or deleted since the caller's snapshot) have no entry.
    """
    blocks = (
        (pid, stored.vector_file, stored.vector_row, 1 + len(stored.sentences)) for pid, stored in passages.items()
    )
    vectors = {}
    for pids, matrix, offsets in _gathered(files, blocks):
        for pid, block in zip(pids, np.split(matrix, offsets[1:])):
            vectors[pid] = PassageVectors(block[0], block[1:])
    return vectors


def best_sentence_cosines(files: VectorFiles, locations: dict[int, PassageLocation], query_vector: np.ndarray) -> dict[int, float]:
    """Each passage's best sentence cosine with the query (its own cosine when it has no sentence), with no
    loop per passage.

    Passages whose file is gone (replaced or deleted since the caller's snapshot) have no entry.
    """
    blocks = (
        (pid, where.vector_file, where.vector_row + 1, where.sentences) if where.sentences
        else (pid, where.vector_file, where.vector_row, 1)
        for pid, where in locations.items()
    )
    best: dict[int, float] = {}
    for pids, matrix, offsets in _gathered(files, blocks):
        best.update(zip(pids, np.maximum.reduceat(matrix @ query_vector, offsets).tolist()))
    return best


def passage_vectors(files: VectorFiles, locations: dict[int, PassageLocation]) -> dict[int, np.ndarray]:
    """The passages' own vectors (the first row of each)."""
    blocks = ((pid, where.vector_file, where.vector_row, 1) for pid, where in locations.items())
    found: dict[int, np.ndarray] = {}
    for pids, matrix, _ in _gathered(files, blocks):
        found.update(zip(pids, matrix))
    return found


def _gathered(files: VectorFiles, blocks: Iterable[tuple[int, int, int, int]]) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """For ``(passage id, vector file, first row, row count)`` blocks: per vector file, the passage ids, their
    rows in one gather (slicing row by row costs more than reading) and where each passage's rows begin.
    A file that went with its documents after the caller's snapshot began yields nothing."""
    by_file: dict[int, list[tuple[int, int, int]]] = {}
    for pid, file_id, first, count in blocks:
        by_file.setdefault(file_id, []).append((pid, first, count))
    for file_id, members in by_file.items():
        pids, firsts, counts = (np.array(column, dtype=np.int64) for column in zip(*members))
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
        matrix = files.gather(file_id, np.repeat(firsts - offsets, counts) + np.arange(int(counts.sum())))
        if matrix is not None:
            yield pids.tolist(), matrix, offsets


def best_sentence(vectors: PassageVectors, query_vector: np.ndarray) -> float:
    return float((vectors.sentences @ query_vector).max()) if len(vectors.sentences) else float(vectors.passage @ query_vector)


def highlights(stored: StoredPassage, vectors: PassageVectors, query_vector: np.ndarray) -> tuple[Span, ...]:
    """Spans relative to the passage start of its best-matching sentence(s)."""
    if not stored.sentences:
        return ()
    scores = vectors.sentences @ query_vector
    best = float(scores.max())
    return tuple(_relative(stored, span) for span, score in zip(stored.sentences, scores) if score >= best - _NEAR_BEST)


def highlights_by_terms(stored: StoredPassage, text: str, query: str, analyzer: Analyzer) -> tuple[Span, ...]:
    """Without a query vector: the sentence(s) sharing the most analysed terms with the query."""
    wanted = set(analyzer.terms(query))
    start = stored.record.start
    counts = [len(wanted.intersection(analyzer.terms(text[a - start:b - start]))) for a, b in stored.sentences]
    if not counts or max(counts) == 0:
        return ()
    best = max(counts)
    return tuple(_relative(stored, span) for span, count in zip(stored.sentences, counts) if count == best)


def _relative(stored: StoredPassage, span: tuple[int, int]) -> Span:
    return Span(span[0] - stored.record.start, span[1] - stored.record.start)
