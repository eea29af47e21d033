"""The ``Embedder`` seam: what builds, updates, searches and the benchmark's stand-in need of an encoder.

``search.encoding.embedding.ModelEmbedder`` runs the real model; ``benchmarks.vectors.MixtureEmbedder`` and
``benchmarks.scale.HashedBagOfWords`` stand in for it where embedding must be excluded from a
measurement. mypy checks all three against this protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Called after each forward pass with the texts it embedded and the tokens it ran (padding excluded).
EncodeProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Embedded:
    """Unit vectors of texts, one row each, and the tokens the encoder ran for each (special tokens included)."""

    vectors: np.ndarray
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

    def encode_query(self, text: str, alone: bool = False) -> np.ndarray: ...


def counted(embedder: Embedder, texts: list[str]) -> Embedded:
    """``embed`` for an embedder without a tokenizer pipeline (the benchmarks' stand-ins): ``encode``, with
    ``count_tokens`` as the cost."""
    return Embedded(embedder.encode(texts), np.asarray(embedder.count_tokens(texts), dtype=np.int64))
