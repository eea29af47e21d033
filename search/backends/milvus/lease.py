"""One writer per index across machines: a lease with an expiry, held in the control collection.

A writer takes the lease when no unexpired lease of another holder exists, renews it from a background
thread every third of its term, and deletes it on exit. A writer that dies without releasing blocks
others until the lease expires (``milvus_lease_seconds``, 30 s by default).

The race window: Milvus has no compare-and-set, so two writers that both read "free" at the same moment
both upsert their own row, and the later upsert wins. Each writer therefore reads the row back after a
settle delay (``_SETTLE_S``) and proceeds only if its own holder is still there; the loser raises
``IndexLocked``. Two writers are both admitted only if one's read-back lands before the other's upsert
while that other read "free" before the first upsert: their acquisitions must overlap within about one
round trip, and the delay makes the overlapping pair's later write visible to the earlier writer's check.
It narrows the window, it does not close it; a server with a transactional store (etcd) would.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from search.backends.milvus.control import Control
from search.errors import IndexLocked

DEFAULT_LEASE_S = 30.0
_SETTLE_S = 0.3


def holder_name() -> str:
    """host:pid:random, unique to one writer."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """The lease row of one index, as seen and written by one would-be holder."""

    def __init__(self, control: Control, index: str, seconds: float = DEFAULT_LEASE_S, holder: str | None = None) -> None:
        self.control = control
        self.index = index
        self.key = f"lease/{index}"
        self.seconds = seconds
        self.holder = holder or holder_name()

    def acquire(self) -> None:
        """Take the lease or raise ``IndexLocked`` naming the holder and when its lease runs out."""
        self._refuse_if_held()
        self.renew()
        time.sleep(_SETTLE_S)
        self._refuse_if_held()

    def renew(self) -> None:
        self.control.put(self.key, {"holder": self.holder, "expires": time.time() + self.seconds})

    def release(self) -> None:
        current = self.control.get(self.key)
        if current is not None and current["holder"] == self.holder:
            self.control.delete(self.key)

    def _refuse_if_held(self) -> None:
        current = self.control.get(self.key)
        if current is None or current["holder"] == self.holder or current["expires"] <= time.time():
            return
        expires = datetime.fromtimestamp(current["expires"], UTC).isoformat(timespec="seconds")
        raise IndexLocked(f"index {self.index} is being written by {current['holder']} (lease expires {expires})")


@contextmanager
def held(lease: Lease) -> Iterator[None]:
    """Hold ``lease`` for the block, renewed in the background."""
    lease.acquire()
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.seconds / 3):
            lease.renew()

    renewer = threading.Thread(target=renew, name=f"lease-{lease.index}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        lease.release()
