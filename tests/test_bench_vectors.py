"""The benchmark's realistic vectors: deterministic per text, queries near their passages, and IVF's
recall curve on them close to the curve on the real embeddings they are mixed from."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from benchmarks.docstrings import docstring_sentences
from benchmarks.vectors import MixtureEmbedder, compare_curves, load_basis
from tests.test_cli import run_cli


def test_a_text_always_gets_the_same_unit_vector() -> None:
    texts = ["Lift of a wing in a slipstream.", "Heat transfer at hypersonic speed."]
    first, second = MixtureEmbedder().encode(texts), MixtureEmbedder().encode(texts)
    assert np.array_equal(first, second)
    assert np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert np.array_equal(MixtureEmbedder().encode(["Lift  of a wing\nin a slipstream."])[0], first[0])
    assert float(first[0] @ first[1]) < 0.99


def test_a_query_finds_the_passage_it_was_cut_from() -> None:
    passages = [f"passage number {i} about topic {i % 97}" for i in range(3000)]
    sources = {f"question {i}": passages[i] for i in range(0, 3000, 100)}
    embedder = MixtureEmbedder(sources)
    matrix = embedder.encode(passages)
    for query, passage in sources.items():
        scores = matrix @ embedder.encode_query(query)
        assert int((scores > scores[passages.index(passage)]).sum()) < 10, query


@pytest.mark.slow
def test_synthetic_recall_curve_matches_the_real_one() -> None:
    result = compare_curves(load_basis())
    assert result["vectors"] >= 5000
    for point in result["curve"]:
        assert abs(point["real"] - point["synthetic"]) <= 0.06, point


@pytest.mark.slow
def test_probe_rule_check_runs_on_real_docstring_embeddings(tmp_path: Path) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sentences = docstring_sentences([stdlib / "email", stdlib / "asyncio", stdlib / "logging", stdlib / "multiprocessing"])
    assert len(sentences) >= 2000 and len(set(sentences)) == len(sentences)
    source = tmp_path / "sentences.txt"
    source.write_text("".join(f"{sentence}\n" for sentence in sentences), encoding="utf-8")

    checked = run_cli("bench", "vectors", "--sentences", str(source), "--sizes", "1000", "--json")
    assert checked.returncode == 0, checked.stderr
    (row,) = json.loads(checked.stdout)["sizes"]
    assert row["vectors"] == 1000 and row["cells"] == 64 and row["probes"] == {"half_rule": 16, "rule": 32, "twice_rule": 64}
    for kind in ("real", "mixtures", "mixtures_of_these"):
        recall = row[kind]
        # More probes search a superset of cells, so recall never falls; probing every cell is exact search up to float16 rounding.
        assert 0 < recall["half_rule"] <= recall["rule"] <= recall["twice_rule"] and recall["twice_rule"] >= 0.99, recall


def test_probe_rule_check_refuses_bad_sizes_in_one_line(tmp_path: Path) -> None:
    source = tmp_path / "sentences.txt"
    source.write_text("One real sentence here.\n", encoding="utf-8")
    for sizes in ("ten", "10"):
        refused = run_cli("bench", "vectors", "--sentences", str(source), "--sizes", sizes)
        assert refused.returncode == 2 and "--sizes" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    short = run_cli("bench", "vectors", "--sentences", str(source), "--sizes", "1000")
    assert short.returncode != 0 and "distinct lines" in short.stderr and "Traceback" not in short.stderr, short.stderr
