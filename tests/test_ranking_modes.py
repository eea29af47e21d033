"""Hybrid, semantic and keyword ranking on a small generated BEIR set with known answers."""

import json

import numpy as np
import pytest

from evaluation.runner import evaluate_beir
from indexer.build import build_index
from search.encoding.embedder import Embedded, Embedder, EncodeProgress
from search.errors import SemanticUnavailable
from search.ranking.rules import SearchRequest
from search.ranking.searcher import Searcher
from search.settings import DEFAULT_MODEL
from tests.conftest import PARAMS, dense, open_index, write

CORPUS = {
    "code-5521": ("Error codes", "Code 5521 means the printer has run out of paper."),
    "code-5512": ("Error codes", "Code 5512 means the hard disk failed and data could not be written to storage."),
    "code-2155": ("Error codes", "Code 2155 means the network cable is unplugged."),
    "lift": ("Flight", "Aircraft wings generate lift because air pressure below the wing exceeds the pressure above it."),
    "cook": ("Kitchen", "Simmer the tomatoes with garlic and olive oil for twenty minutes before adding basil."),
    "music": ("Concerts", "The orchestra tuned to the oboe before the symphony began in the concert hall."),
}
# q-code hinges on an exact rare term (semantic mixes up the near-identical codes);
# q-lift is a paraphrase sharing no word with its answer (keyword finds nothing).
QUERIES = {
    "q-code": ("error 5521", "code-5521"),
    "q-lift": ("What makes an airplane rise into the sky?", "lift"),
    "q-cook": ("How long should tomatoes simmer with garlic?", "cook"),
}


