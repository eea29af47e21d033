"""Keeping an index in step with a folder: file events are hints, a periodic stat-first rescan is the truth.

Events can be missed (network folders, editors that save through renames, a full inotify table), so
they only make a sync come sooner; a rescan every few seconds still runs, and because ``build_index``
reads only files whose size or mtime changed, a rescan that finds nothing new costs a folder walk.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from indexer.build import BuildReport
from search.errors import IndexLocked, SemsearchError

logger = logging.getLogger("semsearch.watch")

Sync = Callable[[], BuildReport]


@dataclass(frozen=True)
class WatchTiming:
    """How long the folder must be quiet before a sync, and the longest gap between two syncs."""

    quiet_ms: int = 1000
    longest_batch_ms: int = 5000
    rescan_seconds: float = 5.0
    poll_delay_ms: int = 500


def watch_folder(
    docs_dir: Path,
    sync: Sync,
    stop: threading.Event,
    *,
    on_change: Callable[[BuildReport], None] | None = None,
    force_polling: bool = False,
    timing: WatchTiming = WatchTiming(),
) -> None:
    """Sync now, then after each quiet burst of events and at least every ``rescan_seconds``, until ``stop`` is set.

    ``sync`` brings the index up to date (incrementally); ``on_change`` hears about each sync that
    added, updated or removed a document. No failure of a sync ends the loop: it is retried next tick.
    """
    syncer = _Syncer(sync, on_change or (lambda report: logger.info("%s", sync_summary(report))))
    syncer.run()
    for _ in _ticks(docs_dir, stop, force_polling, timing):
        syncer.run()


def sync_summary(report: BuildReport) -> str:
    """One line for a sync that changed something: which documents, and what it cost."""
    changes = "; ".join(
        f"{label} {', '.join(ids)}"
        for label, ids in (("added", report.added), ("updated", report.updated), ("removed", report.removed))
        if ids
    )
    return f"{changes} ({report.embedded_passages} passages embedded, {report.total_passages} in total, {report.seconds:.1f} s)"


def _ticks(docs_dir: Path, stop: threading.Event, force_polling: bool, timing: WatchTiming) -> Iterator[None]:
    """One tick per quiet burst of events or rescan interval; degrades to polling, then to a plain timer."""
    for polling in [True] if force_polling else [None, True]:
        try:
            for _changes in watchfiles.watch(
                docs_dir,
                stop_event=stop,
                step=timing.quiet_ms,
                debounce=timing.longest_batch_ms,
                rust_timeout=int(timing.rescan_seconds * 1000),
                yield_on_timeout=True,
                force_polling=polling,
                poll_delay_ms=timing.poll_delay_ms,
            ):
                yield
            return
        except (OSError, RuntimeError) as exc:  # watchfiles' ways of saying it cannot watch this folder here
            fallback = "polling it instead" if polling is None else f"rescanning it every {timing.rescan_seconds:g} s"
            logger.warning("cannot watch %s (%s); %s", docs_dir, exc, fallback)
    while not stop.wait(timing.rescan_seconds):
        yield


class _Syncer:
    """Runs one sync and reports it, saying each distinct problem once rather than on every tick."""

    def __init__(self, sync: Sync, on_change: Callable[[BuildReport], None]) -> None:
        self._sync = sync
        self._on_change = on_change
        self._last_error: str | None = None
        self._warned: set[str] = set()

    def run(self) -> None:
        try:
            report = self._sync()
        except IndexLocked as exc:
            logger.info("index busy, syncing on the next tick: %s", exc)
            return
        except SemsearchError as exc:
            self._say_once(f"sync failed, retrying on the next tick: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a watcher that dies silently is worse than one that logs and retries
            self._say_once(f"sync failed unexpectedly, retrying on the next tick: {type(exc).__name__}: {exc}")
            return
        self._last_error = None
        problems = report.problems()
        for warning in problems:
            if warning not in self._warned:
                logger.warning("%s", warning)
        self._warned = set(problems)
        if report.added or report.updated or report.removed:
            self._on_change(report)

    def _say_once(self, message: str) -> None:
        if message != self._last_error:
            logger.warning("%s", message)
        self._last_error = message
