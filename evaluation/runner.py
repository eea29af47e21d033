"""Running the engine over an evaluation set in a throw-away index, once per ranking mode."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from evaluation.beir import load_beir, score_run
from evaluation.questions import load_questions, score_questions
from indexer.build import index_documents
from indexer.chunking import ChunkingParams
from indexer.documents import Document, read_documents
from search.errors import SemsearchError
from search.rules import MAX_K, SearchRequest
from search.searcher import Searcher


@dataclass(frozen=True)
class EvalReport:
    dataset: str
    queries: int
    modes: dict[str, dict[str, float]]
    seconds: float

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "queries": self.queries, "modes": self.modes, "seconds": round(self.seconds, 1)}


def evaluate_beir(folder: Path, modes: list[str], model: str, params: ChunkingParams, show_progress: bool = False) -> EvalReport:
    """nDCG@10, recall@100 and MRR@10 per mode; a document scores as its best passage."""
    started = time.perf_counter()
    collection = load_beir(folder)
    documents = [_beir_document(doc_id, doc.title, doc.text) for doc_id, doc in collection.corpus.items()]
    queries = {qid: text for qid, text in collection.queries.items() if qid in collection.qrels and text.strip()}
    results = {}
    with _temporary_searcher(documents, model, params, show_progress) as searcher:
        for mode in modes:
            run = {}
            for query_id, text in queries.items():
                request = SearchRequest(text, k=MAX_K, group_by_document=True, mode=mode)
                run[query_id] = {hit.doc_id: hit.score for hit in searcher.search(request).hits}
            results[mode] = score_run(run, collection.qrels)
    return EvalReport(folder.name, len(queries), results, time.perf_counter() - started)


def evaluate_questions(
    questions_file: Path, docs_dir: Path, modes: list[str], model: str, params: ChunkingParams, max_file_bytes: int
) -> EvalReport:
    """hit@1, hit@5 and MRR@10 per mode for questions answered by quotes from ``docs_dir``."""
    started = time.perf_counter()
    questions = load_questions(questions_file)
    documents = read_documents(docs_dir, max_file_bytes).documents
    results = {}
    with _temporary_searcher(documents, model, params, show_progress=False) as searcher:
        for mode in modes:
            scores = score_questions(
                questions, lambda q, mode=mode: searcher.search(SearchRequest(q, k=10, mode=mode)).hits, {d.doc_id: d for d in documents}
            )
            results[mode] = {name: value for name, value in scores.as_dict().items() if name != "questions"}
    return EvalReport(questions_file.name, len(questions), results, time.perf_counter() - started)


@contextmanager
def _temporary_searcher(documents: list[Document], model: str, params: ChunkingParams, show_progress: bool) -> Iterator[Searcher]:
    if not documents:
        raise SemsearchError("the evaluation set has no documents")
    with tempfile.TemporaryDirectory(prefix="semsearch-eval-") as folder:
        index_dir = Path(folder) / "index"
        index_documents(documents, index_dir, model, params, show_progress=show_progress)
        yield Searcher.open(index_dir)


def _beir_document(doc_id: str, title: str, text: str) -> Document:
    """Title and text indexed as one document, as BEIR evaluations do."""
    body = f"{title}\n\n{text}" if title.strip() else text
    return Document(doc_id, title or doc_id, None, body, hashlib.sha256(body.encode()).hexdigest())
