"""``semsearch bench``: every figure is present and plausible, and relative paths mean the caller's folder.

No timing thresholds: the machines are noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

ENCODERS = ("onnx", "onnx-int8", "torch")


def _plausible(latency: dict, at_least: int = 1) -> None:
    assert latency["requests"] >= at_least and latency["errors"] == 0
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"]


@pytest.mark.slow
def test_bench_reports_every_figure_with_a_relative_index_from_another_folder(docs_copy: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "semsearch_cli",
            "bench",
            "--docs",
            str(docs_copy),
            "--index",
            "rel/index",
            "--queries",
            "20",
            "--clients-seconds",
            "2",
            "--during-index",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)

    assert (elsewhere / "rel" / "index").is_dir()
    assert not (ROOT / "rel").exists()

    assert report["encoder"] in ENCODERS and report["startup_seconds"] > 0
    _plausible(report["sequential"], at_least=20)
    assert [run["clients"] for run in report["throughput"]] == [1, 8, 16]
    for run in report["throughput"]:
        _plausible(run["latency"])
        assert run["searches_per_second"] > 0
    build = report["build"]
    assert build["encoder"] in ENCODERS and build["model_load_seconds"] >= 0 and build["build_seconds"] > 0
    assert build["documents"] == len(list(docs_copy.iterdir())) and build["passages"] >= build["documents"]
    assert build["passages_per_second"] > 0
    during = report["during_index"]
    assert during["encoder"] in ENCODERS and during["job_state"] == "succeeded"
    assert during["documents"] == 3 and during["embedded_passages"] >= 3 and during["job_seconds"] > 0
    _plausible(during["latency"])
    assert not any(path.name == "bench-generated" for path in docs_copy.iterdir())
    for key in ("soak", "soak_clients", "rss_launch_mb", "rss_warm_mb", "rss_end_mb", "growth_after_warmup"):
        assert key in report
