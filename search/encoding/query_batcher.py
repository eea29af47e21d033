"""Concurrent single-query embeddings gathered into shared forward passes.

One forward pass over 16 short queries costs little more than over one, so callers that arrive while a
pass is running wait for it to end and then go together in the next one. The first caller of an idle
batcher runs at once: a lone query pays no collection delay, and the running pass is the collection
window for everyone behind it. No thread is started: the caller that finds the batcher idle runs the
pass itself, then hands the lead to the oldest waiting caller.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable

import numpy as np


class _Request:
    __slots__ = ("error", "lead", "text", "vector", "wake")

    def __init__(self, text: str) -> None:
        self.text = text
        self.wake = threading.Event()
        self.lead = False
        self.vector: np.ndarray | None = None
        self.error: BaseException | None = None


class QueryBatcher:
    """Embeds one text per call; concurrent calls share forward passes of up to ``max_batch`` texts.

    ``embed`` maps a list of texts to a matrix with one row per text. If it raises, every caller of that
    pass gets the exception.
    """

    def __init__(self, embed: Callable[[list[str]], np.ndarray], max_batch: int = 64) -> None:
        self._embed = embed
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: deque[_Request] = deque()
        self._running = False
        # Passes by how many texts each embedded: the server's metrics report it as a histogram.
        self.pass_sizes: Counter[int] = Counter()

    @property
    def passes(self) -> int:
        return self.pass_sizes.total()

    def submit(self, text: str) -> np.ndarray:
        """The vector of ``text``, from a pass that may also embed other callers' texts."""
        request = _Request(text)
        with self._lock:
            self._waiting.append(request)
            request.lead = not self._running
            self._running = True
        if not request.lead:
            request.wake.wait()
        if request.lead:
            self._run_pass()
        if request.error is not None:
            raise request.error
        if request.vector is None:
            raise RuntimeError("a query pass ended without a vector for its text")
        return request.vector

    def _run_pass(self) -> None:
        """Embed the oldest waiting texts (the leader's own is first), then pass the lead on."""
        with self._lock:
            batch = [self._waiting.popleft() for _ in range(min(self._max_batch, len(self._waiting)))]
            self.pass_sizes[len(batch)] += 1
        try:
            vectors = self._embed([request.text for request in batch])
            for request, vector in zip(batch, vectors, strict=True):
                request.vector = vector
        except BaseException as exc:  # noqa: BLE001 - whatever the pass raised belongs to all its callers
            for request in batch:
                request.error = exc
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].lead = True
                    self._waiting[0].wake.set()
                else:
                    self._running = False
            for request in batch[1:]:
                request.wake.set()
