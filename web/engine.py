"""The server's live state: the current searcher, following the index as writers change it."""

from __future__ import annotations

import threading
import time

from search.backends.contract import IndexLocation
from search.backends.registry import open_backend
from search.errors import IndexNotFound, SemsearchError
from search.ranking.searcher import Searcher

# How often requests look for a full rebuild published by another process (a stat and a small read).
_FOLLOW_SECONDS = 0.5


class Engine:
    """Holds one ``Searcher`` at a time; requests take a reference and keep it until they finish.

    Updates in place are followed by the searcher itself; a full rebuild publishes a new folder, which
    the engine opens beside the old one and swaps in, so no request waits for it.
    """

    def __init__(self, location: IndexLocation) -> None:
        self.location = location
        self._searcher: Searcher | None = None
        self.unavailable_reason: str | None = "the index has not been loaded yet"
        self._swap_lock = threading.Lock()
        self._follow_lock = threading.Lock()
        self._checked_at = 0.0

    @property
    def searcher(self) -> Searcher | None:
        current = self._searcher
        if current is not None:
            self._follow(current)
        return self._searcher

    def current(self) -> Searcher:
        """The searcher to answer with; ``IndexNotFound`` with the reason while there is none."""
        searcher = self.searcher
        if searcher is None:
            raise IndexNotFound(f"no index is loaded: {self.unavailable_reason}")
        return searcher

    def load(self) -> None:
        """(Re)load the index from disk; on failure keep serving the previous one if there was one."""
        try:
            searcher = Searcher.open(self.location)
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

    def _follow(self, current: Searcher) -> None:
        now = time.monotonic()
        if now - self._checked_at < _FOLLOW_SECONDS or not self._follow_lock.acquire(blocking=False):
            return
        try:
            self._checked_at = now
            if current.backend.superseded():
                self.swap(Searcher(open_backend(self.location), current.embedder))
        except SemsearchError:
            pass  # keep serving what is open; the next look may find the index readable again
        finally:
            self._follow_lock.release()
