"""Benchmark vectors with the neighbourhood structure of real sentence embeddings.

Hashed bag-of-words vectors are nearly orthogonal random points: IVF needed 29 % of its cells for
recall 0.95 on them, so the benchmark tuned the index to the wrong problem. Here every synthetic vector
is a noisy mixture of real embeddings: the packaged model embeds a basis of public sentences once
(Cranfield titles and abstracts, the seed documents; cached), and a vector is one basis row mixed with
one or two others plus gaussian noise, renormalised. The noise was tuned until IVF's recall-against-
nprobe curve on synthetic vectors matched the curve on the real embeddings at equal size
(``semsearch bench vectors``; the table is in the README).

A vector is a pure function of a 64-bit key and the basis, computed with array gathers (microseconds a
vector), so a text hashed to its key always gets the same vector, in any process.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from search.encoding.embedder import Embedded, EncodeProgress, counted
from search.settings import DEFAULT_MODEL, get_settings
from search.text.sentences import split_sentences

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
CRANFIELD = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "cranfield" / "corpus.jsonl"
KIND = "mixtures-of-real-embeddings"
# Two rows of this table make a vector's noise: 2**26 combinations in 12 MB.
_NOISE_ROWS = 1 << 13
# Tuned on the recall curve (module docstring): the weight of the primary basis row, drawn uniformly from
# this range, the rest shared by its partners, and the length of the added noise vector.
_PRIMARY_WEIGHT = (0.55, 0.95)
_NOISE = 0.2
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Basis:
    """Unit vectors of real sentences, and where the sentences came from."""

    vectors: np.ndarray
    sources: tuple[str, ...]

    def describe(self) -> dict:
        return {"kind": KIND, "basis_sentences": len(self.vectors), "basis_sources": list(self.sources), "model": DEFAULT_MODEL}


def basis_sentences(cranfield: Path | None = CRANFIELD) -> tuple[list[str], tuple[str, ...]]:
    """Distinct sentences of the seed documents and, where present, Cranfield's titles and abstracts."""
    texts: list[str] = [path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))]
    sources = ["seeds"]
    if cranfield is not None and cranfield.is_file():
        for line in cranfield.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            texts.extend((record["title"], record["text"]))
        sources.append("cranfield")
    sentences = {text[s.start : s.end] for text in texts for s in split_sentences(text)}
    return sorted(sentence for sentence in sentences if len(sentence.split()) >= 3), tuple(sources)


def load_basis(cache_dir: Path | None = None, cranfield: Path | None = CRANFIELD) -> Basis:
    """The basis, embedded by the packaged model on first use and read from the cache afterwards."""
    sentences, sources = basis_sentences(cranfield)
    return Basis(embedded_once(sentences, "bench-basis", cache_dir), sources)


def embedded_once(sentences: list[str], name: str, cache_dir: Path | None = None) -> np.ndarray:
    """The packaged model's vectors of ``sentences``, cached as ``<name>-<hash>.npy`` (embedding 10,000
    sentences takes minutes on two cores)."""
    digest = hashlib.sha256("\n".join([DEFAULT_MODEL, *sentences]).encode()).hexdigest()[:16]
    path = (cache_dir or get_settings().cache_dir) / f"{name}-{digest}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    from search.encoding.embedding import load_embedder

    vectors = load_embedder(DEFAULT_MODEL).encode(sentences)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, vectors, allow_pickle=False)
    partial.replace(path)
    return vectors


def text_keys(texts: list[str]) -> np.ndarray:
    """A 64-bit key per text, from its words alone (white space does not change a text's vector)."""
    digests = b"".join(hashlib.blake2b(" ".join(text.split()).encode(), digest_size=8).digest() for text in texts)
    return np.frombuffer(digests, dtype=np.uint64).copy()


class Mixtures:
    """Synthetic vectors from a basis: ``vectors(keys)`` and ``near(keys, primaries)`` are deterministic."""

    def __init__(self, basis: np.ndarray, noise: float = _NOISE) -> None:
        self.basis = np.ascontiguousarray(basis, dtype=np.float32)
        table = np.random.default_rng(20261201).standard_normal((_NOISE_ROWS, self.basis.shape[1]), dtype=np.float32)
        self._noise = table * np.float32(noise / np.sqrt(self.basis.shape[1] * 2))
        self.noise = noise

    def primaries(self, keys: np.ndarray) -> np.ndarray:
        """The basis row each key's vector is built around."""
        return (_mixed(keys, 1) % np.uint64(len(self.basis))).astype(np.int64)

    def vectors(self, keys: np.ndarray) -> np.ndarray:
        return self.near(keys, self.primaries(keys))

    def near(self, keys: np.ndarray, primaries: np.ndarray) -> np.ndarray:
        """Vectors built around the given basis rows: a query about a passage shares its primary row."""
        rows = len(self.basis)
        partners = [(_mixed(keys, 2 + i) % np.uint64(rows)).astype(np.int64) for i in range(2)]
        low, high = _PRIMARY_WEIGHT
        primary_weight = low + (high - low) * _uniform(keys, 4)
        split = _uniform(keys, 5)
        # One partner or two, half the time each.
        second_share = np.where(_uniform(keys, 6) < 0.5, 0.0, split)
        rest = 1 - primary_weight
        out = self.basis[primaries] * primary_weight[:, None]
        out += self.basis[partners[0]] * (rest * (1 - second_share))[:, None]
        out += self.basis[partners[1]] * (rest * second_share)[:, None]
        out += self._noise[(_mixed(keys, 7) % np.uint64(_NOISE_ROWS)).astype(np.int64)]
        out += self._noise[(_mixed(keys, 8) % np.uint64(_NOISE_ROWS)).astype(np.int64)]
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _mixed(keys: np.ndarray, stream: int) -> np.ndarray:
    """splitmix64 of ``keys`` in stream ``stream``: independent-looking 64-bit draws per key and stream."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + _GOLDEN * np.uint64(stream)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _uniform(keys: np.ndarray, stream: int) -> np.ndarray:
    return (_mixed(keys, stream) >> np.uint64(11)).astype(np.float32) / np.float32(1 << 53)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """The mean share of each query's true neighbours (rows of ``truth``) that ``found`` holds."""
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found.tolist(), truth.tolist())]))


