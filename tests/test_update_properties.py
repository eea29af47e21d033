"""Property: however an index got here (adds, updates, touches, deletes, compactions), it answers like a fresh build.

Each seeded sequence changes a small documents folder step by step, bringing the index up to date with
``build_index`` after each step and sometimes forcing a compaction; at the end the index must hold the
same documents and passages as a fresh build of the same folder and rank exactly like it, by exact
vector search and by BM25.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

from indexer.build import build_index
from indexer.chunking import ChunkingParams
from search.backends.contract import DocumentKeywordSearch, ExactDenseSearch, IndexLocation, Maintainable, Ranking, ReadView
from search.backends.registry import AnyBackend, backend_class, open_backend
from search.encoding.embedder import Embedder
from search.settings import DEFAULT_MODEL

pytestmark = pytest.mark.slow

# Small passages, so a few sentences make documents of several passages.
PARAMS = ChunkingParams(max_tokens=32, overlap_sentences=1)
SEQUENCES = 15
WORDS = [
    "harbour",
    "lighthouse",
    "storm",
    "ferry",
    "tide",
    "orchard",
    "apple",
    "cider",
    "harvest",
    "winter",
    "telescope",
    "galaxy",
    "comet",
    "night",
    "bakery",
    "bread",
    "flour",
    "oven",
    "railway",
    "tunnel",
    "engine",
    "station",
    "library",
    "atlas",
    "archive",
    "glacier",
    "snow",
    "ice",
    "vineyard",
    "grape",
    "barrel",
    "autumn",
    "river",
    "bridge",
    "market",
    "copper",
    "lantern",
    "meadow",
    "falcon",
    "quarry",
    "granite",
]
QUERIES = ("storm over the harbour", "apple harvest in winter", "telescope comet galaxy", "granite quarry bridge", "snow")
OPERATIONS = ("add", "add", "update", "delete", "touch", "compact")


def _sentence(rng: random.Random) -> str:
    words = rng.sample(WORDS, rng.randint(5, 9))
    return " ".join(words).capitalize() + "."


def _text(rng: random.Random, name: str) -> str:
    """Random sentences; Markdown documents get headings, so passages carry sections."""
    sentences = [_sentence(rng) for _ in range(rng.randint(1, 6))]
    if not name.endswith(".md"):
        return " ".join(sentences) + "\n"
    middle = len(sentences) // 2
    title, subtitle = rng.choice(WORDS).title(), rng.choice(WORDS).title()
    return f"# {title}\n\n{' '.join(sentences[:middle])}\n\n## {subtitle}\n\n{' '.join(sentences[middle:])}\n"


class Folder:
    """A documents folder changed by random steps; every write gets a new, distinct mtime."""

    def __init__(self, path: Path, rng: random.Random) -> None:
        self.path, self.rng = path, rng
        self._clock = 1_700_000_000 * 10**9
        self._serial = 0
        path.mkdir()

    def files(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir())

    def _stamp(self, name: str) -> None:
        self._clock += 10**9
        os.utime(self.path / name, ns=(self._clock, self._clock))

    def add(self) -> str:
        self._serial += 1
        name = f"doc{self._serial:02d}{self.rng.choice(('.txt', '.md'))}"
        (self.path / name).write_text(_text(self.rng, name), encoding="utf-8")
        self._stamp(name)
        return f"add {name}"

    def update(self) -> str:
        name = self.rng.choice(self.files())
        (self.path / name).write_text(_text(self.rng, name), encoding="utf-8")
        self._stamp(name)
        return f"update {name}"

    def touch(self) -> str:
        name = self.rng.choice(self.files())
        self._stamp(name)
        return f"touch {name}"

    def delete(self) -> str:
        name = self.rng.choice(self.files())
        (self.path / name).unlink()
        return f"delete {name}"


def _build(docs: Path, index: IndexLocation, embedder: Embedder, full: bool = False) -> None:
    build_index(docs, index, DEFAULT_MODEL, PARAMS, full=full, embedder=embedder)


def _compact(location: IndexLocation) -> None:
    kind = backend_class(location.backend)
    with kind.writer(location):
        index = kind.open(location)
        try:
            if isinstance(index, Maintainable):
                index.maintain(force=True)
        finally:
            index.close()


def _passage_keys(view: ReadView, doc_ids: list[str]) -> dict[int, tuple]:
    """Passage id -> (doc_id, start, end, page, section): what a passage is, whatever id it got."""
    return {
        p.record.key: (p.record.doc_id, p.record.start, p.record.end, p.record.page, p.record.section)
        for doc_id in doc_ids
        for p in view.document_passages(doc_id)
    }


def _ranked(ids: np.ndarray, scores: np.ndarray, names: Mapping[int, object]) -> list[tuple[object, float]]:
    return [(names[int(i)], float(s)) for i, s in zip(ids, scores)]


def _assert_same_ranking(got: list[tuple], want: list[tuple], tolerance: float, what: str) -> None:
    """Same results in the same order, scores within ``tolerance`` (the generated texts are distinct: no near-ties)."""
    assert [key for key, _ in got] == [key for key, _ in want], what
    assert np.allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=tolerance), what


def _assert_answers_like(updated: AnyBackend, fresh: AnyBackend, embedder: Embedder, history: list[str]) -> None:
    what = "after " + ", ".join(history)
    keyword_entries_deleted = any(step.startswith(("update", "delete")) for step in history)
    summaries = updated.documents()
    assert summaries == fresh.documents(), what
    doc_ids = [summary.doc_id for summary in summaries]
    with updated.snapshot() as view, fresh.snapshot() as fresh_view:
        names, fresh_names = _passage_keys(view, doc_ids), _passage_keys(fresh_view, doc_ids)
        assert sorted(names.values()) == sorted(fresh_names.values()), what
        everything = max(len(names), 1)
        for query, vector in zip(QUERIES, embedder.encode(list(QUERIES))):
            _assert_same_ranking(
                _ranked(*_exact(view, vector, everything), names),
                _ranked(*_exact(fresh_view, vector, everything), fresh_names),
                1e-5,
                f"vector results for {query!r} {what}",
            )
            for label, search, fresh_search in _keyword_searches(view, fresh_view):
                got = _ranked(*search(query, everything), names)
                want = _ranked(*fresh_search(query, everything), fresh_names)
                if keyword_entries_deleted:
                    # A BM25 engine may keep a deleted entry in its statistics (document frequency, document count,
                    # average length) until a merge drops it, so after an update or a delete the scores, and with
                    # them the order, may differ from a fresh build: only what matches can be compared.
                    assert {key for key, _ in got} == {key for key, _ in want}, f"{label} BM25 matches for {query!r} {what}"
                else:
                    _assert_same_ranking(got, want, 1e-4, f"{label} BM25 results for {query!r} {what}")


@pytest.mark.parametrize("seed", range(SEQUENCES))
def test_any_sequence_of_changes_answers_like_a_fresh_build(seed, embedder, tmp_path, backend_location):
    rng = random.Random(seed)
    folder = Folder(tmp_path / "docs", rng)
    index_dir = backend_location(tmp_path / "index")
    history = [folder.add() for _ in range(rng.randint(1, 3))]
    _build(folder.path, index_dir, embedder)
    for _ in range(rng.randint(3, 6)):
        operation = rng.choice(OPERATIONS if folder.files() else ("add",))
        if operation == "compact":
            _compact(index_dir)
            history.append("compact")
            continue
        history.append(getattr(folder, operation)())
        _build(folder.path, index_dir, embedder)
    fresh_dir = backend_location(tmp_path / "fresh")
    _build(folder.path, fresh_dir, embedder, full=True)
    updated, fresh = open_backend(index_dir), open_backend(fresh_dir)
    try:
        _assert_answers_like(updated, fresh, embedder, history)
    finally:
        updated.close()
        fresh.close()


def _exact(view: ReadView, vector: np.ndarray, k: int) -> Ranking:
    """Exhaustive search where the backend offers it, else its own answer (exhaustive on the lite server)."""
    return view.dense_exact(vector, k) if isinstance(view, ExactDenseSearch) else view.dense(vector, k)


def _keyword_searches(
    view: ReadView, fresh_view: ReadView
) -> list[tuple[str, Callable[[str, int], Ranking], Callable[[str, int], Ranking]]]:
    """Passage BM25, and whole-document BM25 where the backend offers it."""
    searches: list[tuple[str, Callable[[str, int], Ranking], Callable[[str, int], Ranking]]] = [
        ("passage", view.keyword, fresh_view.keyword)
    ]
    if isinstance(view, DocumentKeywordSearch) and isinstance(fresh_view, DocumentKeywordSearch):
        searches.append(("document", view.keyword_documents, fresh_view.keyword_documents))
    return searches
