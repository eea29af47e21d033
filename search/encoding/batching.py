"""Bulk encoder inputs: texts tokenized, cut into batches by a token budget, and prepared one batch ahead of
the forward pass.

A batch's cost is its rows times its longest row, padding included, so batches are sized by that product,
not by a count of texts: one fixed count is either too few short sentences or too many long passages.
Texts go shortest first, so each batch pads to a similar length. The tokenizer (Rust) and ONNX Runtime
both release the GIL, so the next batch is tokenized in a worker thread while the current one runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

# Padded tokens per forward pass on a CPU: a passage (about 190 tokens) a pass, or about 8 sentences. The same
# 1,135 Cranfield texts (passages and their sentences, 54,820 tokens) in one process on two shared cores,
# budgets interleaved, best of 4: 256: 16.8 s; 512: 25.0 s; 768: 25.2 s; 2,048: 25.6 s; the earlier 8 texts a
# pass: 24.0 s. Small passes keep their activations in cache.
TOKEN_BUDGET = 256
# On a GPU a pass costs little and launching one does not: far larger batches (not measured here).
GPU_TOKEN_BUDGET = 65536
# Texts per tokenizer call: enough for the tokenizer's own batching, few enough to start the first pass soon.
_TOKENIZE_TEXTS = 256

Tokenize = Callable[[list[str]], dict[str, Any]]
T = TypeVar("T")


@dataclass(frozen=True)
class Batch:
    """One forward pass: which of the caller's texts it holds, their padded model inputs, and its real tokens
    (padding excluded)."""

    rows: list[int]
    features: dict[str, np.ndarray]
    tokens: int


def token_batches(tokenize: Tokenize, texts: list[str], pad_id: int, budget: int = TOKEN_BUDGET) -> Iterator[Batch]:
    """Batches of at most ``budget`` padded tokens (or one text longer than that), shortest texts first.

    ``tokenize`` maps texts to the tokenizer's unpadded lists of model inputs (``input_ids``, ``attention_mask``,
    ``token_type_ids``), cut at the model's window.
    """
    order = sorted(range(len(texts)), key=lambda row: len(texts[row]))
    held: list[tuple[int, dict[str, Any]]] = []
    width = 0
    for first in range(0, len(order), _TOKENIZE_TEXTS):
        rows = order[first : first + _TOKENIZE_TEXTS]
        encoded = tokenize([texts[row] for row in rows])
        for position in sorted(range(len(rows)), key=lambda p: len(encoded["input_ids"][p])):
            one = {name: values[position] for name, values in encoded.items()}
            length = len(one["input_ids"])
            if held and max(width, length) * (len(held) + 1) > budget:
                yield _padded(held, pad_id)
                held, width = [], 0
            held.append((rows[position], one))
            width = max(width, length)
    if held:
        yield _padded(held, pad_id)


def _padded(held: list[tuple[int, dict[str, Any]]], pad_id: int) -> Batch:
    """The batch's model inputs as int64 arrays padded to its longest row, as the tokenizer pads."""
    width = max(len(one["input_ids"]) for _, one in held)
    features = {}
    for name in held[0][1]:
        values = np.full((len(held), width), pad_id if name == "input_ids" else 0, dtype=np.int64)
        for position, (_, one) in enumerate(held):
            values[position, : len(one[name])] = one[name]
        features[name] = values
    return Batch([row for row, _ in held], features, sum(len(one["input_ids"]) for _, one in held))


def prefetched(items: Iterator[T], ahead: int = 2) -> Iterator[T]:
    """The items of ``items`` in order, each made in a worker thread up to ``ahead`` items before it is asked
    for; an exception raised making one is raised here, in its place."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="semsearch-tokenize") as worker:
        # One worker: the calls to _next run one at a time, in order.
        coming = deque(worker.submit(_next, items) for _ in range(ahead))
        while True:
            made = coming.popleft().result()
            if made is None:
                return
            coming.append(worker.submit(_next, items))
            yield made[0]


def _next(items: Iterator[T]) -> tuple[T] | None:
    """The next item in a tuple, or None at the end (an item may itself be None)."""
    for item in items:
        return (item,)
    return None
