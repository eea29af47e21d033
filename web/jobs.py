"""Background re-indexing for ``POST /index``: one job at a time, swapped in when done."""

from __future__ import annotations

import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from indexer.build import build_index
from indexer.chunking import ChunkingParams
from search.errors import SemsearchError
from search.searcher import Searcher
from search.settings import Settings
from web.engine import Engine


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
    """Runs at most one rebuild in a thread and records its progress for ``GET /index/status``."""

    settings: Settings
    engine: Engine
    status: JobStatus = field(default_factory=JobStatus)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> JobStatus:
        with self._lock:
            if self.status.state == "running":
                raise JobAlreadyRunning(f"index job {self.status.job_id} is still running")
            self.status = JobStatus(job_id=uuid.uuid4().hex[:12], state="running", stage="starting", started_at=_now())
            started = JobStatus(**asdict(self.status))
        threading.Thread(target=self._run, name="semsearch-index-job", daemon=True).start()
        return started

    def _run(self) -> None:
        try:
            report = build_index(
                self.settings.docs,
                self.settings.index,
                self.settings.model,
                ChunkingParams(self.settings.chunk_tokens, self.settings.overlap_sentences),
                max_file_bytes=self.settings.max_file_bytes,
                report_stage=self._set_stage,
            )
            if report.written or self.engine.searcher is None:
                self._set_stage("loading new index")
                self.engine.swap(Searcher.open(self.settings.index))
            self._finish("succeeded", report=asdict(report))
        except SemsearchError as exc:
            self._finish("failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a background job reports every failure instead of dying silently
            self._finish("failed", error=f"unexpected error: {type(exc).__name__}: {exc}")

    def _set_stage(self, stage: str) -> None:
        with self._lock:
            self.status.stage = stage

    def _finish(self, state: str, report: dict | None = None, error: str | None = None) -> None:
        with self._lock:
            self.status.state, self.status.stage = state, None
            self.status.finished_at, self.status.report, self.status.error = _now(), report, error

    def snapshot(self) -> JobStatus:
        with self._lock:
            return JobStatus(**asdict(self.status))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
