"""How the engine scales: a synthetic collection of N passages, built, updated, compacted, loaded and searched.

The collection is real ``.txt`` files in a temporary folder, indexed through ``build_index`` like any
folder. Only the model is replaced, by a deterministic stand-in that costs microseconds, so every figure
measures the engine and excludes embedding. By default vectors are mixtures of real sentence embeddings
(``benchmarks.vectors``), whose neighbourhoods are like the model's, so ANN figures hold for real
collections. ``--vectors hashed`` keeps ``HashedBagOfWords`` for what it still serves: a run that needs
neither the model nor the embedded basis, and figures comparable with those measured before (issue 18's
table). Documents are ten
paragraphs of three sentences; each paragraph (64-128 words) packs into exactly one passage, so the
index holds exactly N passages. Words are Zipf-distributed pseudo-words, most drawn from a topic's
own vocabulary, so BM25 has rare and common terms (and hashed vectors cluster a little).

Load, memory, latency and recall are measured in a fresh process, the way a server starts.
Measured, never asserted: the machines are noisy.
"""

from __future__ import annotations

import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy import sparse

from benchmarks.fresh_process import run_fresh
from benchmarks.vectors import MixtureEmbedder, load_basis
from indexer.build import BuildReport, build_index
from indexer.chunking import ChunkingParams
from search.backends.contract import ExactDenseSearch, IndexLocation, Maintainable, SegmentStatistics
from search.backends.registry import backend_class, open_backend
from search.encoding.embedder import Embedded, EncodeProgress, counted
from search.errors import SemsearchError
from search.ranking.rules import SearchRequest
from search.ranking.searcher import Searcher

STANDIN_NAME = "scale-standin-hashed-bow"
EMBEDDING_NOTE = "excluded: a deterministic stand-in makes the vectors, not the model"
VECTOR_KINDS = ("mixtures", "hashed")
PASSAGES_PER_DOCUMENT = 10
# What a backend's figures say and do not say.
_BACKEND_NOTES = {
    "milvus": "milvus-lite searches growing segments by brute force and runs in one process: its latencies say "
    "nothing about a Milvus cluster; disk is Milvus's own and not measured here",
}
MAX_PASSAGES = 5_000_000
PARAMS = ChunkingParams(max_tokens=128, overlap_sentences=1)
QUERIES = 200
_DIMENSION = 384
_HASH_ROWS = 1 << 16
_VOCABULARY = 40_000
_TOPICS = 400
_TOPIC_WORDS = 1_500
_TOPIC_SHARE = 0.7
_SENTENCES_PER_PARAGRAPH = 3
# 3 sentences of 22-36 words: 66-108 words, inside [budget/2, budget], so a paragraph is one passage.
_SENTENCE_WORDS = (22, 37)
_QUERY_WORDS = (3, 7)
_FILES_PER_FOLDER = 1000


class HashedBagOfWords:
    """The ``Embedder`` interface without a model: a text's vector is the normalised sum of fixed
    pseudo-random vectors of its words (a seeded hash picks each word's row). Tokens are words."""

    name = STANDIN_NAME
    dimension = _DIMENSION
    max_tokens = 256
    quantize: str | None = None
    encoder = "hashed-bag-of-words"

    def __init__(self) -> None:
        self._table: np.ndarray | None = None
        self._rows: dict[str, int] = {}
        self.seconds = 0.0

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(text.split()) for text in texts]

    def encode(self, texts: list[str]) -> np.ndarray:
        started = time.perf_counter()
        if self._table is None:
            table = np.random.default_rng(20261125).standard_normal((_HASH_ROWS, _DIMENSION), dtype=np.float32)
            self._table = table / np.linalg.norm(table, axis=1, keepdims=True)
        out = np.empty((len(texts), _DIMENSION), dtype=np.float32)
        for first in range(0, len(texts), 8192):
            out[first : first + 8192] = self._encode_batch(texts[first : first + 8192])
        self.seconds += time.perf_counter() - started
        return out

    def embed(self, texts: list[str], progress: EncodeProgress | None = None) -> Embedded:
        return counted(self, texts)

    def encode_query(self, text: str, alone: bool = False) -> np.ndarray:
        return self.encode([text])[0]

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        cleaned = [text.lower().replace(".", " ") for text in texts]
        words = " ".join(cleaned).split()
        for word in set(words).difference(self._rows):
            self._rows[word] = zlib.crc32(word.encode()) % _HASH_ROWS
        rows = np.fromiter(map(self._rows.__getitem__, words), dtype=np.int64, count=len(words))
        pointers = np.concatenate([[0], np.cumsum([len(text.split()) for text in cleaned])])
        counts = sparse.csr_matrix((np.ones(len(rows), np.float32), rows, pointers), shape=(len(texts), _HASH_ROWS))
        vectors = np.asarray(counts @ self._table, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1)


