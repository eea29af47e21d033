"""The keyword analyzer, saved with an index so queries are analyzed exactly as passages were.

Lower-cased words, minus English stop words, Snowball-stemmed: the BM25 recipe measured on Cranfield
(bm25s's defaults). The stop-word list is ours, a copy of the list bm25s uses, so nothing is imported only
to borrow a constant.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property

import Stemmer

# Lucene's English stop set (``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET``), the list bm25s uses too.
ENGLISH_STOPWORDS = (
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "but",
    "by",
    "for",
    "if",
    "in",
    "into",
    "is",
    "it",
    "no",
    "not",
    "of",
    "on",
    "or",
    "such",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "was",
    "will",
    "with",
)


@dataclass(frozen=True)
class Analyzer:
    """Lower-cased words of two or more characters, minus stop words, Snowball-stemmed."""

    pattern: str = r"(?u)\b\w\w+\b"
    stopwords: tuple[str, ...] = ENGLISH_STOPWORDS
    stemmer: str = "english"

    def __post_init__(self) -> None:
        if self.stemmer not in Stemmer.algorithms():
            raise ValueError(f"unknown stemmer {self.stemmer!r}; choose one of {sorted(Stemmer.algorithms())}")

    def terms(self, text: str) -> list[str]:
        stop = self._stop
        words = [w for w in self._words(text.lower()) if w not in stop]
        stemmer, lock = self._stemmer
        with lock:
            return list(stemmer.stemWords(words))

    # Built once per analyzer, on first use; cached_property writes the instance's __dict__, which a frozen
    # dataclass allows, and they are not fields, so ``as_dict`` holds the settings alone.
    @cached_property
    def _words(self) -> Callable[[str], list[str]]:
        return re.compile(self.pattern).findall

    @cached_property
    def _stop(self) -> frozenset[str]:
        return frozenset(self.stopwords)

    @cached_property
    def _stemmer(self) -> tuple[Stemmer.Stemmer, threading.Lock]:
        # PyStemmer's word cache thrashes on large vocabularies (6 us a word against 2 us without it); a PyStemmer
        # object must not be used by two threads at once (the web server searches in threads).
        return Stemmer.Stemmer(self.stemmer, 0), threading.Lock()

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: dict) -> Analyzer:
        return cls(settings["pattern"], tuple(settings["stopwords"]), settings["stemmer"])


def with_context(section: str | None, text: str) -> str:
    """The heading path is context for ranking; the stored passage text and offsets stay exact."""
    return f"{section}\n{text}" if section else text
