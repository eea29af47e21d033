"""The server's live state: the current searcher, swapped atomically when a rebuild finishes."""

from __future__ import annotations

import threading
from pathlib import Path

from search.errors import SemsearchError
from search.searcher import Searcher


class Engine:
    """Holds one ``Searcher`` at a time; requests take a reference and keep it until they finish."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self._searcher: Searcher | None = None
        self.unavailable_reason: str | None = "the index has not been loaded yet"
        self._swap_lock = threading.Lock()

    @property
    def searcher(self) -> Searcher | None:
        return self._searcher

    def load(self) -> None:
        """(Re)load the index from disk; on failure keep serving the previous one if there was one."""
        try:
            searcher = Searcher.open(self.index_dir)
            searcher.warm_up()
        except SemsearchError as exc:
            with self._swap_lock:
                if self._searcher is None:
                    self.unavailable_reason = str(exc)
            raise
        self.swap(searcher)

    def swap(self, searcher: Searcher) -> None:
        with self._swap_lock:
            self._searcher = searcher
            self.unavailable_reason = None
