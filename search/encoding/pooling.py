"""Sentence vectors from token vectors in numpy, made the way the model's own Pooling module makes them.

Pooling lives outside the model so that ONNX Runtime only has to run the transformer, and so that any
run of tokens (a whole text, or one sentence inside it) can be pooled from a single forward pass.
"""

from __future__ import annotations

import numpy as np

POOLING_MODES = ("mean", "cls", "max")


class UnsupportedModel(Exception):
    """The model is not a plain transformer + pooling (+ normalize) pipeline with a pooling mode we copy."""


def pooling_mode_of(model) -> str:
    """The pooling mode of a sentence-transformers model, if numpy pooling reproduces its output exactly.

    Anything after pooling other than normalisation (a Dense layer, say) would be skipped by numpy
    pooling, so such models are refused rather than silently embedded differently.
    """
    kinds = [type(module).__name__ for module in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise UnsupportedModel(f"modules {kinds} are not Transformer, Pooling[, Normalize]")
    mode = model[1].pooling_mode
    if mode not in POOLING_MODES:
        raise UnsupportedModel(f"pooling mode {mode!r} is not one of {POOLING_MODES}")
    return mode


def pool(tokens: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Unit vectors of shape (batch, hidden) from token vectors (batch, seq, hidden) and a 0/1 mask (batch, seq).

    For ``cls`` the first token inside the mask is taken, which is the CLS token of a whole text and the
    first token of a sentence span. A row whose mask is empty comes out as a zero vector.
    """
    weights = mask[..., None].astype(tokens.dtype)
    if mode == "mean":
        vectors = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    elif mode == "max":
        vectors = np.where(weights > 0, tokens, np.finfo(tokens.dtype).min).max(axis=1)
        vectors[weights.sum(axis=1)[:, 0] == 0] = 0
    elif mode == "cls":
        vectors = tokens[np.arange(len(tokens)), mask.argmax(axis=1)] * weights.max(axis=1)
    else:
        raise ValueError(f"pooling mode must be one of {POOLING_MODES}, not {mode!r}")
    return normalize(vectors)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Float32 rows of unit length, so that inner product is cosine similarity; zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)
