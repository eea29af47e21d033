"""Applying changes (documents added, replaced or removed) to an open backend, each all or nothing.

The documents come chunked and embedded (``indexer.upserts``, in this process or on a Ray cluster) and go
through the backend's commit protocol: prepare (written, invisible), commit (one atomic step), recovery by
the next writer after a crash. A build too large to hold at once comes as several changes; each one
commits whole, and a crash between them leaves the files not yet committed with their old stats, so the
next run finds and redoes exactly those. Nothing here reads, rewrites or re-scores what did not change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from search.backends.checkpoints import EMBEDDING, StageReporter, quiet, reach
from search.backends.contract import Change
from search.backends.registry import AnyBackend


@dataclass
class ChangeResult:
    embedded_passages: int = 0
    removed_passages: int = 0
    stat_updates: int = 0
    generation: int = 0
    warnings: list[str] = field(default_factory=list)


def apply_changes(backend: AnyBackend, changes: Iterable[Change], report: StageReporter = quiet) -> ChangeResult:
    """Commit each change in turn (an empty one is skipped); the totals of what they did."""
    result = ChangeResult()
    reach(EMBEDDING, report)
    for change in changes:
        if not change:
            continue
        committed = backend.apply(change, report)
        result.embedded_passages += committed.added_passages
        result.removed_passages += committed.removed_passages
        result.stat_updates += len(change.sources)
        result.generation = committed.generation
    return result
