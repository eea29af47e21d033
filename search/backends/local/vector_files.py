"""Passage and sentence vectors as float16 files, memory-mapped and read only for candidate passages.

Best-sentence scoring needs the sentences of a query's candidates, not of the collection: each
update writes one file whose rows are, per passage, its own vector followed by its sentences'
vectors. float16 halves the disk and page cache; scores move by about 1e-3, well below what
separates results.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import numpy as np

from search.durability import write_durably
from search.errors import IndexFormatError
from search.index_settings import FIX_HINT


class VectorFiles:
    """Opens each file once, lazily: a file written after this reader started is opened on first use."""

    def __init__(self, folder: Path, names: dict[int, str]) -> None:
        self._folder = folder
        self._names = dict(names)
        self._open: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def update_names(self, names: dict[int, str]) -> None:
        """Follow the store's list; a newly named file that is not on disk is damage, named with the fix."""
        for file_id, name in names.items():
            if file_id not in self._names and not (self._folder / name).is_file():
                raise IndexFormatError(f"vector file {self._folder / name} is missing; {FIX_HINT}")
        with self._lock:
            self._names = dict(names)
            self._open = {key: value for key, value in self._open.items() if key in names}

    def gather(self, file_id: int, rows: np.ndarray) -> np.ndarray | None:
        """The given rows of one file as float32 (only their pages are read); None when a writer removed the
        file, with the documents it held, after the reader's snapshot was taken."""
        matrix = self._file(file_id)
        return None if matrix is None else _as_float32(matrix[rows])

    def _file(self, file_id: int) -> np.ndarray | None:
        matrix = self._open.get(file_id)
        if matrix is not None:
            return matrix
        with self._lock:
            name = self._names.get(file_id)
        path = self._folder / (name or f"vec-{file_id}")
        if name is None or not path.exists():
            return None
        try:
            matrix = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            raise IndexFormatError(f"vector file {path} is damaged; {FIX_HINT}") from None
        with self._lock:
            self._open[file_id] = matrix
        return matrix


def write_vector_file(folder: Path, rows: np.ndarray) -> str:
    """Write rows durably under a fresh name; it joins the index when a store transaction names it."""
    name = f"vec-{uuid.uuid4().hex}.npy"

    def save(path: Path) -> None:
        with path.open("wb") as handle:
            np.save(handle, np.ascontiguousarray(rows, dtype=np.float16), allow_pickle=False)

    write_durably(folder / name, save)
    return name


# torch hands a conversion of more elements than this to its thread pool, whose idle threads then spin and
# take the cores the query encoder needs; smaller pieces are converted on the calling thread.
_SERIAL_ELEMENTS = 32_768


def _as_float32(block: np.ndarray) -> np.ndarray:
    """float16 rows as float32. numpy converts element by element (0.5 ms for a query's few hundred candidates
    on this CPU); torch, which sentence-transformers loads anyway, uses the F16C instructions, ten times faster."""
    import torch

    block = np.ascontiguousarray(block, dtype=np.float16)
    out = np.empty(block.shape, dtype=np.float32)
    rows = max(1, _SERIAL_ELEMENTS // max(1, block.shape[-1]))
    for first in range(0, len(block), rows):
        out[first : first + rows] = torch.from_numpy(block[first : first + rows]).float().numpy()
    return out
