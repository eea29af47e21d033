"""The contract every retrieval backend must honour, run against each one by name (``backend_location``).

Adds, updates, deletes and moves, each checked in every search mode and with every filter; a read view
taken before a commit sees none of it; the index records its backend. The property "equal to a fresh
build" (``test_update_properties``) and the crash trials (``test_crash_safety``, local files;
``test_milvus_backend``, Milvus rows) complete it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest

from indexer import changes
from indexer.build import build_index
from search.backends import registry
from search.backends.contract import Filters, IndexLocation, TermVocabulary
from search.backends.milvus import terms as milvus_terms
from search.backends.registry import backend_class, open_backend
from search.errors import IndexFormatError, SemsearchError
from search.ranking.rules import FACETS, MODES, SearchRequest
from search.ranking.searcher import Searcher, keyword_specificity
from search.settings import DEFAULT_MODEL, Settings
from search.text.query_terms import bm25_idf
from tests.conftest import PARAMS, write

DOCS = {
    "ships.md": "# Harbour\n\nThe ferry left the harbour before the storm. The lighthouse keeper watched the tide.\n",
    "orchard.txt": "date 2024-05-01\n\nThe orchard gave apples for cider. The harvest ended before the first frost.\n",
    "stars.md": "# Night sky\n\nA telescope on the hill showed the comet. The galaxy was faint behind it.\n",
}


def _location(backend_location, tmp_path: Path) -> IndexLocation:
    return backend_location(tmp_path / f"contract_{uuid.uuid4().hex[:8]}")


def _hits(location: IndexLocation, query: str, mode: str, **options) -> list[tuple[str, str]]:
    searcher = Searcher.open(location)
    try:
        return [(hit.doc_id, hit.text) for hit in searcher.search(SearchRequest(query, k=5, mode=mode, **options)).hits]
    finally:
        searcher.backend.close()


def _search(location: IndexLocation, query: str, mode: str, **options) -> list[str]:
    return [doc_id for doc_id, _ in _hits(location, query, mode, **options)]


@pytest.fixture
def built(backend_location, tmp_path, embedder):
    docs = tmp_path / "docs"
    for name, text in DOCS.items():
        write(docs, name, text)
    location = _location(backend_location, tmp_path)
    build_index(docs, location, DEFAULT_MODEL, PARAMS, embedder=embedder)
    yield docs, location
    backend_class(location.backend).drop(location)


@pytest.mark.parametrize("mode", MODES)
def test_add_update_delete_and_move_show_in_every_mode(built, embedder, mode):
    docs, location = built
    query = "comet seen through a telescope" if mode != "keyword" else "telescope comet"
    assert _search(location, query, mode)[0] == "stars.md"

    write(docs, "new/bread.md", "# Bakery\n\nThe bakery oven baked bread from fresh flour every morning.\n")
    build_index(docs, location, DEFAULT_MODEL, PARAMS, embedder=embedder)
    assert _search(location, "bakery oven bread flour", mode)[0] == "new/bread.md"

    write(docs, "stars.md", "# Night sky\n\nA glacier of snow and ice covered the valley below the quarry.\n")
    build_index(docs, location, DEFAULT_MODEL, PARAMS, embedder=embedder)
    assert not any("telescope" in text for _, text in _hits(location, "telescope comet galaxy", mode))
    assert _search(location, "glacier snow ice valley", mode)[0] == "stars.md"

    (docs / "new/bread.md").rename(docs / "moved.md")
    build_index(docs, location, DEFAULT_MODEL, PARAMS, embedder=embedder)
    found = _search(location, "bakery oven bread flour", mode)
    assert found[0] == "moved.md" and "new/bread.md" not in found

    (docs / "orchard.txt").unlink()
    build_index(docs, location, DEFAULT_MODEL, PARAMS, embedder=embedder)
    assert "orchard.txt" not in _search(location, "apples cider harvest orchard", mode)
    backend = open_backend(location)
    assert sorted(s.doc_id for s in backend.documents()) == ["moved.md", "ships.md", "stars.md"]
    backend.close()


@pytest.mark.parametrize("mode", MODES)
def test_filters_apply_before_the_cut_in_every_mode(built, mode):
    _, location = built
    query = "harbour storm ferry lighthouse apples telescope"
    assert _search(location, query, mode, doc_ids=("orchard.txt",)) == ["orchard.txt"]
    assert _search(location, query, mode, date_from="2024-01-01") == ["orchard.txt"]
    assert _search(location, query, mode, date_to="2023-12-31") == []
    assert _search(location, query, mode, doc_ids=("ships.md",), date_from="2024-01-01") == []
    grouped = _search(location, query, mode, group_by="document")
    assert len(grouped) == len(set(grouped))


def test_a_view_taken_before_a_commit_sees_none_of_it(built, embedder):
    docs, location = built
    backend = open_backend(location)
    with backend.snapshot() as before:
        write(docs, "ships.md", "# Harbour\n\nNothing about boats any more: only granite from the quarry.\n")
        build_index(docs, location, DEFAULT_MODEL, PARAMS, embedder=embedder)
        old = before.document_passages("ships.md")
        # The old version, or (where a backend deletes replaced rows after a grace period) nothing: never the new
        # text, never a mix.
        assert not any("granite" in p.text for p in old) and all("ferry" in p.text or "lighthouse" in p.text for p in old)
    backend.refresh()
    with backend.snapshot() as after:
        new = after.document_passages("ships.md")
        assert new and all("ferry" not in p.text for p in new) and any("granite" in p.text for p in new)
    backend.close()


def test_the_index_records_its_backend(built):
    _, location = built
    backend = open_backend(location)
    assert backend.settings.backend == location.backend == backend.name
    assert backend.counts().documents == 3
    backend.close()


def test_term_statistics_count_each_query_terms_passages(built):
    """The primitives hybrid fusion weighs the keyword ranking by: every backend counts document frequencies alike,
    and the term specificity computed from them above the contract is the same on every backend."""
    _, location = built
    backend = open_backend(location)
    try:
        with backend.snapshot() as view:
            statistics = view.term_statistics("before the telescope telescopes")
            assert statistics.passages == backend.counts().passages == 3
            assert dict(statistics.document_frequencies) == {"befor": 2, "telescop": 1}, "stop words are not terms"
            assert view.term_statistics("zzzunknown").document_frequencies == {"zzzunknown": 0}
            assert keyword_specificity(view, "the telescope") == pytest.approx(1.0), "a term held by one passage"
            assert keyword_specificity(view, "before") == pytest.approx(bm25_idf(2, 3) / bm25_idf(1, 3)), "held by two of three"
            assert keyword_specificity(view, "before the telescope") == pytest.approx(1.0), "the rarest term counts"
            assert keyword_specificity(view, "zzzunknown") is None and keyword_specificity(view, "the") is None
    finally:
        backend.close()


def test_a_warmed_up_searcher_answers_as_a_cold_one(built):
    """Warm-up (read-ahead of the index, one search, the heap frozen) changes when searches pay, not what they find."""
    import gc

    _, location = built
    cold = _hits(location, "comet seen through a telescope", "hybrid")
    searcher = Searcher.open(location)
    try:
        searcher.warm_up()
        warm = [(hit.doc_id, hit.text) for hit in searcher.search(SearchRequest("comet seen through a telescope", k=5)).hits]
    finally:
        searcher.backend.close()
        gc.unfreeze()
    assert warm == cold and warm[0][0] == "stars.md"


@pytest.mark.parametrize("mode", MODES)
def test_a_build_in_bounded_commits_answers_as_one_in_a_single_commit(built, backend_location, tmp_path, embedder, monkeypatch, mode):
    """A large build commits a batch at a time and the backend seals the fresh index (``RetrievalBackend.seal``):
    the same passages found, in the same order, as when everything went in at once."""
    docs, whole = built
    monkeypatch.setattr(changes, "COMMIT_PASSAGES", 1)  # every file a commit of its own
    batched = _location(backend_location, tmp_path)
    try:
        report = build_index(docs, batched, DEFAULT_MODEL, PARAMS, embedder=embedder)
        assert sorted(report.added) == sorted(DOCS)
        for query in ("comet seen through a telescope", "harvest before the frost", "ferry storm lighthouse"):
            assert _hits(batched, query, mode) == _hits(whole, query, mode)
    finally:
        backend_class(batched.backend).drop(batched)


def test_a_local_index_is_not_opened_as_another_backend_in_the_older_spelling(seed_index):
    settings = Settings(index=str(seed_index), backend="milvus", milvus_uri="http://127.0.0.1:9")
    with pytest.raises(IndexFormatError, match="'local' backend, not 'milvus'"):
        settings.location()


def test_an_index_url_names_its_backend_and_the_older_spelling_still_works(tmp_path):
    assert registry.locate(str(tmp_path)) == IndexLocation(tmp_path)
    located = registry.locate("milvus://127.0.0.1:19531/papers?index_type=IVF_FLAT")
    assert (located.backend, located.name, located.option("uri"), located.option("index_type")) == (
        "milvus",
        "papers",
        "http://127.0.0.1:19531",
        "IVF_FLAT",
    )
    older = Settings(index="papers", backend="milvus", milvus_uri="http://127.0.0.1:19531").location()
    assert (older.backend, older.name, older.option("uri")) == ("milvus", "papers", "http://127.0.0.1:19531")
    assert registry.locate("memory://notes").backend == "memory"
    for bad, message in (
        ("nosuch://x/y", "unknown backend 'nosuch'"),
        ("milvus://user:secret@127.0.0.1:19530/x", "put no credentials"),
        ("milvus://127.0.0.1:19530/", "milvus://HOST:PORT/NAME"),
        ("milvus://127.0.0.1:19530/x?password=1", "unknown milvus URL option 'password'"),
    ):
        with pytest.raises(SemsearchError, match=message):
            registry.locate(bad)


FACETED = {
    "ships.md": "# Harbour\n\nThe ferry left the harbour before the storm.\n",
    "notes/orchard.txt": "date 2023-05-01\n\nThe orchard gave apples for cider before the frost.\n",
    "notes/deep/stars.md": "date 2024-02-01\n\nA telescope on the hill showed the comet before dawn.\n",
    "logs/bakery.TXT": "date 2024-07-09\n\nThe bakery oven baked bread before sunrise.\n",
    "notes2/glacier.md": "A glacier covered the valley before the thaw.\n",
    "README": "Read this before anything else: a guide to the harbour and the orchard.\n",
}


def _brute_force_facets(documents: list[tuple[str, str | None]], folder: str | None) -> dict[str, Counter]:
    """Facet counts by hand: each document's extension, its year, its folder one level below ``folder``."""
    prefix = f"{folder}/" if folder else ""
    counts: dict[str, Counter] = {"type": Counter(), "folder": Counter(), "year": Counter()}
    for doc_id, date in documents:
        name = doc_id.rsplit("/", 1)[-1]
        if "." in name:
            counts["type"][name.rsplit(".", 1)[1]] += 1
        if date:
            counts["year"][date[:4]] += 1
        rest = doc_id[len(prefix) :]
        if doc_id.startswith(prefix) and "/" in rest:
            counts["folder"][prefix + rest.split("/")[0]] += 1
    return counts


