"""The server's Prometheus metrics, kept in one registry per app.

A registry per app, not prometheus-client's global one, because a process may hold several apps (the
tests create many) and each must count only its own requests. Figures about the index are not kept
here: a collector reads them from the open searcher when ``/metrics`` is scraped, so they are never stale.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily, Metric
from starlette.exceptions import HTTPException

from search.encoding.embedding import ModelEmbedder
from search.errors import IndexLocked, InvalidQuery, SemsearchError
from web.engine import Engine
from web.index_stats import index_stats

# Searches on the seeds take 5-30 ms; a large index or a busy server reaches the upper buckets.
SEARCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# A query pass embeds at most 64 texts (``QueryBatcher``'s max_batch).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class Metrics:
    """Counters the request path updates, and the index figures read at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.searches = Counter(
            "semsearch_searches",
            "Searches by mode and outcome (ok, rejected, busy, unavailable, error).",
            ["mode", "outcome"],
            registry=registry,
        )
        self.search_seconds = Histogram(
            "semsearch_search_seconds",
            "Time to rank and read one search's results.",
            ["mode"],
            buckets=SEARCH_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "semsearch_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "semsearch_http_request_seconds",
            "HTTP request duration by route template.",
            ["route"],
            buckets=SEARCH_BUCKETS,
            registry=registry,
        )
        self.index_jobs = Counter(
            "semsearch_index_jobs",
            "POST /index jobs by outcome (succeeded, failed).",
            ["outcome"],
            registry=registry,
        )
        self.uploads = Counter(
            "semsearch_uploads",
            "Document writes over HTTP by operation (put, delete) and outcome (as for searches).",
            ["operation", "outcome"],
            registry=registry,
        )
        self.watch_syncs = Counter(
            "semsearch_watch_syncs",
            "Watcher syncs by outcome (written, unchanged, busy, failed).",
            ["outcome"],
            registry=registry,
        )
        registry.register(_IndexCollector(engine))

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    @contextmanager
    def searching(self, mode: str) -> Iterator[None]:
        """Count and time one search; the outcome follows from what it raised, if anything."""
        started = time.perf_counter()
        try:
            with _counted(self.searches, mode=mode):
                yield
        finally:
            self.search_seconds.labels(mode=mode).observe(time.perf_counter() - started)

    def uploading(self, operation: str) -> AbstractContextManager[None]:
        """Count one document write over HTTP (``put`` or ``delete``) by its outcome."""
        return _counted(self.uploads, operation=operation)


@contextmanager
def _counted(counter: Counter, **labels: str) -> Iterator[None]:
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except BaseException as exc:
        outcome = _outcome_of(exc)
        raise
    finally:
        counter.labels(**labels, outcome=outcome).inc()


def _outcome_of(exc: BaseException) -> str:
    """A bounded label for a failure: the client's mistake, a busy writer, no usable index, or a fault."""
    if isinstance(exc, InvalidQuery) or (isinstance(exc, HTTPException) and exc.status_code < 500):
        return "rejected"
    if isinstance(exc, IndexLocked):
        return "busy"
    if isinstance(exc, SemsearchError):
        return "unavailable"
    return "error"


class _IndexCollector:
    """Gauges of the open index and the query encoder's batch sizes, read when scraped."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        searcher = self.engine.searcher
        yield GaugeMetricFamily(
            "semsearch_index_ready", "1 when an index is open and searches can be answered.", value=int(searcher is not None)
        )
        if searcher is None:
            return
        stats = index_stats(searcher)
        for name, help_text, value in (
            ("semsearch_documents", "Documents in the open index.", stats.documents),
            ("semsearch_passages", "Passages in the open index.", stats.passages),
            ("semsearch_segments", "Vector segments in the open index (compaction merges small ones).", stats.segments),
            ("semsearch_deleted_fraction", "Share of stored vectors that belong to deleted passages.", stats.deleted_fraction),
        ):
            if value is not None:
                yield GaugeMetricFamily(name, help_text, value=value)
        yield InfoMetricFamily(
            "semsearch_index",
            "The open index: version (folder/generation), model and encoder.",
            value={"version": stats.version, "model": stats.model, "encoder": stats.encoder},
        )
        # The server always embeds with the model; only it batches queries (the benchmarks' stand-ins do not).
        if isinstance(searcher.embedder, ModelEmbedder):
            yield _batch_histogram(dict(searcher.embedder.queries.pass_sizes))


def _batch_histogram(pass_sizes: dict[int, int]) -> HistogramMetricFamily:
    """Texts per shared query pass; a search with no other in flight embeds alone and is not counted."""
    buckets = [(str(bound), sum(n for size, n in pass_sizes.items() if size <= bound)) for bound in BATCH_BUCKETS]
    buckets.append(("+Inf", sum(pass_sizes.values())))
    total_texts = sum(size * n for size, n in pass_sizes.items())
    return HistogramMetricFamily(
        "semsearch_encoder_batch_size",
        "Texts per shared query-encoder pass (concurrent searches only).",
        buckets=buckets,
        sum_value=total_texts,
    )