@pytest.fixture(scope="module")
def beir_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beir")
    write(folder, "corpus.jsonl", "\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, (t, x) in CORPUS.items()))
    write(folder, "queries.jsonl", "\n".join(json.dumps({"_id": q, "text": text}) for q, (text, _) in QUERIES.items()))
    write(folder, "qrels/test.tsv", "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (_, d) in QUERIES.items()))
    return folder


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    docs = tmp_path_factory.mktemp("mode-docs")
    for doc_id, (title, text) in CORPUS.items():
        write(docs, f"{doc_id}.md", f"# {title}\n\n{text}")
    index_dir = tmp_path_factory.mktemp("mode-index") / "index"
    build_index(docs, index_dir, DEFAULT_MODEL, PARAMS)
    return Searcher.open(index_dir)


def _top(searcher, query, mode):
    return searcher.search(SearchRequest(query, k=3, mode=mode)).hits


def test_keyword_mode_finds_the_exact_rare_term_that_semantic_mode_misses(searcher):
    assert _top(searcher, "error 5521", "keyword")[0].doc_id == "code-5521.md"
    assert _top(searcher, "error 5521", "semantic")[0].doc_id == "code-5512.md"


def test_semantic_mode_finds_the_paraphrase_that_keyword_mode_misses(searcher):
    assert _top(searcher, "What makes an airplane rise into the sky?", "semantic")[0].doc_id == "lift.md"
    assert all(hit.doc_id != "lift.md" for hit in _top(searcher, "What makes an airplane rise into the sky?", "keyword"))


def test_hybrid_finds_both_kinds_and_reports_component_scores(searcher):
    rare = _top(searcher, "error 5521", "hybrid")
    paraphrase = _top(searcher, "What makes an airplane rise into the sky?", "hybrid")
    assert rare[0].doc_id == "code-5521.md" and paraphrase[0].doc_id == "lift.md"
    assert rare[0].scores["semantic"] is not None and rare[0].scores["keyword"] is not None
    assert paraphrase[0].scores["keyword"] is None and paraphrase[0].scores["semantic"] > 0.3


def test_eval_reports_perfect_and_imperfect_scores(beir_folder):
    report = evaluate_beir(beir_folder, ["hybrid", "semantic", "keyword"], DEFAULT_MODEL, PARAMS)
    assert report.queries == 3
    assert report.modes["hybrid"] == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}
    # semantic: q-code answer at rank 2 -> MRR (1 + 1/2 + 1) / 3
    assert report.modes["semantic"]["mrr@10"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert report.modes["semantic"]["recall@100"] == 1.0
    # keyword: q-lift never found -> recall 2/3 and MRR (1 + 0 + 1) / 3
    assert report.modes["keyword"]["recall@100"] == pytest.approx(2 / 3)
    assert report.modes["keyword"]["mrr@10"] == pytest.approx(2 / 3)


class _BrokenEmbedder:
    """Stands in for a model that fails at query time (cannot be provoked in the real one on demand)."""

    def __init__(self, real: Embedder) -> None:
        self.name, self.dimension, self.max_tokens = real.name, real.dimension, real.max_tokens
        self.quantize, self.encoder = real.quantize, "broken"

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(text.split()) for text in texts]

    def encode(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("simulated model failure")

    def embed(self, texts: list[str], progress: EncodeProgress | None = None) -> Embedded:
        raise RuntimeError("simulated model failure")

    def encode_query(self, text: str, alone: bool = False) -> np.ndarray:
        raise RuntimeError("simulated model failure")


def test_hybrid_degrades_to_keyword_ranking_when_the_model_fails(searcher):
    broken = Searcher(searcher.backend, _BrokenEmbedder(searcher.embedder))
    result = broken.search(SearchRequest("error 5521", k=3))
    assert result.hits[0].doc_id == "code-5521.md"
    assert result.notices and "keywords only" in result.notices[0]
    assert result.hits[0].highlights, "highlights fall back to matching words"
    with pytest.raises(SemanticUnavailable, match="mode=keyword"):
        broken.search(SearchRequest("error 5521", mode="semantic"))


def _scores(searcher, query, mode, **options):
    return [hit.score for hit in searcher.search(SearchRequest(query, k=6, mode=mode, **options)).hits]


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_scores_are_on_one_0_to_1_scale_in_every_mode(searcher, mode):
    answered = 0
    for query in ("error 5521", "What makes an airplane rise into the sky?", "simmer tomatoes"):
        scores = _scores(searcher, query, mode)
        assert all(0.0 <= s <= 1.0 for s in scores), (query, scores)
        if scores and mode != "hybrid":
            assert scores[0] == pytest.approx(1.0), "a single ranking's best candidate scores 1"
        answered += bool(scores)
    assert answered >= 2


def test_hybrid_scores_stay_0_to_1_without_keyword_matches_and_without_the_model(searcher):
    no_terms = searcher.search(SearchRequest("sky rise airplane zzzunknown", k=6))
    assert no_terms.hits and all(hit.scores["keyword"] is None for hit in no_terms.hits)
    assert all(0.0 <= hit.score <= 1.0 for hit in no_terms.hits) and no_terms.hits[0].score == 1.0
    broken = Searcher(searcher.backend, _BrokenEmbedder(searcher.embedder))
    fallback = broken.search(SearchRequest("error 5521", k=6))
    assert fallback.hits and all(0.0 <= hit.score <= 1.0 for hit in fallback.hits)
    assert all(hit.scores["semantic"] is None for hit in fallback.hits)


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_min_score_drops_exactly_the_hits_below_it_in_every_mode(searcher, mode):
    everything = _scores(searcher, "error code meaning", mode)
    floor = 0.5
    kept = _scores(searcher, "error code meaning", mode, min_score=floor)
    assert kept == [s for s in everything if s >= floor]


def test_explain_names_the_inputs_of_each_hit(searcher):
    hit = searcher.search(SearchRequest("error 5521", k=1, explain=True)).hits[0]
    assert hit.explain["matched_terms"] == ["5521", "error"]
    assert set(hit.explain["fused_from"]) == {"semantic", "keyword"}
    assert hit.explain["keyword"] == hit.scores["keyword"] and 0 < hit.explain["best_sentence"] <= 1
    assert hit.explain["weights"] == {"semantic": 1.0, "keyword": pytest.approx(1.0)}, "5521 occurs in one passage: fully specific"


def test_explain_shows_a_common_word_query_leaning_on_meaning(searcher):
    hit = searcher.search(SearchRequest("the error", k=1, explain=True)).hits[0]
    assert 0 < hit.explain["weights"]["keyword"] < 1
    assert sum(hit.explain["contributions"].values()) == pytest.approx(hit.score, abs=1e-5)


def test_explain_shows_when_keyword_evidence_overrode_meaning(searcher):
    """Semantic mode ranks the near-identical code 5512 first; hybrid puts 5521 first because BM25 adds more."""
    winner, runner_up = searcher.search(SearchRequest("error 5521", k=2, explain=True)).hits
    assert winner.doc_id == "code-5521.md"
    for hit in (winner, runner_up):
        contributions = hit.explain["contributions"]
        assert set(contributions) == {"semantic", "keyword"}
        assert sum(contributions.values()) == pytest.approx(hit.score, abs=1e-5) == pytest.approx(hit.explain["fused_score"], abs=1e-5)
    assert winner.explain["contributions"]["keyword"] > winner.explain["contributions"]["semantic"]
    assert winner.explain["contributions"]["keyword"] > runner_up.explain["contributions"]["keyword"]


def test_unknown_mode_lists_the_choices(searcher):
    with pytest.raises(Exception, match="hybrid, semantic, keyword"):
        searcher.search(SearchRequest("anything", mode="fuzzy"))


def test_keyword_and_vector_indexes_stay_in_step_through_updates(docs_copy, tmp_path, embedder):
    index_dir = tmp_path / "index"

    def check(expected_unique_doc=None):
        index = open_index(index_dir)
        documents, passages = index.counts().documents, index.counts().passages
        probe = embedder.encode(["anything"])[0]
        assert len(dense(index, probe, 100_000)[0]) == passages == index.passage_terms.size()
        assert index.document_terms.size() == documents
        if expected_unique_doc:
            with index.snapshot() as view:
                keys, _ = view.keyword("quixotically", 5)
                assert [p.record.doc_id for p in view.passages(keys.tolist()).values()] == [expected_unique_doc]
        return passages

    build_index(docs_copy, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    check()
    write(docs_copy, "added.md", "A sentence that behaves quixotically among the others.")
    build_index(docs_copy, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    check("added.md")
    write(docs_copy, "added.md", "Changed text.\n\nIt still behaves quixotically, in a second paragraph.")
    build_index(docs_copy, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    before = check("added.md")
    (docs_copy / "000_2ff6379e6f7d78c5.txt").unlink()
    build_index(docs_copy, index_dir, DEFAULT_MODEL, PARAMS, embedder=embedder)
    assert check("added.md") < before


@pytest.mark.parametrize(("group_by", "expected"), [(None, False), ("document", True)])
def test_feedback_runs_only_when_documents_are_ranked(searcher, monkeypatch, group_by, expected):
    import search.ranking.searcher

    calls = []
    original = search.ranking.searcher.feedback_vector

    def counted(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(search.ranking.searcher, "feedback_vector", counted)
    searcher.search(SearchRequest("How long should tomatoes simmer with garlic?", k=3, group_by=group_by))
    assert bool(calls) is expected


def test_warm_up_answers_a_search_and_leaves_the_loaded_heap_out_of_the_collectors_reach(searcher):
    import gc

    try:
        searcher.warm_up()
        assert gc.get_freeze_count() > 0
        assert _top(searcher, "error 5521", "keyword")[0].doc_id == "code-5521.md"
    finally:
        gc.unfreeze()