def test_type_and_folder_filters_and_facet_counts_in_every_mode(backend_location, tmp_path, embedder):
    """Every candidate of the query is a document that passes the filters (each mentions "before"), so the
    facets must count exactly the catalogue's documents that ``Filters.admits``, counted here by hand."""
    docs = tmp_path / "docs"
    for name, text in FACETED.items():
        write(docs, name, text)
    location = _location(backend_location, tmp_path)
    build_index(docs, location, DEFAULT_MODEL, PARAMS, embedder=embedder)
    searcher = Searcher.open(location)
    try:
        catalogue = [(summary.doc_id, summary.date) for summary in searcher.backend.documents()]
        assert len(catalogue) == len(FACETED)
        everything = searcher.search(SearchRequest("before", k=100, facets=FACETS)).facets
        assert everything == {
            "type": {"md": 3, "TXT": 1, "txt": 1},
            "folder": {"notes": 2, "logs": 1, "notes2": 1},
            "year": {"2024": 2, "2023": 1},
        }
        cases: list[dict] = [
            {},
            {"types": ("md",)},
            {"types": ("TXT",)},
            {"types": ("txt", "md"), "folder": "notes"},
            {"folder": "notes"},
            {"folder": "notes/deep"},
            {"folder": "note"},
            {"date_from": "2024-01-01", "date_to": "2024-12-31"},
        ]
        for mode in MODES:
            for case in cases:
                result = searcher.search(SearchRequest("before", k=100, mode=mode, facets=FACETS, **case))
                filters = Filters(**case)
                admitted = [(doc_id, date) for doc_id, date in catalogue if filters.admits(doc_id, date)]
                assert sorted({hit.doc_id for hit in result.hits}) == sorted(doc_id for doc_id, _ in admitted), (mode, case)
                by_hand = _brute_force_facets(admitted, case.get("folder"))
                assert result.facets == {name: dict(counts) for name, counts in by_hand.items()}, (mode, case)
                assert list(result.facets["type"].values()) == sorted(result.facets["type"].values(), reverse=True)
    finally:
        searcher.backend.close()
        backend_class(location.backend).drop(location)


