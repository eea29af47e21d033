"""One writer per index across machines: claims in the control collection, watched rather than timed.

A writer first writes its own claim row (``lease/<index>/<holder>``), then reads every claim of the index
(Strong). It holds the index only if its claim is the only one. Two writers that start together cannot
both win: each writes before it reads, so at least one of them reads the other's claim, and a writer that
sees another claim withdraws its own and raises ``IndexLocked``. Nothing needs a compare-and-set.

No machine's clock is compared with another's. A claim states its holder's expiry by the holder's clock,
and a writer that finds an unexpired claim by its own clock is refused at once. A claim that looks expired
is not trusted either (the clocks may differ by minutes): the newcomer watches it for one lease term of its
own monotonic clock, renewing its own claim meanwhile. If the holder renews (the claim's ``beat`` moves),
the newcomer is refused and told the two clocks differ; if the claim stays unchanged for the whole term,
its holder is gone, and the newcomer deletes it and takes over. This is the rule of Kubernetes leader
election (a record unchanged for a lease duration, as observed locally, is free).

Fencing. The holder renews every third of its term, and each renewal first checks that its claim is still
there (``renew`` checks ownership: only a writer taking over deletes another's claim); a holder that lost
it stops renewing and is marked ``lost``.
Each holder gets an epoch, one more than the last committed one, which its commits record in the state
row; a commit re-reads the claims and the state in the same read as its term statistics and refuses (the
change is abandoned, nothing is written) when its claim is gone or another writer committed since it
took the lease. A writer paused past its term (a stopped process, a long GC pause) is thus refused when it
resumes. Its rows staged before the pause never show: the writer that took over marks the generation they
carry void and moves to a fresh range of document keys when it recovers the index (``backend``), so none
collide.

Held leases are recorded per process (``held_lease``), so the backend of the same index finds the epoch
and the state read with the claims without reading them again.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from search.backends.milvus.control import Control
from search.backends.milvus.schema import WRITER_LEVEL
from search.errors import IndexLocked

DEFAULT_LEASE_S = 30.0
# Watching a claim that looks expired: how often it is read again, as a share of its term.
_WATCH_STEPS = 6
_held: dict[tuple[int, str], Lease] = {}
_held_lock = threading.Lock()


def holder_name() -> str:
    """host:pid:random, unique to one writer."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Claim:
    holder: str
    seconds: float
    beat: int
    expires: float

    @classmethod
    def of(cls, value: dict[str, Any]) -> Claim:
        return cls(value["holder"], float(value["seconds"]), int(value["beat"]), float(value["expires"]))


@dataclass
class Lease:
    """The claim of one would-be writer of ``index``, with what it read when it took the index."""

    control: Control
    index: str
    seconds: float = DEFAULT_LEASE_S
    holder: str = field(default_factory=holder_name)
    clock: Callable[[], float] = time.time
    epoch: int = 0
    state: dict[str, Any] | None = None
    """The live state row as read with the claims (None: the index has no live set yet)."""
    took_over: tuple[str, ...] = ()
    """Holders whose claims this writer deleted as dead: their staged rows must never show."""
    lost: str | None = None
    """Why the lease was lost, once a renewal found another claim."""
    dirty: bool = False
    """Rows this writer staged may be left behind (their deletion failed): the claim is kept at exit, so the
    next writer takes over and deletes them."""
    _beat: int = 0

    @property
    def scope(self) -> str:
        return f"lease/{self.index}"

    @property
    def key(self) -> str:
        return f"{self.scope}/{self.holder}"

    @property
    def live_key(self) -> str:
        return f"live/{self.index}"

    def acquire(self) -> None:
        """Take the index or raise ``IndexLocked`` naming the holder."""
        self._write_claim()
        rows = self.read()
        others = self.others(rows)
        if others:
            try:
                self._take_over(others)
            except IndexLocked:
                self.control.delete(self.key)
                raise
            rows = self.read()
            if self.others(rows):
                self.control.delete(self.key)
                raise IndexLocked(f"index {self.index} is being taken by another writer at the same time; run again")
        state = rows.get(self.live_key)
        self.state = state
        self.epoch = int((state or {}).get("epoch", 0)) + 1

    def read(self) -> dict[str, Any]:
        """Every claim of the index and its live state row, in one Strong read."""
        return self.control.rows([self.live_key], scope=self.scope, level=WRITER_LEVEL)

    def others(self, rows: dict[str, Any]) -> dict[str, Claim]:
        return {key: Claim.of(value) for key, value in rows.items() if key.startswith(self.scope + "/") and key != self.key}

    def check(self, rows: dict[str, Any]) -> None:
        """Refuse unless this claim is still there (``rows`` as ``read`` returns them): only a writer that took the
        index over deletes another's claim. Claims of newcomers do not count: they withdraw when they see this one."""
        if self.lost is None and self.key in rows:
            return
        by = ", ".join(claim.holder for claim in self.others(rows).values()) or (rows.get(self.live_key) or {}).get("writer")
        self.lost = (
            self.lost or f"index {self.index} was taken over by {by or 'another writer'} while {self.holder} (epoch {self.epoch}) held it"
        )
        raise IndexLocked(f"{self.lost}; this change was not committed, run it again")

    def renew(self) -> None:
        """Renew after checking ownership; a lost lease is marked and left to the holder's commit to report."""
        try:
            self.check(self.read())
        except IndexLocked:
            return
        self._write_claim()

    def release(self) -> None:
        """Delete this claim (only ever this writer's own row)."""
        self.control.delete(self.key)

    def _write_claim(self) -> None:
        self._beat += 1
        claim = {"holder": self.holder, "seconds": self.seconds, "beat": self._beat, "expires": self.clock() + self.seconds}
        self.control.put(self.key, claim, self.scope)

    def _take_over(self, others: dict[str, Claim]) -> None:
        """Delete the claims of holders that are gone, or raise ``IndexLocked`` for a live one."""
        now = self.clock()
        for claim in others.values():
            if claim.expires > now:
                expires = datetime.fromtimestamp(claim.expires, UTC).isoformat(timespec="seconds")
                raise IndexLocked(f"index {self.index} is being written by {claim.holder} (lease expires {expires})")
        watch_s = max(claim.seconds for claim in others.values())
        deadline = time.monotonic() + watch_s
        while time.monotonic() < deadline:
            time.sleep(watch_s / _WATCH_STEPS)
            self._write_claim()
            seen = self.others(self.read())
            for key, claim in others.items():
                if key in seen and seen[key].beat != claim.beat:
                    raise IndexLocked(
                        f"index {self.index} is being written by {claim.holder}: its lease looked expired by this "
                        f"machine's clock, but it renewed it while we watched, so the two machines' clocks differ"
                    )
            newcomers = set(seen) - set(others)
            if newcomers:
                raise IndexLocked(f"index {self.index} is being taken by {seen[min(newcomers)].holder} at the same time; run again")
        for key in others:
            self.control.delete(key)
        self.took_over = tuple(claim.holder for claim in others.values())


def held_lease(client: object, index: str) -> Lease | None:
    """The lease this process holds on ``index`` through ``client``'s server, if any."""
    with _held_lock:
        return _held.get((id(client), index))


@contextmanager
def held(lease: Lease) -> Iterator[None]:
    """Hold ``lease`` for the block, renewed in the background."""
    lease.acquire()
    place = (id(lease.control.client), lease.index)
    with _held_lock:
        _held[place] = lease
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
        with _held_lock:
            if _held.get(place) is lease:
                del _held[place]
        if not lease.dirty:
            lease.release()
