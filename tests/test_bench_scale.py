"""``semsearch bench scale``: every figure is present, numeric and plausible on a small synthetic index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FIELDS = (
    "passages",
    "files",
    "documents",
    "segments",
    "build_s",
    "add_one_s",
    "delete_one_s",
    "unchanged_rerun_s",
    "compact_s",
    "load_s",
    "rss_mb",
    "disk_mb",
    "search_p50_ms",
    "search_p99_ms",
    "search_warm_p50_ms",
    "search_warm_p99_ms",
    "gc_collections_during_search",
    "warm_up_s",
    "rss_after_search_mb",
    "ann_only_p50_ms",
    "ann_recall_at_10",
)


def _semsearch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semsearch_cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.slow
def test_bench_scale_reports_every_figure() -> None:
    completed = _semsearch("bench", "scale", "--passages", "5000", "--json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    for name in FIELDS:
        assert isinstance(result[name], (int, float)) and result[name] >= 0, name
    assert result["passages"] == result["indexed_passages"] == 5000
    assert result["files"] == 500 and result["documents"] == 500  # one added, one deleted
    assert result["embedding"].startswith("excluded")
    assert result["vectors"] == "mixtures-of-real-embeddings" and result["backend"] == "local"
    assert result["vectors_basis"]["basis_sentences"] > 500 and "seeds" in result["vectors_basis"]["basis_sources"]
    assert 0 < result["ann_recall_at_10"] <= 1
    assert result["search_p50_ms"] <= result["search_p99_ms"] and result["search_warm_p50_ms"] <= result["search_warm_p99_ms"]
    assert 10 < result["rss_mb"] < 3000 and result["disk_mb"] > 0
    assert result["segments"] == 1  # compaction merged the added document's segment


@pytest.mark.slow
def test_bench_scale_keeps_the_hashed_vectors_on_request() -> None:
    completed = _semsearch("bench", "scale", "--passages", "2000", "--vectors", "hashed", "--json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["vectors"] == "hashed-bag-of-words" and "vectors_basis" not in result
    assert result["indexed_passages"] == 2000 and 0 < result["ann_recall_at_10"] <= 1


@pytest.mark.slow
def test_bench_scale_on_milvus_counts_requests_per_search_and_per_put(milvus_uri: str) -> None:
    completed = _semsearch(
        "bench", "scale", "--backend", "milvus", "--milvus-uri", milvus_uri, "--passages", "300", "--vectors", "hashed", "--json"
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)
    assert result["backend"] == "milvus" and result["indexed_passages"] == 300
    assert result["milvus_requests_per_search"] <= 6 and result["milvus_requests_per_put"] <= 12
    assert set(result["milvus_read_levels"]) == {"Bounded"}  # no read asked for Strong


def test_bench_scale_refuses_an_unknown_vector_kind() -> None:
    completed = _semsearch("bench", "scale", "--passages", "10", "--vectors", "random")
    assert completed.returncode == 1
    assert "--vectors must be one of mixtures, hashed, not 'random'" in completed.stderr


def test_bench_scale_makes_a_missing_workdir_and_refuses_one_that_is_a_file(tmp_path: Path) -> None:
    workdir = tmp_path / "new" / "scratch"
    completed = _semsearch("bench", "scale", "--passages", "20", "--vectors", "hashed", "--workdir", str(workdir), "--json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["indexed_passages"] == 20 and workdir.is_dir() and not any(workdir.iterdir())
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    completed = _semsearch("bench", "scale", "--passages", "20", "--workdir", str(a_file))
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    assert f"--workdir {a_file}: File exists" in completed.stderr


def test_bench_scale_refuses_an_empty_collection() -> None:
    completed = _semsearch("bench", "scale", "--passages", "0")
    assert completed.returncode == 1
    assert completed.stderr.strip().startswith("semsearch: error: --passages must be between 1")
