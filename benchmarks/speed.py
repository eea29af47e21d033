"""Speed and memory of a real server on loopback: start-up, sequential latency, throughput at several client
counts, a fresh build, searches during a ``POST /index`` job, and a bounded soak.

Measured, never asserted in tests: the machines are noisy.
"""

from __future__ import annotations

import itertools
import random
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import httpx

from benchmarks.server_process import ServerProcess, launch
from indexer.build import build_index
from indexer.chunking import ChunkingParams
from search.backends.contract import IndexLocation
from search.backends.registry import open_backend
from search.encoding.embedding import ModelEmbedder
from search.settings import Settings

_WINDOWS = (6, 8, 11)
THROUGHPUT_CLIENTS = (1, 8, 16)
DURING_INDEX_CLIENTS = 2
# A POST /index job gets this long plus a second per new document before the bench gives up on it.
JOB_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class LatencySummary:
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    seconds: float


@dataclass(frozen=True)
class Throughput:
    """``clients`` threads searching back to back for a bounded time."""

    clients: int
    searches_per_second: float
    latency: LatencySummary


@dataclass(frozen=True)
class BuildTiming:
    """A fresh ``build_index`` of the documents folder into an empty index folder."""

    encoder: str
    model_load_seconds: float
    build_seconds: float
    documents: int
    passages: int
    passages_per_second: float


@dataclass(frozen=True)
class DuringIndex:
    """Searches while a ``POST /index`` job embeds ``documents`` new documents."""

    encoder: str | None
    documents: int
    job_state: str
    job_seconds: float
    embedded_passages: int
    clients: int
    latency: LatencySummary


@dataclass(frozen=True)
class BenchReport:
    startup_seconds: float
    sequential: LatencySummary
    soak: LatencySummary | None
    soak_clients: int
    rss_launch_mb: float
    rss_warm_mb: float
    rss_end_mb: float
    encoder: str | None
    throughput: list[Throughput]
    build: BuildTiming
    during_index: DuringIndex | None

    @property
    def growth_after_warmup(self) -> float:
        """Relative memory growth from after the sequential run (model buffers allocated) to the end."""
        return (self.rss_end_mb - self.rss_warm_mb) / self.rss_warm_mb if self.rss_warm_mb else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "growth_after_warmup": round(self.growth_after_warmup, 4)}


def distinct_questions(index: IndexLocation) -> Iterator[str]:
    """An endless supply of distinct queries cut from the indexed text (word windows of several lengths)."""
    backend = open_backend(index)
    texts = [record.text for summary in backend.documents()[:200] if (record := backend.document(summary.doc_id))]
    backend.close()
    words = [word for text in texts for word in text.split()]
    seen: set[str] = set()
    for size, step in itertools.product(_WINDOWS, (5, 3, 2, 1)):
        for start in range(0, max(1, len(words) - size), step):
            query = " ".join(words[start : start + size])
            if query not in seen:
                seen.add(query)
                yield query
    for number in itertools.count():
        yield f"question number {number} about {words[number % len(words)]}"


def run_bench(
    settings: Settings,
    queries: int,
    clients: int,
    soak_seconds: float,
    clients_seconds: float = 10.0,
    during_index: int = 0,
) -> BenchReport:
    """Time a fresh build of a copy of the documents, then start ``semsearch serve`` on ``settings.index`` and
    measure searches; with ``during_index``, a second server on that copy is searched while it re-indexes."""
    with tempfile.TemporaryDirectory(prefix="semsearch-bench-") as scratch:
        copy = Path(scratch) / "docs"
        shutil.copytree(settings.docs, copy)
        timing = time_fresh_build(settings, copy, Path(scratch) / "index")
        report = _serve_and_measure(settings, queries, clients, soak_seconds, clients_seconds, timing)
        if during_index:
            report = replace(report, during_index=search_during_index(copy, Path(scratch) / "index", during_index))
    return report


def time_fresh_build(settings: Settings, docs: Path, index_dir: Path) -> BuildTiming:
    """Load the model afresh (not the process's cached one), then build ``docs`` into the empty ``index_dir``."""
    started = time.perf_counter()
    embedder = ModelEmbedder(settings.model, settings.quantize)
    loaded = time.perf_counter()
    report = build_index(
        docs,
        index_dir,
        settings.model,
        ChunkingParams(settings.chunk_tokens, settings.overlap_sentences),
        max_file_bytes=settings.max_file_bytes,
        embedder=embedder,
        quantize=settings.quantize,
    )
    seconds = time.perf_counter() - loaded
    return BuildTiming(
        embedder.encoder,
        round(loaded - started, 2),
        round(seconds, 2),
        len(report.added),
        report.total_passages,
        round(report.total_passages / seconds, 1) if seconds else 0.0,
    )


