"""What one open local index is made of: the view and compaction take this record, not the backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from search.backends.local.store import PassageLocation, Store
from search.backends.local.term_index import KeywordIndex
from search.backends.local.vector_files import VectorFiles
from search.backends.local.vector_store import VectorStore
from search.index_settings import IndexSettings


@dataclass(frozen=True)
class LocalParts:
    """The open files of one index folder; ``locations`` looks passages up through the backend's cache."""

    folder: Path
    settings: IndexSettings
    store: Store
    vectors: VectorStore
    vector_files: VectorFiles
    passage_terms: KeywordIndex
    document_terms: KeywordIndex
    locations: Callable[[list[int]], dict[int, PassageLocation]]
