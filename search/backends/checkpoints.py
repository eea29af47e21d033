"""Named stages of a write, reported to whoever follows progress and usable as pause points.

Crash trials must hit the moment they name on any machine, however loaded: a test sets
``SEMSEARCH_PAUSE_AT`` to a stage name and ``SEMSEARCH_PAUSE_MARKER`` to a file path; the writer
creates the file when it reaches that stage and waits there to be killed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

PAUSE_AT_ENV = "SEMSEARCH_PAUSE_AT"
PAUSE_MARKER_ENV = "SEMSEARCH_PAUSE_MARKER"

READING = "reading documents"
EMBEDDING = "embedding"
SEGMENT_WRITTEN = "segment written"
STORE_COMMITTED = "store committed"
KEYWORD_COMMITTED = "keyword committed"
FOLDER_WRITTEN = "new index folder written"
COMPACTION_WRITTEN = "compacted segment written"
COMPACTION_COMMITTED = "compaction committed"
# A service backend (milvus) deletes the rows a commit replaced after the commit point.
OLD_ROWS_DELETED = "old rows deleted"
PAUSABLE = (
    READING,
    EMBEDDING,
    SEGMENT_WRITTEN,
    STORE_COMMITTED,
    KEYWORD_COMMITTED,
    FOLDER_WRITTEN,
    COMPACTION_WRITTEN,
    COMPACTION_COMMITTED,
    OLD_ROWS_DELETED,
)

StageReporter = Callable[[str], None]


def quiet(_stage: str) -> None:
    """Stage reporter for callers that do not follow progress."""


def reach(stage: str, report: StageReporter = quiet) -> None:
    """Report ``stage``; pause here for good if a crash trial asked for it."""
    report(stage)
    if os.environ.get(PAUSE_AT_ENV) != stage:
        return
    marker = os.environ.get(PAUSE_MARKER_ENV)
    if marker:
        Path(marker).write_text(stage, encoding="utf-8")
    while True:
        time.sleep(3600)
