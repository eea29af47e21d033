"""Speed and memory of a real server on loopback: start-up, sequential latency, and a bounded soak.

Measured, never asserted in tests: the machines are noisy.
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from search.index import Index
from web.launcher import ServerProcess, launch

_WINDOWS = (6, 8, 11)


@dataclass(frozen=True)
class LatencySummary:
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    seconds: float


@dataclass(frozen=True)
class BenchReport:
    startup_seconds: float
    sequential: LatencySummary
    soak: LatencySummary | None
    soak_clients: int
    rss_launch_mb: float
    rss_warm_mb: float
    rss_end_mb: float

    @property
    def growth_after_warmup(self) -> float:
        """Relative memory growth from after the sequential run (model buffers allocated) to the end."""
        return (self.rss_end_mb - self.rss_warm_mb) / self.rss_warm_mb if self.rss_warm_mb else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "growth_after_warmup": round(self.growth_after_warmup, 4)}


def distinct_questions(index_dir: Path) -> Iterator[str]:
    """An endless supply of distinct queries cut from the indexed text (word windows of several lengths)."""
    index = Index.open(index_dir)
    texts = index.store.query("SELECT text FROM documents ORDER BY key LIMIT 200")
    index.close()
    words = [word for (text,) in texts for word in text.split()]
    seen: set[str] = set()
    for size, step in itertools.product(_WINDOWS, (5, 3, 2, 1)):
        for start in range(0, max(1, len(words) - size), step):
            query = " ".join(words[start:start + size])
            if query not in seen:
                seen.add(query)
                yield query
    for number in itertools.count():
        yield f"question number {number} about {words[number % len(words)]}"


def run_bench(docs: Path, index_dir: Path, queries: int, clients: int, soak_seconds: float) -> BenchReport:
    """Start ``semsearch serve``, time it to the first healthy answer, then measure searches."""
    supply = distinct_questions(index_dir)
    server = launch(docs, index_dir)
    startup = time.perf_counter() - server.started_at
    try:
        rss_launch = server.resident_bytes()
        sequential = _sequential(server, [next(supply) for _ in range(queries)])
        rss_warm = server.resident_bytes()
        soak = _soak(server, supply, clients, soak_seconds) if soak_seconds > 0 and clients > 0 else None
        rss_end = server.resident_bytes()
    finally:
        server.stop()
    megabytes = [value / 2**20 for value in (rss_launch, rss_warm, rss_end)]
    return BenchReport(startup, sequential, soak, clients if soak else 0, *megabytes)


def _sequential(server: ServerProcess, questions: list[str]) -> LatencySummary:
    latencies, errors = [], 0
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for question in questions:
            elapsed, ok = _timed_search(client, question)
            latencies.append(elapsed)
            errors += not ok
    return _summarize(latencies, errors, time.perf_counter() - started)


def _soak(server: ServerProcess, supply: Iterator[str], clients: int, seconds: float) -> LatencySummary:
    """``clients`` threads searching distinct questions until ``seconds`` have passed; stops by itself."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    def next_question() -> str:
        with lock:
            return next(supply)

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while time.monotonic() < deadline:
                elapsed, ok = _timed_search(client, next_question())
                with lock:
                    latencies.append(elapsed)
                    errors[0] += not ok

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return _summarize(latencies, errors[0], time.perf_counter() - started)


def _timed_search(client: httpx.Client, question: str) -> tuple[float, bool]:
    started = time.perf_counter()
    try:
        response = client.get("/search", params={"q": question, "k": 10})
        ok = response.status_code == 200
    except httpx.HTTPError:
        ok = False
    return (time.perf_counter() - started) * 1000, ok


def _summarize(latencies: list[float], errors: int, seconds: float) -> LatencySummary:
    if len(latencies) < 2:
        value = latencies[0] if latencies else 0.0
        return LatencySummary(len(latencies), errors, value, value, value, seconds)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return LatencySummary(len(latencies), errors, round(cuts[49], 2), round(cuts[94], 2), round(cuts[98], 2), round(seconds, 2))
