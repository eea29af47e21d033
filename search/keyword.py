"""BM25 over passage texts: the exact-term half of hybrid ranking.

Rare names, numbers and jargon are where embeddings are weakest and term matching is strongest.
The analyzer (pattern, stop words, stemmer) is saved with the index, so a query is always
analyzed exactly as the passages were, even if a library default changes later.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

from search.errors import IndexFormatError
from search.fusion import top_ranking

KEYWORD_FORMAT = 1
_MANIFEST = "keyword.json"


@dataclass(frozen=True)
class Analyzer:
    """Lower-cased words of two or more characters, minus stop words, Snowball-stemmed."""

    pattern: str = r"(?u)\b\w\w+\b"
    stopwords: tuple[str, ...] = tuple(STOPWORDS_EN)
    stemmer: str = "english"

    def __post_init__(self) -> None:
        if self.stemmer not in Stemmer.algorithms():
            raise ValueError(f"unknown stemmer {self.stemmer!r}; choose one of {sorted(Stemmer.algorithms())}")
        object.__setattr__(self, "_words", re.compile(self.pattern).findall)
        object.__setattr__(self, "_stop", frozenset(self.stopwords))
        object.__setattr__(self, "_stem", Stemmer.Stemmer(self.stemmer).stemWords)
        # A PyStemmer object must not be used by two threads at once (the web server searches in threads).
        object.__setattr__(self, "_stem_lock", threading.Lock())

    def terms(self, text: str) -> list[str]:
        words = [w for w in self._words(text.lower()) if w not in self._stop]
        with self._stem_lock:
            return self._stem(words)


class KeywordIndex:
    """BM25 (bm25s, Lucene variant) where row i is passage i, as in the vector index."""

    def __init__(self, retriever: bm25s.BM25 | None, passages: int, analyzer: Analyzer) -> None:
        self._retriever = retriever
        self._passages = passages
        self.analyzer = analyzer

    @classmethod
    def build(cls, texts: list[str], analyzer: Analyzer | None = None) -> "KeywordIndex":
        analyzer = analyzer or Analyzer()
        tokens = [analyzer.terms(text) for text in texts]
        if not any(tokens):
            # bm25s cannot index a corpus without a single term; nothing could match anyway.
            return cls(None, len(texts), analyzer)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(retriever, len(texts), analyzer)

    def __len__(self) -> int:
        return self._passages

    def save(self, folder: Path) -> None:
        """Plain files only: bm25s's ``.npy`` arrays and JSON vocabulary, plus our manifest."""
        folder.mkdir(parents=True, exist_ok=True)
        if self._retriever is not None:
            self._retriever.save(str(folder), allow_pickle=False, show_progress=False)
        manifest = {
            "format": KEYWORD_FORMAT,
            "passages": self._passages,
            "has_terms": self._retriever is not None,
            "analyzer": asdict(self.analyzer),
        }
        (folder / _MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> "KeywordIndex":
        try:
            manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
            if manifest["format"] != KEYWORD_FORMAT:
                raise IndexFormatError(
                    f"keyword index at {folder} has format {manifest['format']}, this version reads "
                    f"{KEYWORD_FORMAT}; rebuild the index"
                )
            settings = manifest["analyzer"]
            analyzer = Analyzer(settings["pattern"], tuple(settings["stopwords"]), settings["stemmer"])
            passages = int(manifest["passages"])
            has_terms = bool(manifest["has_terms"])
            retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False) if has_terms else None
        except IndexFormatError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexFormatError(f"cannot read keyword index at {folder}: {exc}; rebuild the index") from None
        return cls(retriever, passages, analyzer)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and BM25 scores of up to ``k`` passages sharing a term with ``query``, best first.

        ``allowed`` restricts the ranking to those rows before the cut, as filters require.
        """
        return top_ranking(self.scores(query), k, allowed, positive_only=True)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for ``query``; zeros when it shares no term with the index."""
        return self.weighted_scores({term: 1.0 for term in self.analyzer.terms(query)})

    def weighted_scores(self, term_weights: dict[str, float]) -> np.ndarray:
        """Sum over terms of weight times the term's BM25 score: how an expanded query is scored."""
        total = np.zeros(self._passages, dtype=np.float32)
        if self._retriever is None:
            return total
        for term, weight in term_weights.items():
            ids = self._retriever.get_tokens_ids([term])
            if ids:
                total += weight * np.asarray(self._retriever.get_scores_from_ids(ids), dtype=np.float32)
        return total
