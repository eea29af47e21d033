"""Merging small segments and dropping tombstones, as one all-or-nothing step beside searches.

Searches keep the segments they opened until the compacted one is committed; the old files are
removed only after the commit, and a reader that still maps them keeps its mapping.
"""

from __future__ import annotations

from collections.abc import Callable

from search.backends.checkpoints import COMPACTION_COMMITTED, COMPACTION_WRITTEN, StageReporter, quiet, reach
from search.backends.contract import MaintenanceReport
from search.backends.local.faiss_segments import ANN_MIN_VECTORS
from search.backends.local.layout import SEGMENTS_DIR
from search.backends.local.parts import LocalParts
from search.backends.local.store import Segment

# Worth compacting: this many small (flat) segments, or a segment whose vectors are this share dead.
MAX_FLAT_SEGMENTS = 8
MAX_DEAD_SHARE = 0.2


def compact(
    index: LocalParts, refresh: Callable[[], object], force: bool = False, report: StageReporter = quiet, whole: bool = False
) -> MaintenanceReport:
    """Merge what is worth merging (everything mergeable when ``force``; every segment into one when ``whole``,
    for an index nobody searches yet), then ``refresh`` the backend's readers; the caller holds the writer lock."""
    segments = index.store.segments()
    dead_by_segment: dict[int, int] = {}
    for segment_id in index.store.tombstones().values():
        dead_by_segment[segment_id] = dead_by_segment.get(segment_id, 0) + 1
    chosen = segments if whole and len(segments) > 1 else _worth_merging(segments, dead_by_segment, force)
    if not chosen:
        return MaintenanceReport(0, 0, len(segments))
    ids, vectors = index.vectors.live_vectors([s.id for s in chosen])
    prepared = index.vectors.prepare(index.folder / SEGMENTS_DIR, ids, vectors) if len(ids) else None
    reach(COMPACTION_WRITTEN, report)
    replacement = (prepared.file, prepared.kind, prepared.size) if prepared is not None else None
    dropped = index.store.commit_compaction([s.id for s in chosen], replacement)
    reach(COMPACTION_COMMITTED, report)
    for segment in chosen:
        (index.folder / SEGMENTS_DIR / segment.file).unlink(missing_ok=True)
    refresh()
    return MaintenanceReport(len(chosen), dropped, len(index.store.segments()))


def _worth_merging(segments: list[Segment], dead: dict[int, int], force: bool) -> list[Segment]:
    """Small segments together once there are many (or enough to seal as ANN), and any segment mostly dead.

    Large sealed segments are rewritten only to drop their tombstones, never merged with each other:
    merging them would rewrite the collection to add a little.
    """
    flat = [s for s in segments if s.kind == "flat"]
    chosen = {s.id: s for s in segments if s.size and dead.get(s.id, 0) / s.size > (0 if force else MAX_DEAD_SHARE)}
    if len(flat) > (1 if force else MAX_FLAT_SEGMENTS) or (sum(s.size for s in flat) >= ANN_MIN_VECTORS and len(flat) > 1):
        chosen.update((s.id, s) for s in flat)
    if len(chosen) == 1 and not dead.get(next(iter(chosen))):
        return []
    return sorted(chosen.values(), key=lambda s: s.id)
