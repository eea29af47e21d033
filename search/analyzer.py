"""The keyword analyzer, saved with an index so queries are analyzed exactly as passages were.

Lower-cased words, minus English stop words, Snowball-stemmed: the BM25 recipe measured on Cranfield
(bm25s's defaults). The stop-word list is ours, a copy of the list bm25s uses, so nothing is imported only
to borrow a constant.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass

import Stemmer

# Lucene's English stop set (``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET``), the list bm25s uses too.
ENGLISH_STOPWORDS = (
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
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
        object.__setattr__(self, "_words", re.compile(self.pattern).findall)
        object.__setattr__(self, "_stop", frozenset(self.stopwords))
        # PyStemmer's word cache thrashes on large vocabularies (6 us a word against 2 us without it).
        object.__setattr__(self, "_stem", Stemmer.Stemmer(self.stemmer, 0).stemWords)
        # A PyStemmer object must not be used by two threads at once (the web server searches in threads).
        object.__setattr__(self, "_stem_lock", threading.Lock())

    def terms(self, text: str) -> list[str]:
        words = [w for w in self._words(text.lower()) if w not in self._stop]
        with self._stem_lock:
            return self._stem(words)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: dict) -> "Analyzer":
        return cls(settings["pattern"], tuple(settings["stopwords"]), settings["stemmer"])


def with_context(section: str | None, text: str) -> str:
    """The heading path is context for ranking; the stored passage text and offsets stay exact."""
    return f"{section}\n{text}" if section else text
