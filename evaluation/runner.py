"""Running the engine over an evaluation set in a throw-away index, once per ranking mode."""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from evaluation.beir import load_beir, score_run
from evaluation.native_fusion import native_runs
from evaluation.questions import load_questions, score_questions
from evaluation.typos import with_typos
from indexer.build import index_documents
from indexer.chunking import ChunkingParams
from indexer.documents import Document, read_documents
from indexer.progress import ProgressDisplay
from search.backends.contract import IndexLocation
from search.backends.registry import backend_class
from search.errors import SemsearchError
from search.ranking.fusion import RRF_K
from search.ranking.rules import MAX_K, SearchRequest
from search.ranking.searcher import Searcher
from search.records import Hit

# Besides the modes, every evaluation reports plain reciprocal-rank fusion of the two single modes.
RRF_REFERENCE = "rrf-reference"
RRF_PARTS = {"semantic", "keyword"}


@dataclass(frozen=True)
class EvalReport:
    """Scores per mode; ``skipped`` maps each query the engine refused (e.g. too long) to the reason. A skipped
    query stays in the means with nothing found, as it would be for a user."""

    dataset: str
    queries: int
    modes: dict[str, dict[str, float]]
    seconds: float
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "queries": self.queries,
            "modes": self.modes,
            "skipped_queries": len(self.skipped),
            "skipped": [{"query": query, "reason": reason} for query, reason in self.skipped.items()],
            "seconds": round(self.seconds, 1),
        }


class _Skips(dict[str, str]):
    """Queries the engine refused, each with its reason; one refused query never aborts a run."""

    def hits(self, searcher: Searcher, query_id: str, request: SearchRequest) -> list[Hit]:
        try:
            return searcher.search(request).hits
        except SemsearchError as exc:
            self.setdefault(query_id, str(exc))
            return []


def evaluate_beir(
    folder: Path,
    modes: list[str],
    model: str,
    params: ChunkingParams,
    show_progress: bool = False,
    quantize: str | None = None,
    backend: IndexLocation | None = None,
) -> EvalReport:
    """nDCG@10, recall@100 and MRR@10 per mode; a document scores as its best passage."""
    started = time.perf_counter()
    collection = load_beir(folder)
    documents = [_beir_document(doc_id, doc.title, doc.text) for doc_id, doc in collection.corpus.items()]
    queries = {qid: text for qid, text in collection.queries.items() if qid in collection.qrels and text.strip()}
    results, rankings, skipped = {}, {}, _Skips()
    with _temporary_searcher(documents, model, quantize, params, show_progress, backend) as searcher:
        for mode in modes:
            run = {}
            for query_id, text in queries.items():
                request = SearchRequest(text, k=MAX_K, group_by="document", mode=mode)
                run[query_id] = {hit.doc_id: hit.score for hit in skipped.hits(searcher, query_id, request)}
            results[mode], rankings[mode] = score_run(run, collection.qrels), run
        for name, run in native_runs(searcher, queries, MAX_K).items():
            results[name] = score_run(run, collection.qrels)
    if rankings.keys() >= RRF_PARTS:
        fused = {query_id: _reciprocal_rank([_best_first(rankings[m][query_id]) for m in RRF_PARTS]) for query_id in queries}
        results[RRF_REFERENCE] = score_run(
            {q: {doc: -rank for rank, doc in enumerate(docs)} for q, docs in fused.items()}, collection.qrels
        )
    return EvalReport(folder.name, len(queries), results, time.perf_counter() - started, dict(skipped))


def evaluate_questions(
    questions_file: Path,
    docs_dir: Path,
    modes: list[str],
    model: str,
    params: ChunkingParams,
    max_file_bytes: int,
    quantize: str | None = None,
    backend: IndexLocation | None = None,
    typos: bool = False,
) -> EvalReport:
    """hit@1, hit@5 and MRR@10 per mode for questions answered by quotes from ``docs_dir``; with ``typos``, also
    per mode as ``"<mode>, one typo"`` for the questions with one seeded typo each (``evaluation.typos``)."""
    started = time.perf_counter()
    questions = load_questions(questions_file)
    documents = read_documents(docs_dir, max_file_bytes).documents
    results, skipped = {}, _Skips()
    by_id = {d.doc_id: d for d in documents}
    with _temporary_searcher(documents, model, quantize, params, False, backend) as searcher:

        def rank(question: str, mode: str) -> list[Hit]:
            if mode == RRF_REFERENCE:
                lists = [rank(question, part) for part in RRF_PARTS]
                hits = {hit.passage_id: hit for hits in lists for hit in hits}
                return [hits[pid] for pid in _reciprocal_rank([[hit.passage_id for hit in hits] for hits in lists])]
            return skipped.hits(searcher, question, SearchRequest(question, k=10, mode=mode))

        evaluated = [*modes, RRF_REFERENCE] if set(modes) >= RRF_PARTS else modes
        for mode in evaluated:
            scores = score_questions(questions, partial(rank, mode=mode), by_id)
            results[mode] = {name: value for name, value in scores.as_dict().items() if name != "questions"}
        if typos:
            mistyped = with_typos(questions, lambda word: _knows(searcher, word))
            for mode in modes:
                scores = score_questions(mistyped, partial(rank, mode=mode), by_id)
                results[f"{mode}, one typo"] = {name: value for name, value in scores.as_dict().items() if name != "questions"}
    return EvalReport(questions_file.name, len(questions), results, time.perf_counter() - started, dict(skipped))


def _knows(searcher: Searcher, word: str) -> bool:
    """Whether some passage of the index holds ``word``'s term."""
    terms = searcher.backend.settings.analyzer.terms(word)
    with searcher.backend.snapshot() as view:
        return bool(terms) and view.term_statistics(word).document_frequencies.get(terms[0], 0) > 0


def _best_first(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=scores.__getitem__, reverse=True)


def _reciprocal_rank(rankings: list[list[str]]) -> list[str]:
    """Plain reciprocal-rank fusion (Cormack et al. 2009, k=60): the reference the default must not lose to."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + 1 / (RRF_K + rank)
    return sorted(scores, key=lambda key: (-scores[key], key))


@contextmanager
def _temporary_searcher(
    documents: list[Document],
    model: str,
    quantize: str | None,
    params: ChunkingParams,
    show_progress: bool,
    backend: IndexLocation | None,
) -> Iterator[Searcher]:
    """A searcher over a fresh index of ``documents`` on ``backend`` (local by default), removed afterwards."""
    if not documents:
        raise SemsearchError("the evaluation set has no documents")
    with tempfile.TemporaryDirectory(prefix="semsearch-eval-") as folder:
        location = replace(backend or IndexLocation(Path()), path=Path(folder) / f"eval_{uuid.uuid4().hex[:12]}")
        kind = backend_class(location.backend)
        try:
            index_documents(documents, location, model, params, progress=ProgressDisplay(bar=show_progress), quantize=quantize)
            searcher = Searcher.open(location)
            yield searcher
            searcher.backend.close()
        finally:
            kind.drop(location)


def _beir_document(doc_id: str, title: str, text: str) -> Document:
    """Title and text indexed as one document, as BEIR evaluations do."""
    body = f"{title}\n\n{text}" if title.strip() else text
    return Document(doc_id, title or doc_id, None, body, hashlib.sha256(body.encode()).hexdigest())
