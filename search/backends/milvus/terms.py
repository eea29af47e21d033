"""Term statistics kept at ingest: how many committed passages hold each term, one control row per term.

Milvus keeps its BM25 statistics to itself, and counting a term's passages with a BM25 search costs a
search per term, capped at 16,384 hits. So each commit keeps the counts itself: it adds the terms of the
passages it writes and subtracts those of the passages it retires, and writes the changed rows in the same
upsert that flips the state row. A query's statistics are then one read by key, exact at any size.

A row ``df/<set>/<term>`` holds versions ``[generation, frequency, written_at]``, newest last. A reader
takes the newest version at or below its snapshot's generation, so a search that read the state before a
commit counts what it searches. Versions are pruned when the row is next written: the newest stays, older
ones only while younger than the grace for old rows (``backend``), as long as a search may still use them.

Terms are our analyzer's (``search.text.analyzer``), counted per passage of the text BM25 indexes (the
heading path, then the passage), as the local backend counts them. A term over ``MAX_TERM_BYTES`` is not
kept (its key would not fit) and counts as absent.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from search.backends.contract import Vocabulary
from search.backends.milvus.control import Control
from search.text.analyzer import Analyzer

MAX_TERM_BYTES = 300
# A vocabulary read for typo correction serves later generations this long before it is read again.
VOCABULARY_SECONDS = 60.0


def passage_terms(texts: Iterable[str], analyzer: Analyzer) -> Counter[str]:
    """How many of these passage texts hold each term."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update({term for term in analyzer.terms(text) if len(term.encode("utf-8")) <= MAX_TERM_BYTES})
    return counts


def scope(set_name: str) -> str:
    return f"df/{set_name}"


def term_key(set_name: str, term: str) -> str:
    return f"df/{set_name}/{term}"


def frequency_at(versions: list[list[Any]] | None, generation: int) -> int:
    """The frequency a reader of ``generation`` sees: the newest version at or below it (0 when none)."""
    seen = [version for version in versions or () if version[0] <= generation]
    return int(seen[-1][1]) if seen else 0


def updated_rows(
    set_name: str, current: Mapping[str, list[list[Any]]], deltas: Mapping[str, int], generation: int, now: float, grace_s: float
) -> list[tuple[str, str, list[list[Any]]]]:
    """The control rows of the terms ``deltas`` changes, with a version for ``generation`` appended."""
    rows = []
    for term, delta in deltas.items():
        if not delta:
            continue
        key = term_key(set_name, term)
        versions = [version for version in current.get(key, []) if version[0] < generation]
        frequency = (int(versions[-1][1]) if versions else 0) + delta
        if frequency < 0:
            raise ValueError(f"term statistics of {term!r} went below zero; rebuild the index with --full")
        kept = [version for version in versions[:-1] if version[2] > now - grace_s] + versions[-1:]
        rows.append((key, scope(set_name), [*kept, [generation, frequency, now]]))
    return rows


class Vocabularies:
    """The set's vocabulary (every term with its passage count) for typo correction, read whole from the term
    rows when a query first has a word the index does not know, then reused by later views: read again only when
    the generation moved and ``VOCABULARY_SECONDS`` have passed, so a stream of commits costs one read a minute.

    A correction is a suggestion; whether a query word is known is always decided by the exact counts of
    ``term_statistics``. The read is one page of 10,000 term rows per request: at a few million terms (an English
    collection of 100M passages) a few hundred requests and a few hundred MB, once a minute at most, off
    the searches whose words are all known.
    """

    def __init__(self, control: Control, set_name: str) -> None:
        self._control = control
        self._set_name = set_name
        self._lock = threading.Lock()
        self._held: tuple[int, float, Vocabulary] | None = None

    def at(self, generation: int) -> Vocabulary:
        with self._lock:
            held = self._held
            if held is not None and (held[0] == generation or time.monotonic() - held[1] < VOCABULARY_SECONDS):
                return held[2]
            prefix = len(term_key(self._set_name, ""))
            counts = {key[prefix:]: frequency_at(versions, generation) for key, versions in self._control.scan(scope(self._set_name))}
            vocabulary = Vocabulary({term: count for term, count in counts.items() if count > 0})
            self._held = (generation, time.monotonic(), vocabulary)
            return vocabulary