@dataclass
class _Language:
    """Pseudo-words with a global Zipf distribution and per-topic vocabularies with their own."""

    words: list[str]
    global_cdf: np.ndarray
    topic_words: np.ndarray
    topic_cdf: np.ndarray


def _language(rng: np.random.Generator) -> _Language:
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + [c + v + "n" for c in "bdgkmprst" for v in "aeiou"]
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < _VOCABULARY:
        parts = rng.integers(0, len(syllables), size=rng.integers(2, 5))
        word = "".join(syllables[p] for p in parts)
        if word not in seen:
            seen.add(word)
            words.append(word)
    ranks = np.arange(1, _VOCABULARY + 1)
    global_cdf = np.cumsum(1 / (ranks + 2.7))
    topic_ranks = np.arange(1, _TOPIC_WORDS + 1)
    topic_cdf = np.cumsum(1 / (topic_ranks + 1.0))
    # Topic words come from outside the 300 most common words, so topics differ in what they share least.
    topic_words = np.stack([rng.choice(np.arange(300, _VOCABULARY), _TOPIC_WORDS, replace=False) for _ in range(_TOPICS)])
    return _Language(words, global_cdf / global_cdf[-1], topic_words, topic_cdf / topic_cdf[-1])


def _document_text(language: _Language, rng: np.random.Generator, paragraphs: int) -> str:
    lengths = rng.integers(*_SENTENCE_WORDS, size=paragraphs * _SENTENCES_PER_PARAGRAPH)
    total = int(lengths.sum())
    topic = rng.integers(_TOPICS)
    from_topic = rng.random(total) < _TOPIC_SHARE
    ids = np.searchsorted(language.global_cdf, rng.random(total))
    ids[from_topic] = language.topic_words[topic, np.searchsorted(language.topic_cdf, rng.random(int(from_topic.sum())))]
    words = [language.words[i] for i in ids.tolist()]
    sentences, at = [], 0
    for length in lengths.tolist():
        sentence = words[at : at + length]
        sentences.append(sentence[0].capitalize() + " " + " ".join(sentence[1:]) + ".")
        at += length
    step = _SENTENCES_PER_PARAGRAPH
    return "\n\n".join(" ".join(sentences[i : i + step]) for i in range(0, len(sentences), step)) + "\n"


def write_collection(folder: Path, passages: int, seed: int = 0) -> int:
    """Write documents holding exactly ``passages`` passages under ``folder``; returns the number of files."""
    rng = np.random.default_rng(seed)
    language = _language(rng)
    files = 0
    for first in range(0, passages, PASSAGES_PER_DOCUMENT):
        path = _document_path(folder, files)
        if files % _FILES_PER_FOLDER == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_document_text(language, rng, min(PASSAGES_PER_DOCUMENT, passages - first)), encoding="utf-8")
        files += 1
    return files


def _document_path(folder: Path, number: int) -> Path:
    return folder / f"d{number // _FILES_PER_FOLDER:04d}" / f"doc-{number:07d}.txt"


def distinct_queries(folder: Path, files: int, count: int, seed: int = 1) -> dict[str, str]:
    """``count`` distinct word windows of 3-6 words, each cut from a random paragraph (one passage), mapped
    to that paragraph: the mixture stand-in embeds a query near the passage it came from."""
    rng = np.random.default_rng(seed)
    queries: dict[str, str] = {}
    while len(queries) < count:
        paragraphs = _document_path(folder, int(rng.integers(files))).read_text(encoding="utf-8").split("\n\n")
        paragraph = paragraphs[int(rng.integers(len(paragraphs)))].strip()
        words = paragraph.lower().replace(".", " ").split()
        size = int(rng.integers(*_QUERY_WORDS))
        start = int(rng.integers(0, len(words) - size))
        queries.setdefault(" ".join(words[start : start + size]), paragraph)
    return queries


def standin(vectors: str, query_sources: dict[str, str]) -> HashedBagOfWords | MixtureEmbedder:
    """The stand-in embedder of kind ``vectors`` (one of ``VECTOR_KINDS``)."""
    if vectors == "hashed":
        return HashedBagOfWords()
    if vectors == "mixtures":
        return MixtureEmbedder(query_sources)
    raise SemsearchError(f"--vectors must be one of {', '.join(VECTOR_KINDS)}, not {vectors!r}")