def ivf_recall_curve(database: np.ndarray, queries: np.ndarray, probes: list[int], k: int = 10) -> dict[int, float]:
    """Recall@k of IVF with ``sqrt(n)`` cells against exact search, at each nprobe."""
    cells = max(8, int(np.sqrt(len(database))))
    quantizer = faiss.IndexFlatIP(database.shape[1])
    index = faiss.IndexIVFFlat(quantizer, database.shape[1], cells, faiss.METRIC_INNER_PRODUCT)
    index.train(database)
    index.add(database)
    exact = faiss.IndexFlatIP(database.shape[1])
    exact.add(database)
    _, truth = exact.search(queries, k)
    curve = {}
    for nprobe in probes:
        index.nprobe = nprobe
        _, found = index.search(queries, k)
        curve[nprobe] = recall_at_k(found, truth)
    return curve


def compare_curves(basis: Basis, queries: int = 300, noise: float = _NOISE, seed: int = 0) -> dict:
    """IVF recall against the share of cells probed: held-out real sentences searching the other real
    sentences, beside fresh mixtures searching as many mixtures."""
    order = np.random.default_rng(seed).permutation(len(basis.vectors))
    real_queries, real = basis.vectors[order[:queries]], basis.vectors[order[queries:]]
    mixtures = Mixtures(basis.vectors, noise)
    synthetic = mixtures.vectors(np.arange(len(real), dtype=np.uint64))
    synthetic_queries = mixtures.vectors(np.arange(len(real), len(real) + queries, dtype=np.uint64))
    cells = max(8, int(np.sqrt(len(real))))
    probes = sorted({max(1, round(cells * share)) for share in (0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.3)})
    real_curve = ivf_recall_curve(real, real_queries, probes)
    synthetic_curve = ivf_recall_curve(synthetic, synthetic_queries, probes)
    return {
        "vectors": len(real),
        "queries": queries,
        "cells": cells,
        "noise": noise,
        "curve": [
            {"nprobe": p, "share": round(p / cells, 3), "real": round(real_curve[p], 3), "synthetic": round(synthetic_curve[p], 3)}
            for p in probes
        ],
    }


class MixtureEmbedder:
    """The ``Embedder`` interface without a model: a text's vector is the mixture keyed by its hash.

    Queries must find their passages, so a query registered in ``query_sources`` (query text -> the
    passage text it was cut from) gets a fresh mixture around its passage's primary basis row, as close
    to its passage as a real question is to its answer; any other text is a mixture of its own. Tokens
    are words. Sentence vectors are mixtures of their own, unrelated to their passage's vector.

    The basis loads on first use, as a model would, so an index's resident memory after load excludes it.
    """

    name = "scale-standin-mixtures"
    dimension = 384  # the packaged model's
    max_tokens = 256
    quantize: str | None = None
    encoder = KIND

    def __init__(self, query_sources: dict[str, str] | None = None) -> None:
        self._loaded: Mixtures | None = None
        self._sources = query_sources or {}
        self.seconds = 0.0

    @property
    def _mixtures(self) -> Mixtures:
        if self._loaded is None:
            self._loaded = Mixtures(load_basis().vectors)
        return self._loaded

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(text.split()) for text in texts]

    def encode(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        vectors = self._mixtures.vectors(text_keys(texts)) if texts else np.zeros((0, self.dimension), np.float32)
        self.seconds += time.perf_counter() - started
        return vectors.astype(np.float32, copy=False)

    def embed(self, texts: list[str], progress: EncodeProgress | None = None) -> Embedded:
        return counted(self, texts)

    def encode_query(self, text: str, alone: bool = False) -> np.ndarray:
        source = self._sources.get(text)
        if source is None:
            return self.encode([text])[0]
        primary = self._mixtures.primaries(text_keys([source]))
        return self._mixtures.near(text_keys([text]), primary)[0].astype(np.float32, copy=False)
