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

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from search.text.analyzer import Analyzer

MAX_TERM_BYTES = 300


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