@dataclass
class _Stages:
    """Seconds spent between the named stages a write reports (``search.backends.checkpoints``)."""

    started: float = field(default_factory=time.perf_counter)
    marks: list[tuple[str, float]] = field(default_factory=list)

    def __call__(self, stage: str) -> None:
        self.marks.append((stage, time.perf_counter()))

    def seconds(self, ended: float) -> dict[str, float]:
        times = [self.started, *(t for _, t in self.marks), ended]
        names = ["start", *(name for name, _ in self.marks)]
        return {f"{a} -> {b}": round(t1 - t0, 3) for a, b, t0, t1 in zip(names, [*names[1:], "end"], times, times[1:])}


def _timed_build(
    docs: Path, index_dir: IndexLocation, embedder: HashedBagOfWords | MixtureEmbedder, only: list[str] | None = None
) -> tuple[float, BuildReport, dict[str, float]]:
    stages = _Stages()
    embedder.seconds = 0.0
    report = build_index(docs, index_dir, embedder.name, PARAMS, embedder=embedder, report_stage=stages, only=only)
    ended = time.perf_counter()
    timings = stages.seconds(ended)
    timings["stand-in embedding (inside the stages above)"] = round(embedder.seconds, 3)
    return ended - stages.started, report, timings


def _doc_id(docs: Path, path: Path) -> str:
    return path.relative_to(docs).as_posix()


def _disk_mb(folder: Path) -> float:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def _scratch_folder(workdir: Path | None) -> Path:
    """A fresh folder under ``workdir`` (made if missing, as a user naming a new one expects), or a one-line error."""
    try:
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="semsearch-scale-", dir=workdir))
    except OSError as exc:
        raise SemsearchError(f"--workdir {workdir}: {exc.strerror or exc}") from None


def run_scale(
    passages: int, workdir: Path | None = None, log=lambda message: None, vectors: str = "mixtures", backend: IndexLocation | None = None
) -> dict:
    """Build a synthetic index of ``passages`` passages on ``backend`` (local by default) and measure it; everything
    is removed at the end."""
    if not 1 <= passages <= MAX_PASSAGES:
        raise SemsearchError(f"--passages must be between 1 and {MAX_PASSAGES:,}, not {passages}")
    standin(vectors, {})  # refuses an unknown kind before any work
    root = _scratch_folder(workdir)
    location = replace(backend or IndexLocation(root), path=root / f"scale_{uuid.uuid4().hex[:12]}")
    try:
        return _measure(root, location, passages, log, vectors)
    finally:
        backend_class(location.backend).drop(location)
        shutil.rmtree(root, ignore_errors=True)


def _measure(root: Path, index_dir: IndexLocation, passages: int, log, vectors: str) -> dict:
    docs = root / "docs"
    started = time.perf_counter()
    files = write_collection(docs, passages)
    result: dict = {
        "passages": passages,
        "files": files,
        "embedding": EMBEDDING_NOTE,
        "backend": index_dir.backend,
        "generate_s": round(time.perf_counter() - started, 2),
    }
    if index_dir.backend in _BACKEND_NOTES:
        result["backend_note"] = _BACKEND_NOTES[index_dir.backend]
    queries = distinct_queries(docs, files, QUERIES)
    embedder = standin(vectors, queries)
    result["vectors"] = embedder.encoder
    if isinstance(embedder, MixtureEmbedder):
        result["vectors_basis"] = load_basis().describe()
    log(f"wrote {files} files in {result['generate_s']} s; building")
    result["build_s"], report, result["build_stages_s"] = _timed_build(docs, index_dir, embedder)
    result["indexed_passages"] = report.total_passages
    log(f"built in {result['build_s']:.1f} s; updating")
    result["unchanged_rerun_s"], _, result["unchanged_rerun_stages_s"] = _timed_build(docs, index_dir, embedder)
    extra = docs / "added" / "doc-added.txt"
    extra.parent.mkdir()
    extra.write_text(_document_text(_language(np.random.default_rng(0)), np.random.default_rng(99), PASSAGES_PER_DOCUMENT))
    # One named document, as PUT/DELETE /documents and watcher events update; a whole-folder rescan is
    # what unchanged_rerun_s measures.
    sent = _requests_sent(index_dir)
    result["add_one_s"], _, result["add_one_stages_s"] = _timed_build(docs, index_dir, embedder, [_doc_id(docs, extra)])
    if sent is not None:
        result["milvus_requests_per_put"] = (_requests_sent(index_dir) or 0) - sent
    victim = _document_path(docs, files // 2)
    victim.unlink()
    result["delete_one_s"], _, result["delete_one_stages_s"] = _timed_build(docs, index_dir, embedder, [_doc_id(docs, victim)])
    log("compacting")
    location = index_dir
    kind = backend_class(location.backend)
    with kind.writer(location):
        index = kind.open(location)
        began = time.perf_counter()
        compacted = index.maintain(force=True) if isinstance(index, Maintainable) else None
        result["compact_s"] = time.perf_counter() - began
        index.close()
    result["compacted_segments"] = compacted.merged_segments if compacted else None
    result["disk_mb"] = _disk_mb(index_dir.path) if index_dir.backend == "local" else None
    log("measuring load, memory and search in a fresh process")
    result.update(_probe_in_fresh_process(index_dir, queries, vectors))
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in result.items()}