def search_during_index(docs: Path, index_dir: Path, documents: int) -> DuringIndex:
    """Add ``documents`` generated documents to ``docs`` (the bench's own copy), serve it with an admin token,
    and search with a few clients from ``POST /index`` until the job ends (bounded)."""
    write_generated_documents(docs, documents)
    token = secrets.token_urlsafe(24)
    server = launch(docs, index_dir, env={"SEMSEARCH_ADMIN_TOKEN": token})
    try:
        encoder = _encoder(server)
        supply = distinct_questions(IndexLocation(index_dir))
        status: dict = {"state": "running"}
        job_started = time.perf_counter()
        deadline = time.monotonic() + JOB_TIMEOUT_SECONDS + documents

        def job_running() -> bool:
            nonlocal status
            if time.monotonic() > deadline:
                status = {"state": "timed out"}
                return False
            try:
                status = httpx.get(f"{server.url}/index/status", timeout=10).json()
            except httpx.HTTPError:
                return True  # a busy server; the deadline still bounds the wait
            return status["state"] == "running"

        started = httpx.post(f"{server.url}/index", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        started.raise_for_status()
        latency = _concurrent(server, supply, DURING_INDEX_CLIENTS, _polled(job_running, every=0.25))
        job_seconds = time.perf_counter() - job_started
    finally:
        server.stop()
    embedded = (status.get("report") or {}).get("embedded_passages", 0)
    return DuringIndex(encoder, documents, status["state"], round(job_seconds, 2), embedded, DURING_INDEX_CLIENTS, latency)


def write_generated_documents(folder: Path, count: int) -> None:
    """``count`` one-paragraph documents of distinct generated sentences, in a subfolder of ``folder``."""
    words = (
        "index",
        "passage",
        "river",
        "model",
        "budget",
        "harbour",
        "query",
        "engine",
        "winter",
        "garden",
        "contract",
        "signal",
        "library",
        "bridge",
        "sensor",
        "market",
        "theory",
        "voyage",
        "ledger",
        "cluster",
    )
    rng = random.Random(20240601)
    target = folder / "bench-generated"
    target.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        sentences = (
            f"Note {number} {sentence} describes the {' '.join(rng.choices(words, k=rng.randint(6, 12)))}."
            for sentence in range(rng.randint(5, 8))
        )
        (target / f"generated-{number:05d}.txt").write_text(" ".join(sentences) + "\n", encoding="utf-8")


def _serve_and_measure(
    settings: Settings, queries: int, clients: int, soak_seconds: float, clients_seconds: float, build: BuildTiming
) -> BenchReport:
    supply = distinct_questions(settings.location())
    server = launch(settings.docs, Path(settings.index))
    startup = time.perf_counter() - server.started_at
    try:
        encoder = _encoder(server)
        rss_launch = server.resident_bytes()
        sequential = _sequential(server, [next(supply) for _ in range(queries)])
        rss_warm = server.resident_bytes()
        throughput = [_throughput(server, supply, count, clients_seconds) for count in THROUGHPUT_CLIENTS] if clients_seconds > 0 else []
        soak = _concurrent(server, supply, clients, _for_seconds(soak_seconds)) if soak_seconds > 0 and clients > 0 else None
        rss_end = server.resident_bytes()
    finally:
        server.stop()
    return BenchReport(
        startup_seconds=startup,
        sequential=sequential,
        soak=soak,
        soak_clients=clients if soak else 0,
        rss_launch_mb=rss_launch / 2**20,
        rss_warm_mb=rss_warm / 2**20,
        rss_end_mb=rss_end / 2**20,
        encoder=encoder,
        throughput=throughput,
        build=build,
        during_index=None,
    )


def _encoder(server: ServerProcess) -> str | None:
    return httpx.get(f"{server.url}/health", timeout=10).json().get("encoder")


def _sequential(server: ServerProcess, questions: list[str]) -> LatencySummary:
    latencies, errors = [], 0
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for question in questions:
            elapsed, ok = _timed_search(client, question)
            latencies.append(elapsed)
            errors += not ok
    return _summarize(latencies, errors, time.perf_counter() - started)


def _throughput(server: ServerProcess, supply: Iterator[str], clients: int, seconds: float) -> Throughput:
    latency = _concurrent(server, supply, clients, _for_seconds(seconds))
    rate = (latency.requests - latency.errors) / latency.seconds if latency.seconds else 0.0
    return Throughput(clients, round(rate, 1), latency)


def _for_seconds(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() < deadline


def _polled(check: Callable[[], bool], every: float) -> Callable[[], bool]:
    """``check`` asked at most every ``every`` seconds, however many clients ask; the last answer in between."""
    lock = threading.Lock()
    asked_at, answer = 0.0, True

    def keep_going() -> bool:
        nonlocal asked_at, answer
        with lock:
            if time.monotonic() - asked_at >= every:
                asked_at, answer = time.monotonic(), check()
            return answer

    return keep_going


def _concurrent(server: ServerProcess, supply: Iterator[str], clients: int, keep_going: Callable[[], bool]) -> LatencySummary:
    """``clients`` threads searching distinct questions while ``keep_going()`` holds (the caller bounds it)."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    stop = threading.Event()

    def next_question() -> str:
        with lock:
            return next(supply)

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                if not keep_going():
                    stop.set()
                    return
                elapsed, ok = _timed_search(client, next_question())
                with lock:
                    latencies.append(elapsed)
                    errors[0] += not ok

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
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
