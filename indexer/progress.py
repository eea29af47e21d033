"""How far a build has got: a bar on a terminal, and a line about every 30 s where nobody watches one.

A build writing to a container log, CI or a pipe once printed nothing until the end, many minutes for a
large folder. Its lines say files done, passages embedded, tokens per second and the time left, estimated
from the bytes of the files done so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tqdm import tqdm

LINE_INTERVAL_S = 30.0


@dataclass(frozen=True)
class ProgressDisplay:
    """Where a build shows its progress: ``bar`` on a terminal; ``emit`` takes a line every ``interval`` seconds."""

    bar: bool = False
    emit: Callable[[str], None] | None = None
    interval: float = LINE_INTERVAL_S


QUIET = ProgressDisplay()


class BuildProgress:
    """Counts a build's embedding as it happens and shows it as ``display`` asks."""

    def __init__(self, files: int, file_bytes: int, display: ProgressDisplay = QUIET, clock: Callable[[], float] = time.monotonic) -> None:
        self.files_total, self.bytes_total = files, file_bytes
        self.files = self.bytes = self.passages = self.tokens = 0
        self._display = display
        self._clock = clock
        self._started = self._last_line = clock()
        self._bar = tqdm(total=files, desc="embedding", unit="file", disable=not display.bar)

    def embedded(self, texts: int, tokens: int) -> None:
        """After each forward pass (an ``EncodeProgress``): its texts are passages and sentences alike, so only
        its tokens count here."""
        self.tokens += tokens
        self._show()

    def files_done(self, count: int, size: int, passages: int) -> None:
        """After files are read and embedded: ``size`` their bytes, ``passages`` theirs."""
        self.files += count
        self.bytes += size
        self.passages += passages
        self._bar.update(count)
        self._show()

    def line(self) -> str:
        elapsed = max(self._clock() - self._started, 1e-9)
        left = elapsed * (self.bytes_total - self.bytes) / self.bytes if self.bytes else None
        return (
            f"embedding: {self.files:,} of {self.files_total:,} files, {self.passages:,} passages, "
            f"{self.tokens / elapsed:,.0f} tokens/s, "
            + (f"about {_duration(left)} left" if left is not None else "time left not known yet")
        )

    def close(self) -> None:
        self._bar.close()

    def _show(self) -> None:
        self._bar.set_postfix(passages=self.passages, refresh=False)
        now = self._clock()
        if self._display.emit is not None and now - self._last_line >= self._display.interval:
            self._last_line = now
            self._display.emit(self.line())


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``: as precise as an estimate deserves."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