def test_a_view_with_a_vocabulary_corrects_typos_and_one_without_corrects_none(built, embedder, monkeypatch):
    """``TermVocabulary`` is optional: where a view offers it, typos are corrected to its terms, kept in step with
    the commits; a view without it corrects nothing. (Milvus reads its vocabulary again at most once every
    ``VOCABULARY_SECONDS``; here at once.)"""
    monkeypatch.setattr(milvus_terms, "VOCABULARY_SECONDS", 0.0)
    docs, location = built
    searcher = Searcher.open(location)
    try:
        with searcher.backend.snapshot() as view:
            offered = isinstance(view, TermVocabulary)
            held = view.vocabulary().passages if isinstance(view, TermVocabulary) else {}
        if offered:
            assert {term: held.get(term) for term in ("befor", "telescop", "oven")} == {"befor": 2, "telescop": 1, "oven": None}
        result = searcher.search(SearchRequest("telescpoe", k=3, mode="keyword"))
        if not offered:
            assert result.corrections == () and result.hits == []
            return
        assert [(c.original, c.corrected) for c in result.corrections] == [("telescpoe", "telescope")]
        assert result.hits[0].doc_id == "stars.md"
        write(docs, "bread.md", "# Bakery\n\nThe bakery oven baked bread from fresh flour.\n")
        build_index(docs, location, DEFAULT_MODEL, PARAMS, embedder=embedder)
        searcher.backend.refresh()
        with searcher.backend.snapshot() as view:
            assert isinstance(view, TermVocabulary) and view.vocabulary().passages.get("oven") == 1
        assert [c.corrected for c in searcher.search(SearchRequest("bakrey", k=1)).corrections] == ["bakery"]
    finally:
        searcher.backend.close()
