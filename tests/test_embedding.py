"""The embedder: ONNX Runtime export and cache, int8, PyTorch fallback, batched queries, bulk batches by tokens, devices."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from sentence_transformers import SentenceTransformer

from search.encoding.batching import prefetched, token_batches
from search.encoding.embedding import ModelEmbedder as Embedder
from search.encoding.embedding import load_embedder, resolve_model_location
from search.encoding.onnx_encoder import CUDA, available_cores, providers_for
from search.encoding.query_batcher import QueryBatcher
from search.errors import DeviceUnavailable
from search.settings import DEFAULT_MODEL, Settings

TEXTS = [
    "How do I rotate the API keys of a running server?",
    "x",
    "  Leading and trailing spaces  ",
    "A longer passage about aqueducts: the Romans carried water over long distances with gravity alone. " * 6,
    "Ünïcödé and CamelCase words, numbers 12345 and punctuation!?",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


@pytest.fixture(scope="session")
def reference() -> np.ndarray:
    """The vectors sentence-transformers itself makes for TEXTS with PyTorch."""
    model = SentenceTransformer(resolve_model_location(DEFAULT_MODEL), device="cpu")
    return model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def onnx_embedder(cache_dir: Path) -> Embedder:
    return Embedder(DEFAULT_MODEL, cache_dir=cache_dir)


def test_onnx_vectors_match_pytorch(onnx_embedder: Embedder, reference: np.ndarray) -> None:
    assert onnx_embedder.encoder == "onnx"
    vectors = onnx_embedder.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), onnx_embedder.dimension)
    assert cosines(vectors, reference).min() >= 0.9999
    assert onnx_embedder.encode([]).shape == (0, onnx_embedder.dimension)
    for alone in (True, False):  # the lone-query session and the batched one give the same vector
        assert cosines(onnx_embedder.encode_query(TEXTS[0], alone)[None], reference[:1])[0] >= 0.9999


def test_export_is_verified_and_reused(onnx_embedder: Embedder, cache_dir: Path) -> None:
    (export,) = cache_dir.glob("*-fp32-*.onnx")
    record = json.loads(export.with_suffix(".json").read_text())
    assert record["passed"] and record["min_cosine"] >= 0.9999
    # Traced with eager attention, every one of MiniLM's six layers fuses into one Attention node.
    assert record["fused"]["Attention"] == 6 and record["fused"]["SkipLayerNormalization"] == 12
    written = export.stat().st_mtime_ns
    again = Embedder(DEFAULT_MODEL, cache_dir=cache_dir)
    assert again.encoder == "onnx"
    assert export.stat().st_mtime_ns == written


def test_damaged_export_is_replaced(onnx_embedder: Embedder, cache_dir: Path, tmp_path: Path, reference: np.ndarray) -> None:
    for file in cache_dir.glob("*-fp32-*"):
        shutil.copy(file, tmp_path / file.name)
    (export,) = tmp_path.glob("*.onnx")
    export.write_bytes(b"\0" * export.stat().st_size)
    repaired = Embedder(DEFAULT_MODEL, cache_dir=tmp_path)
    assert repaired.encoder == "onnx"
    assert export.read_bytes()[:64] != b"\0" * 64
    assert cosines(repaired.encode(TEXTS), reference).min() >= 0.9999
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_int8_export_stays_close(cache_dir: Path, reference: np.ndarray) -> None:
    int8 = Embedder(DEFAULT_MODEL, quantize="int8", cache_dir=cache_dir)
    assert int8.encoder == "onnx-int8"
    (record,) = cache_dir.glob("*-int8-*.json")
    assert json.loads(record.read_text())["min_cosine"] >= 0.98
    assert json.loads(record.read_text())["fused"]["Attention"] == 6
    assert cosines(int8.encode(TEXTS), reference).min() >= 0.98


def test_unwritable_cache_falls_back_to_pytorch(tmp_path: Path, reference: np.ndarray, caplog) -> None:
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache folder should be")
    embedder = Embedder(DEFAULT_MODEL, cache_dir=not_a_folder)
    assert embedder.encoder == "torch"
    assert "PyTorch" in caplog.text
    assert cosines(embedder.encode(TEXTS), reference).min() >= 0.9999
    assert cosines(embedder.encode_query(TEXTS[0])[None], reference[:1])[0] >= 0.9999


def test_unsupported_pooling_falls_back_to_pytorch(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(resolve_model_location(DEFAULT_MODEL), model_dir)
    pooling = model_dir / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config["pooling_mode_mean_tokens"] = False
    config["pooling_mode_mean_sqrt_len_tokens"] = True
    pooling.write_text(json.dumps(config))
    embedder = Embedder(str(model_dir), cache_dir=tmp_path / "cache")
    assert embedder.encoder == "torch"
    assert not list(tmp_path.rglob("*.onnx"))


def test_concurrent_queries_share_passes_and_get_their_own_vectors(onnx_embedder: Embedder) -> None:
    queries = [f"question {number}: where does {word} come from?" for number, word in enumerate("abcdefghijklmnop")]
    expected = onnx_embedder.encode(queries)
    results: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(queries))

    def ask(number: int) -> None:
        start.wait()
        results[number] = onnx_embedder.encode_query(queries[number])

    passes_before = onnx_embedder.queries.passes
    threads = [threading.Thread(target=ask, args=(number,)) for number in range(len(queries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = np.stack([results[number] for number in range(len(queries))])
    assert cosines(got, expected).min() >= 0.9999
    assert onnx_embedder.queries.passes - passes_before < len(queries)


def test_an_error_in_a_pass_reaches_each_of_its_callers(onnx_embedder: Embedder) -> None:
    def embed(texts: list[str]) -> np.ndarray:
        if "boom" in texts:
            raise RuntimeError("forward pass failed")
        return onnx_embedder.encode(texts)

    batcher = QueryBatcher(embed)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def ask() -> None:
        start.wait()
        try:
            batcher.submit("boom")
        except RuntimeError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(errors) == 8
    assert batcher.submit("fine").shape == (onnx_embedder.dimension,)


def test_queries_do_not_wait_for_bulk_embedding(onnx_embedder: Embedder) -> None:
    bulk = threading.Thread(target=onnx_embedder.encode, args=([f"{TEXTS[3]} {n}" for n in range(600)],))
    bulk.start()
    try:
        onnx_embedder.encode_query("asked while a build runs")
        assert bulk.is_alive()
    finally:
        bulk.join()


def test_quantize_setting_accepts_only_known_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMSEARCH_QUANTIZE", "int8")
    assert Settings().quantize == "int8"
    monkeypatch.setenv("SEMSEARCH_QUANTIZE", "none")
    assert Settings().quantize is None
    monkeypatch.setenv("SEMSEARCH_QUANTIZE", "int4")
    with pytest.raises(ValidationError, match="int8"):
        Settings()


def test_bulk_batches_are_sized_by_tokens_and_padded_as_the_tokenizer_pads(onnx_embedder: Embedder) -> None:
    texts = [f"{TEXTS[3][: 7 * n]} {n}" for n in range(1, 60)] + TEXTS
    batches = list(token_batches(onnx_embedder._tokenize_unpadded, texts, 0, budget=512))
    assert sorted(row for batch in batches for row in batch.rows) == list(range(len(texts)))
    widths = [batch.features["input_ids"].shape[1] for batch in batches]
    assert widths == sorted(widths), "shortest first, so each batch pads to a similar length"
    for batch in batches:
        rows, width = batch.features["input_ids"].shape
        assert rows * width <= 512 or rows == 1
        expected = onnx_embedder._tokenize([texts[row] for row in batch.rows])
        for name, values in expected.items():
            assert np.array_equal(batch.features[name], values), name
        assert batch.tokens == int(expected["attention_mask"].sum())


def test_embed_counts_the_tokens_each_text_ran_and_reports_each_pass(onnx_embedder: Embedder, reference: np.ndarray) -> None:
    passes: list[tuple[int, int]] = []
    embedded = onnx_embedder.embed(TEXTS, lambda texts, tokens: passes.append((texts, tokens)))
    assert cosines(embedded.vectors, reference).min() >= 0.9999
    window = onnx_embedder.max_tokens + 2
    expected = [min(count + 2, window) for count in onnx_embedder.count_tokens(TEXTS)]
    assert embedded.tokens.tolist() == expected
    assert sum(texts for texts, _ in passes) == len(TEXTS) and sum(tokens for _, tokens in passes) == sum(expected)


def test_prefetched_keeps_order_and_raises_where_the_error_was() -> None:
    assert list(prefetched(iter(range(10)))) == list(range(10))
    assert list(prefetched(iter([None, 0]))) == [None, 0]

    def failing():
        yield 1
        raise ValueError("tokenizer failed")

    got = []
    with pytest.raises(ValueError, match="tokenizer failed"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1]


def test_sessions_use_every_available_core(cache_dir: Path) -> None:
    (export_path,) = cache_dir.glob("*-fp32-*.onnx")
    from search.encoding.onnx_encoder import OnnxExport

    session = OnnxExport(export_path, 1.0).session()
    assert session.get_session_options().intra_op_num_threads == available_cores() >= 1


def _cuda_offered() -> bool:
    import onnxruntime as ort

    return CUDA in ort.get_available_providers()


@pytest.mark.skipif(_cuda_offered(), reason="this ONNX Runtime has CUDA")
def test_cuda_without_onnxruntime_gpu_fails_with_one_line() -> None:
    with pytest.raises(DeviceUnavailable, match=r"--device cuda needs ONNX Runtime with CUDA \(pip install 'semsearch\[gpu\]'\)"):
        providers_for("cuda")
    assert providers_for("auto") == providers_for("cpu")


@pytest.mark.skipif(not _cuda_offered(), reason="needs onnxruntime-gpu (the gpu extra) and an NVIDIA GPU")
def test_cuda_embeds_as_the_cpu_does(onnx_embedder: Embedder, reference: np.ndarray) -> None:
    try:
        gpu = load_embedder(DEFAULT_MODEL, device="cuda")
    except DeviceUnavailable as exc:
        pytest.skip(str(exc))
    assert gpu.device == "cuda" and onnx_embedder.device == "cpu"
    assert cosines(gpu.encode(TEXTS), reference).min() >= 0.999
