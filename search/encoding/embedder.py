"""The ``Embedder`` seam: what builds, updates, searches and the benchmark's stand-in need of an encoder.

``search.encoding.embedding.ModelEmbedder`` runs the real model; ``benchmarks.vectors.MixtureEmbedder`` and
``benchmarks.scale.HashedBagOfWords`` stand in for it where embedding must be excluded from a
measurement. mypy checks all three against this protocol.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

Spans = Sequence[tuple[int, int]]
# Called after each forward pass with the texts it embedded and the tokens it ran (padding excluded).
EncodeProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Embedded:
    """Unit vectors of texts, one row each, and the tokens the encoder ran for each (special tokens included)."""

    vectors: np.ndarray
    tokens: np.ndarray


@dataclass(frozen=True)
class PassageVectors:
    """Unit vectors of texts (one row each), of character spans inside them (all spans, text by text, in
    order), and the tokens the encoder ran for each text, its spans' own passes included."""

    texts: np.ndarray
    spans: np.ndarray
    tokens: np.ndarray


class Embedder(Protocol):
    """Unit-length vectors for texts and queries, and the token counts that chunking budgets by."""

    name: str
    dimension: int
    max_tokens: int
    quantize: str | None
    encoder: str

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def encode(self, texts: list[str]) -> np.ndarray: ...

    def embed(self, texts: list[str], progress: EncodeProgress | None = None) -> Embedded: ...

    def encode_passages(self, texts: list[str], spans: Sequence[Spans], progress: EncodeProgress | None = None) -> PassageVectors: ...

    def encode_query(self, text: str, alone: bool = False) -> np.ndarray: ...


def counted(embedder: Embedder, texts: list[str]) -> Embedded:
    """``embed`` for an embedder without a tokenizer pipeline (the benchmarks' stand-ins): ``encode``, with
    ``count_tokens`` as the cost."""
    return Embedded(embedder.encode(texts), np.asarray(embedder.count_tokens(texts), dtype=np.int64))


def spans_embedded_alone(embedder: Embedder, texts: list[str], spans: Sequence[Spans]) -> PassageVectors:
    """``encode_passages`` for an embedder without token states (the benchmarks' stand-ins): each span is
    embedded as a text of its own."""
    pieces = [text[start:end] for text, bounds in zip(texts, spans, strict=True) for start, end in bounds]
    embedded = embedder.embed([*texts, *pieces])
    tokens = embedded.tokens[: len(texts)].copy()
    firsts = np.cumsum([len(texts), *(len(bounds) for bounds in spans)])
    tokens += [int(embedded.tokens[a:b].sum()) for a, b in itertools.pairwise(firsts)]
    return PassageVectors(embedded.vectors[: len(texts)], embedded.vectors[len(texts) :], tokens)