def _probe_in_fresh_process(index_dir: IndexLocation, queries: dict[str, str], vectors: str) -> dict:
    request = {
        "index": str(index_dir.path),
        "backend": index_dir.backend,
        "options": dict(index_dir.options),
        "queries": queries,
        "vectors": vectors,
    }
    return run_fresh("benchmarks.scale", "probe_main", request, "the measuring process")


def probe_main() -> None:
    """Entry point of the fresh process: JSON request on stdin, JSON measurements on stdout."""
    request = json.loads(sys.stdin.read())
    location = IndexLocation(Path(request["index"]), request["backend"], request["options"])
    print(json.dumps(probe(location, request["queries"], request["vectors"])))


def probe(index_dir: IndexLocation, queries: dict[str, str], vectors: str) -> dict:
    """Open the index as a server would, then search: load time, resident memory, latency, ANN recall."""
    embedder = standin(vectors, queries)
    started = time.perf_counter()
    searcher = Searcher(open_backend(index_dir), embedder)
    load_s = time.perf_counter() - started
    rss_mb = resident_mb()
    stats = searcher.backend.counts()
    segments = searcher.backend.segment_counts() if isinstance(searcher.backend, SegmentStatistics) else None
    embedder.encode(["warm up"])  # the stand-in's tables, so latencies below exclude building them
    # As a server does before it answers (web/engine.py): one search, then the loaded heap frozen.
    started = time.perf_counter()
    searcher.warm_up()
    warm_up_s = time.perf_counter() - started
    collections_before = sum(generation["collections"] for generation in gc.get_stats())
    latencies, requests = _search_times(searcher, queries, index_dir)
    collections = sum(generation["collections"] for generation in gc.get_stats()) - collections_before
    # The same queries again: the index's pages are mapped, so what differs from the first pass is what a
    # cold start costs after the warm-up (the first pass is the figure users of a fresh server meet).
    warm = statistics.quantiles(_search_times(searcher, queries, index_dir)[0], n=100, method="inclusive")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    recalls, ann_ms = [], []
    with searcher.backend.snapshot() as view:
        for vector in map(embedder.encode_query, queries):
            began = time.perf_counter()
            approximate, _ = view.dense(vector, 10)
            ann_ms.append((time.perf_counter() - began) * 1000)
            exact, _ = view.dense_exact(vector, 10) if isinstance(view, ExactDenseSearch) else (approximate, None)
            recalls.append(len(set(approximate.tolist()) & set(exact.tolist())) / max(1, len(exact)))
    measured = {
        "documents": stats.documents,
        "indexed_passages_after_updates": stats.passages,
        "segments": segments.segments if segments else None,
        "load_s": load_s,
        "warm_up_s": warm_up_s,
        "rss_mb": rss_mb,
        "rss_after_search_mb": resident_mb(),
        "search_p50_ms": cuts[49],
        "search_p99_ms": cuts[98],
        "search_mean_ms": statistics.fmean(latencies),
        "search_warm_p50_ms": warm[49],
        "search_warm_p99_ms": warm[98],
        "gc_collections_during_search": collections,
        "ann_only_p50_ms": statistics.median(ann_ms),
        "ann_recall_at_10": statistics.fmean(recalls),
        "queries": len(queries),
    }
    if requests:
        measured["milvus_requests_per_search"] = statistics.median(requests)
        measured["milvus_requests_per_search_max"] = max(requests)
    if index_dir.backend == "milvus":
        from search.backends.milvus.client import read_levels

        measured["milvus_read_levels"] = dict(read_levels())
    return measured


def _search_times(searcher: Searcher, queries: dict[str, str], index_dir: IndexLocation) -> tuple[list[float], list[int]]:
    """Milliseconds of each hybrid search, in order, and (on Milvus) the requests each one sent."""
    times, requests = [], []
    for query in queries:
        sent = _requests_sent(index_dir)
        began = time.perf_counter()
        searcher.search(SearchRequest(query, k=10, mode="hybrid"))
        times.append((time.perf_counter() - began) * 1000)
        if sent is not None:
            requests.append((_requests_sent(index_dir) or 0) - sent)
    return times, requests


def _requests_sent(index_dir: IndexLocation) -> int | None:
    """Requests this process has sent to Milvus so far (counted by the backend's client), or None off Milvus."""
    if index_dir.backend != "milvus":
        return None
    from search.backends.milvus.client import requests_sent

    return requests_sent()


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
