"""An open index: the store, the vector segments, the float16 vector files and the keyword indexes.

Readers and the writer open it the same way. ``refresh`` picks up what a writer committed since
(new segments, tombstones, keyword commits) without re-reading what did not change, so a server
follows updates made by another process at the cost of what changed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from search.errors import IndexFormatError
from search.faiss_segments import FaissSegments
from search.index_format import (
    FIX_HINT,
    FORMAT_VERSION,
    KEYWORD_DOCUMENTS_DIR,
    KEYWORD_PASSAGES_DIR,
    SEGMENTS_DIR,
    STORE_FILE,
    VECTORS_DIR,
    live_folder,
)
from search.keyword import Analyzer, TermIndex, with_context
from search.settings import parse_quantize
from search.store import PassageLocation, Store
from search.vector_files import VectorFiles
from search.vector_store import VectorStore


@dataclass(frozen=True)
class IndexSettings:
    """What an index says about itself, fixed when it is created and checked on every open."""

    model: str
    dimension: int
    chunking: dict[str, Any]
    analyzer: Analyzer
    quantize: str | None = None

    def as_meta(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "dimension": self.dimension,
            "chunking": self.chunking,
            "analyzer": self.analyzer.as_dict(),
            "quantize": self.quantize,
        }


# About 10 MB of recently looked-up passage locations.
_CACHED_LOCATIONS = 50_000


class Index:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.store = Store(folder / STORE_FILE)
        self.settings = _settings_of(self.store.meta(), folder)
        self.vectors: VectorStore = FaissSegments(folder / SEGMENTS_DIR, self.settings.dimension)
        self.vector_files = VectorFiles(folder / VECTORS_DIR, {})
        self.passage_terms = TermIndex(folder / KEYWORD_PASSAGES_DIR)
        self.document_terms = TermIndex(folder / KEYWORD_DOCUMENTS_DIR)
        self._state: tuple[int, int] | None = None
        self._refresh_lock = threading.Lock()
        self._locations: dict[int, PassageLocation] = {}
        self.refresh()

    @classmethod
    def open(cls, index_dir: Path) -> "Index":
        return cls(live_folder(index_dir))

    @classmethod
    def create(cls, folder: Path, settings: IndexSettings) -> "Index":
        store = Store(folder / STORE_FILE, create=True)
        with store.transaction() as db:
            Store.set_meta(db, {**settings.as_meta(), "generation": 0, "next_passage": 1, "next_document": 1,
                                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        store.close()
        return cls(folder)

    def locations(self, ids: list[int]) -> dict[int, PassageLocation]:
        """Where passages lie, from recent lookups where possible.

        A passage's location never changes (ids are not reused, vector files are written once), so a cached
        entry cannot be wrong; it can outlive its passage, which is then dropped when the page is read. The
        cache is emptied when full: memory follows recent queries, not the collection.
        """
        cache = self._locations
        found = {pid: location for pid in ids if (location := cache.get(pid)) is not None}
        missing = [pid for pid in ids if pid not in found]
        if missing:
            fresh = self.store.locations(missing)
            if len(cache) + len(fresh) > _CACHED_LOCATIONS:
                cache.clear()
            cache.update(fresh)
            found.update(fresh)
        return found

    @property
    def generation(self) -> int:
        return self._state[0] if self._state else 0

    def keyword_pending(self) -> bool:
        return bool(self._state and self._state[1])

    def refresh(self) -> bool:
        """Open what was committed since the last call; False when nothing changed.

        One caller refreshes while the others keep searching the state they have.
        """
        state = self.store.state()
        if state == self._state or not self._refresh_lock.acquire(blocking=self._state is None):
            return False
        try:
            self.vectors.open([(s.id, s.file, s.kind) for s in self.store.segments()], self.store.tombstones())
            self.vector_files.update_names(self.store.vector_files())
            if self._state is not None:
                self.passage_terms.reload()
                self.document_terms.reload()
            self._state = state
        finally:
            self._refresh_lock.release()
        return True

    def replay_keyword_journal(self) -> int:
        """Bring the keyword indexes in step with the store after a writer died between the two commits.

        Safe to repeat (every added key is deleted first); the caller holds the writer lock.
        """
        entries = self.store.journal()
        analyzer = self.settings.analyzer
        for entry in entries:
            passages = self.store.passages(entry.added_passages)
            texts = self.store.document_texts({p.document_key for p in passages.values()} | set(entry.added_documents))
            self.passage_terms.apply(
                [(pid, p.document_key, " ".join(analyzer.terms(with_context(p.record.section, texts[p.document_key][1][p.record.start:p.record.end]))))
                 for pid, p in passages.items()],
                entry.removed_passages,
            )
            self.document_terms.apply(
                [(key, key, " ".join(analyzer.terms(texts[key][1]))) for key in entry.added_documents if key in texts],
                entry.removed_documents,
            )
        if entries:
            self.store.clear_journal([entry.generation for entry in entries])
            self.refresh()
        return len(entries)

    def close(self) -> None:
        self.store.close()


def _settings_of(meta: dict[str, Any], folder: Path) -> IndexSettings:
    if meta.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"index at {folder} has format {meta.get('format_version')}, this version reads {FORMAT_VERSION}; {FIX_HINT}"
        )
    try:
        return IndexSettings(
            meta["model"], int(meta["dimension"]), dict(meta["chunking"]), Analyzer.from_dict(meta["analyzer"]),
            parse_quantize(meta.get("quantize")),
        )
    except (KeyError, TypeError, ValueError):
        raise IndexFormatError(f"index store in {folder} has unexpected settings; {FIX_HINT}") from None
