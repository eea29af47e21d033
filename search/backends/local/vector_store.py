"""The vector-store interface: ranking asks it for candidates and never touches a backend's types.

A store holds immutable segments named by the index's store. Writers prepare segment files that are
invisible until a store transaction names them; readers open what the store names. FAISS is the
backend (``search.faiss_segments``); another is one new module implementing this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class PreparedSegment:
    """A segment file written durably but not yet part of the index."""

    file: str
    kind: str
    size: int


class VectorStore(ABC):
    """Nearest passages by inner product (vectors are unit length, so: cosine)."""

    @abstractmethod
    def open(self, segments: list[tuple[int, str, str]], tombstones: dict[int, int]) -> None:
        """Serve exactly ``segments`` (id, file, kind), hiding the tombstoned ids; re-opens only new files."""

    @abstractmethod
    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None, exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Ids and cosines of the ``k`` nearest live vectors, best first; ``allowed`` limits the ids
        before the cut; ``exact`` searches exhaustively (for checks against approximate search)."""

    @abstractmethod
    def prepare(self, folder: Path, ids: np.ndarray, vectors: np.ndarray) -> PreparedSegment:
        """Write a segment of ``vectors`` under ``ids`` into ``folder``, choosing its kind by size."""

    @abstractmethod
    def live_vectors(self, segment_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Ids and vectors of the live (not tombstoned) rows of the given segments, for compaction."""

    @abstractmethod
    def size(self) -> int:
        """Vectors held, tombstoned ones included."""
