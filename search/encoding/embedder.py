"""The ``Embedder`` seam: what builds, updates, searches and the benchmark's stand-in need of an encoder.

``search.encoding.embedding.ModelEmbedder`` runs the real model; ``benchmarks.vectors.MixtureEmbedder`` and
``benchmarks.scale.HashedBagOfWords`` stand in for it where embedding must be excluded from a
measurement. mypy checks all three against this protocol.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

# Texts per forward pass in bulk work, shortest first. On two cores a pass of 8 embedded Cranfield passages
# 16 % faster than one of 32 (36.8 against 31.7 texts/s; less padding, activations that stay in cache) and
# sentences as fast (235 against 233/s); 4 was no better. A GPU would want far larger passes.
BULK_BATCH = 8


class Embedder(Protocol):
    """Unit-length vectors for texts and queries, and the token counts that chunking budgets by."""

    name: str
    dimension: int
    max_tokens: int
    quantize: str | None
    encoder: str

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def encode(self, texts: list[str], progress: bool = False, batch_size: int = BULK_BATCH) -> np.ndarray: ...

    def encode_query(self, text: str, alone: bool = False) -> np.ndarray: ...
