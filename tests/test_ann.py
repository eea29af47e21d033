"""The local backend's ANN segments, and the ``bench ann`` report, on realistic vectors.

Vectors are mixtures of real sentence embeddings (``benchmarks.vectors``), whose IVF recall curve
matches the real model's; the basis is embedded once and cached, so only a first run pays for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.vectors import Mixtures, load_basis
from search.backends.local.faiss_segments import ANN_MIN_VECTORS, FaissSegments
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def mixtures() -> Mixtures:
    return Mixtures(load_basis().vectors)


@pytest.mark.slow
def test_ivf_segment_answers_exact_top_10_with_recall_095(tmp_path: Path, mixtures: Mixtures) -> None:
    count = 60_000
    assert count >= ANN_MIN_VECTORS  # the segment is sealed as IVF, not flat
    vectors = mixtures.vectors(np.arange(count, dtype=np.uint64))
    segments = FaissSegments(tmp_path, vectors.shape[1])
    prepared = segments.prepare(tmp_path, np.arange(count, dtype=np.int64), vectors)
    assert prepared.kind == "ivf"
    segments.open([(1, prepared.file, prepared.kind)], {})
    # float16 lists: about 2 bytes a dimension on disk, not 4.
    assert (tmp_path / prepared.file).stat().st_size < count * vectors.shape[1] * 3
    recalls = []
    for query in mixtures.vectors(np.arange(count, count + 200, dtype=np.uint64)):
        approximate, scores = segments.search(query, 10)
        cosines = vectors @ query  # exact search, in float32
        exact = np.argsort(-cosines)[:10]
        recalls.append(len(set(approximate.tolist()) & set(exact.tolist())) / 10)
        assert np.allclose(scores, cosines[approximate], atol=2e-3)
    assert np.mean(recalls) >= 0.95


@pytest.mark.slow
def test_bench_ann_reports_every_figure_for_every_kind() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "semsearch_cli", "bench", "ann", "--vectors", "5000", "--json"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["vectors"] == 5000 and result["vector_kind"] == "mixtures-of-real-embeddings"
    assert set(result["indexes"]) == {"ivf", "ivf-fp16", "ivf-sq8", "hnsw"}
    for kind, figures in result["indexes"].items():
        for name in ("build_s", "disk_mb", "memory_mb", "p50_ms", "p99_ms", "recall_at_10"):
            assert isinstance(figures[name], (int, float)) and figures[name] >= 0, (kind, name)
        assert figures["recall_at_10"] >= 0.95 and figures["setting"] is not None, kind
        assert figures["p50_ms"] <= figures["p99_ms"], kind


def test_bench_ann_refuses_an_unknown_kind() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "semsearch_cli", "bench", "ann", "--vectors", "5000", "--kinds", "ivf,lsh"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert completed.returncode == 1
    assert "--kinds must be among ivf, ivf-fp16, ivf-sq8, hnsw, not lsh" in completed.stderr
