"""Reading BEIR-layout test collections and scoring runs on them with trec_eval's own measures.

Metrics come from pytrec_eval rather than our own arithmetic, so figures are comparable with
published BEIR numbers.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import pytrec_eval

from search.errors import SemsearchError

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]
METRICS = ("ndcg@10", "recall@100", "mrr@10")
_MEASURES = {"ndcg_cut.10", "recall.100"}


@dataclass(frozen=True)
class BeirDocument:
    title: str
    text: str


@dataclass(frozen=True)
class BeirSet:
    """``corpus`` and ``queries`` keyed by id; ``qrels[query_id][doc_id]`` is a graded judgement."""

    corpus: dict[str, BeirDocument]
    queries: dict[str, str]
    qrels: Qrels


def load_beir(folder: Path, split: str = "test") -> BeirSet:
    """``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{split}.tsv`` of a BEIR folder."""
    if not folder.is_dir():
        raise SemsearchError(f"BEIR folder {folder} does not exist or is not a folder")
    corpus = {
        row["_id"]: BeirDocument(str(row.get("title") or ""), str(row["text"]))
        for row in _read_jsonl(folder / "corpus.jsonl", ("_id", "text"))
    }
    queries = {row["_id"]: str(row["text"]) for row in _read_jsonl(folder / "queries.jsonl", ("_id", "text"))}
    return BeirSet(corpus, queries, _read_qrels(folder / "qrels" / f"{split}.tsv"))


def score_run(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean nDCG@10, recall@100 and MRR@10 over the queries that have judgements.

    A judged query missing from ``run`` counts as zero, as it would for a user.
    """
    judged = {qid: docs for qid, docs in qrels.items() if docs}
    if not judged:
        raise SemsearchError("no query has relevance judgements; nothing to score")
    full = {qid: dict(run.get(qid, {})) for qid in judged}
    top10 = {qid: dict(sorted(docs.items(), key=lambda item: (-item[1], item[0]))[:10]) for qid, docs in full.items()}
    per_query = pytrec_eval.RelevanceEvaluator(judged, _MEASURES).evaluate(full)
    reciprocal = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"}).evaluate(top10)
    count = len(judged)
    return {
        "ndcg@10": sum(per_query.get(q, {}).get("ndcg_cut_10", 0.0) for q in judged) / count,
        "recall@100": sum(per_query.get(q, {}).get("recall_100", 0.0) for q in judged) / count,
        "mrr@10": sum(reciprocal.get(q, {}).get("recip_rank", 0.0) for q in judged) / count,
    }


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SemsearchError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise SemsearchError(f"{path} line {number} is not valid JSON: {exc}") from None
        if not isinstance(row, dict) or any(key not in row for key in required):
            raise SemsearchError(f"{path} line {number} must be an object with {', '.join(required)}")
        row["_id"] = str(row["_id"])
        rows.append(row)
    return rows


def _read_qrels(path: Path) -> Qrels:
    """Tab-separated ``query-id``, ``corpus-id``, ``score`` after a header line."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            lines = list(csv.reader(handle, delimiter="\t"))
    except OSError as exc:
        raise SemsearchError(f"cannot read {path}: {exc.strerror or exc}") from None
    qrels: Qrels = {}
    for number, fields in enumerate(lines[1:], 2):
        if not fields:
            continue
        try:
            query_id, doc_id, grade = fields
            qrels.setdefault(query_id, {})[doc_id] = int(grade)
        except ValueError:
            raise SemsearchError(f"{path} line {number} must be query-id, corpus-id and an integer score separated by tabs") from None
    return qrels
