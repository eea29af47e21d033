"""Every index write the server makes, through one writer: ``POST /index`` jobs, watcher syncs, document uploads.

The index's file lock already refuses a second writer process; inside the server the three kinds of
write queue on one lock instead, so they never fight, and each ends with the live searcher seeing it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from indexer.build import BuildReport, build_from_settings
from indexer.watch import watch_folder
from search.backends.checkpoints import StageReporter, quiet
from search.errors import IndexLocked, SemsearchError
from search.ranking.searcher import Searcher
from search.settings import Settings
from web.engine import Engine
from web.metrics import Metrics

# A document upload waits this long for a running job or sync before answering 409.
UPLOAD_WAIT_SECONDS = 60.0
# An in-place commit is normally seen at the next refresh; this only bounds a pathological wait.
CATCH_UP_SECONDS = 10.0

T = TypeVar("T")


class JobAlreadyRunning(Exception):
    """A rebuild is under way; a second one would only wait for the index lock."""


@dataclass
class JobStatus:
    job_id: str | None = None
    state: str = "idle"
    stage: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    report: dict | None = None
    error: str | None = None


@dataclass
class IndexJobs:
    """The server's single writer; records the progress of ``POST /index`` jobs for ``GET /index/status``."""

    settings: Settings
    engine: Engine
    metrics: Metrics
    status: JobStatus = field(default_factory=JobStatus)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _writer: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> JobStatus:
        with self._lock:
            if self.status.state == "running":
                raise JobAlreadyRunning(f"index job {self.status.job_id} is still running")
            self.status = JobStatus(job_id=uuid.uuid4().hex[:12], state="running", stage="starting", started_at=_now())
            started = JobStatus(**asdict(self.status))
        threading.Thread(target=self._run, name="semsearch-index-job", daemon=True).start()
        return started

    def sync(self) -> BuildReport:
        """The watcher's incremental update; ``IndexLocked`` at once if another write is running (next tick)."""
        outcome = "failed"
        try:
            with self._writing(wait=0):
                report = self._update()
            outcome = "written" if report.written else "unchanged"
            return report
        except IndexLocked:
            outcome = "busy"
            raise
        finally:
            self.metrics.watch_syncs.labels(outcome=outcome).inc()

    def change_documents(self, change: Callable[[], T], doc_ids: list[str], wait: float = UPLOAD_WAIT_SECONDS) -> tuple[T, BuildReport]:
        """Apply ``change`` to the named documents in the folder and index just those; returns once the live
        searcher sees it."""
        with self._writing(wait):
            outcome = change()
            return outcome, self._update(only=doc_ids)

    def watch_in_background(self, stop: threading.Event) -> threading.Thread:
        """Keep the index in step with the documents folder until ``stop`` is set (``serve --watch``)."""
        thread = threading.Thread(target=watch_folder, args=(self.settings.docs, self.sync, stop), name="semsearch-watch", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        try:
            self._set_stage("waiting for another index update to finish")
            with self._writer:
                report = self._update(self._set_stage)
            self._finish("succeeded", report=asdict(report))
        except SemsearchError as exc:
            self._finish("failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a background job reports every failure instead of dying silently
            self._finish("failed", error=f"unexpected error: {type(exc).__name__}: {exc}")

    @contextmanager
    def _writing(self, wait: float) -> Iterator[None]:
        acquired = self._writer.acquire(timeout=wait) if wait > 0 else self._writer.acquire(blocking=False)
        if not acquired:
            raise IndexLocked("another index update is running in this server; try again when it has finished")
        try:
            yield
        finally:
            self._writer.release()

    def _update(self, report_stage: StageReporter = quiet, only: list[str] | None = None) -> BuildReport:
        """Incremental build, then make the live searcher see it; the caller holds the writer."""
        report = build_from_settings(self.settings, report_stage=report_stage, only=only)
        searcher = self.engine.searcher
        if searcher is None or report.full_rebuild_reason:
            report_stage("loading new index")
            self.engine.swap(Searcher.open(self.settings.location()))
        elif report.written:
            _catch_up(searcher)
        return report

    def _set_stage(self, stage: str) -> None:
        with self._lock:
            self.status.stage = stage

    def _finish(self, state: str, report: dict | None = None, error: str | None = None) -> None:
        self.metrics.index_jobs.labels(outcome=state).inc()
        with self._lock:
            self.status.state, self.status.stage = state, None
            self.status.finished_at, self.status.report, self.status.error = _now(), report, error

    def snapshot(self) -> JobStatus:
        with self._lock:
            return JobStatus(**asdict(self.status))


def _catch_up(searcher: Searcher) -> None:
    """Refresh until the searcher holds the generation just committed (a search may be refreshing meanwhile)."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while not searcher.backend.caught_up() and time.monotonic() < deadline:
        if not searcher.backend.refresh():
            time.sleep(0.01)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
