"""The ``Embedder`` seam: what builds, updates, searches and the benchmark's stand-in need of an encoder.

``search.embedding.ModelEmbedder`` runs the real model; ``evaluation.vectors.MixtureEmbedder`` and
``evaluation.scale.HashedBagOfWords`` stand in for it where embedding must be excluded from a
measurement. mypy checks all three against this protocol.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Embedder(Protocol):
    """Unit-length vectors for texts and queries, and the token counts that chunking budgets by."""

    name: str
    dimension: int
    max_tokens: int
    quantize: str | None
    encoder: str

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def encode(self, texts: list[str], progress: bool = False, batch_size: int = 32) -> np.ndarray: ...

    def encode_query(self, text: str, alone: bool = False) -> np.ndarray: ...
