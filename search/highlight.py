"""The vectors of candidate passages and their sentences, and the sentences that best answer a query.

Only candidates are read (float16 rows of memory-mapped files), so scoring the best sentence costs
what a query touches, not what the collection holds.
"""

from __future__ import annotations

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
    """One gather per vector file for all the given passages (slicing row by row costs more than reading).

    Passages whose file is gone (replaced or deleted since the caller's snapshot) have no entry.
    """
    by_file: dict[int, list[tuple[int, StoredPassage]]] = {}
    for pid, stored in passages.items():
        by_file.setdefault(stored.vector_file, []).append((pid, stored))
    vectors = {}
    for file_id, members in by_file.items():
        lengths = [1 + len(stored.sentences) for _, stored in members]
        rows = np.concatenate([np.arange(stored.vector_row, stored.vector_row + n) for (_, stored), n in zip(members, lengths)])
        matrix = files.gather(file_id, rows)
        if matrix is None:
            continue  # the file went with its documents after this query's snapshot began
        for (pid, _), block in zip(members, np.split(matrix, np.cumsum(lengths)[:-1])):
            vectors[pid] = PassageVectors(block[0], block[1:])
    return vectors


def best_sentence_cosines(files: VectorFiles, locations: dict[int, PassageLocation], query_vector: np.ndarray) -> dict[int, float]:
    """Each passage's best sentence cosine with the query (its own cosine when it has no sentence): one gather
    and one product per vector file, no loop per passage.

    Passages whose file is gone (replaced or deleted since the caller's snapshot) have no entry.
    """
    by_file: dict[int, list[tuple[int, int, int]]] = {}
    for pid, where in locations.items():
        row, count = where.vector_row, where.sentences
        by_file.setdefault(where.vector_file, []).append((pid, row + 1, count) if count else (pid, row, 1))
    best: dict[int, float] = {}
    for file_id, members in by_file.items():
        pids, starts, lengths = (np.array(column, dtype=np.int64) for column in zip(*members))
        offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        matrix = files.gather(file_id, np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum())))
        if matrix is not None:
            best.update(zip(pids.tolist(), np.maximum.reduceat(matrix @ query_vector, offsets).tolist()))
    return best


def passage_vectors(files: VectorFiles, locations: dict[int, PassageLocation]) -> dict[int, np.ndarray]:
    """The passages' own vectors (the first row of each), one gather per file."""
    by_file: dict[int, list[tuple[int, int]]] = {}
    for pid, where in locations.items():
        by_file.setdefault(where.vector_file, []).append((pid, where.vector_row))
    found: dict[int, np.ndarray] = {}
    for file_id, members in by_file.items():
        matrix = files.gather(file_id, np.array([row for _, row in members], dtype=np.int64))
        if matrix is not None:
            found.update(zip((pid for pid, _ in members), matrix))
    return found


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
