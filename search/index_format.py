"""The on-disk index format: the only module that knows file names and the manifest.

An index folder holds versions side by side and a ``CURRENT`` file naming the live one::

    indexes/default/
        CURRENT                 # "v-20261124T051500-1a2b3c"
        .lock                   # held by the one writer
        v-20261124T051500-1a2b3c/
            manifest.json       # written last: format, model, chunking, document hashes, file checksums
            vectors.faiss
            passages.json
            documents.json
            sentences.json
            sentence_vectors.npy
            keyword/            # BM25 over the same passages (row i is passage i here too)

A new version is written into a temporary folder, renamed into place and then published by
atomically replacing ``CURRENT``; a crash at any moment leaves the previous version live.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from filelock import FileLock, Timeout

from search.errors import IndexFormatError, IndexLocked, IndexNotFound
from search.keyword import KeywordIndex
from search.records import DocumentRecord, PassageRecord, SentenceRecord

FORMAT_VERSION = 1
CURRENT_FILE = "CURRENT"
LOCK_FILE = ".lock"
MANIFEST_FILE = "manifest.json"
VECTORS_FILE = "vectors.faiss"
PASSAGES_FILE = "passages.json"
DOCUMENTS_FILE = "documents.json"
SENTENCES_FILE = "sentences.json"
SENTENCE_VECTORS_FILE = "sentence_vectors.npy"
KEYWORD_DIR = "keyword"
_DATA_FILES = (VECTORS_FILE, PASSAGES_FILE, DOCUMENTS_FILE, SENTENCES_FILE, SENTENCE_VECTORS_FILE)
_VERSION_PREFIX = "v-"
_TEMP_PREFIX = ".tmp-"
FIX_HINT = "rebuild it with `semsearch index --full`"


@dataclass(frozen=True)
class Manifest:
    """What an index says about itself; checked on every load."""

    format_version: int
    model: str
    dimension: int
    chunking: dict[str, Any]
    documents: dict[str, str]
    passage_count: int
    built_at: str
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class IndexData:
    """A whole index in memory. Row i of ``vectors`` is ``passages[i]``; row i of ``sentence_vectors`` is ``sentences[i]``."""

    manifest: Manifest
    vectors: faiss.Index
    passages: list[PassageRecord]
    documents: dict[str, DocumentRecord]
    sentences: list[SentenceRecord]
    sentence_vectors: np.ndarray
    keyword: KeywordIndex
    version: str = ""

    def vector_matrix(self) -> np.ndarray:
        """All stored vectors, so an incremental build can keep them without re-embedding."""
        if self.vectors.ntotal == 0:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        return self.vectors.reconstruct_n(0, self.vectors.ntotal)


def new_manifest(model: str, dimension: int, chunking: dict[str, Any], documents: dict[str, str], passage_count: int) -> Manifest:
    """A manifest stamped with the current format version and time."""
    return Manifest(
        format_version=FORMAT_VERSION,
        model=model,
        dimension=dimension,
        chunking=dict(chunking),
        documents=dict(documents),
        passage_count=passage_count,
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def vectors_from_matrix(matrix: np.ndarray, dimension: int) -> faiss.Index:
    """Exact inner-product search: corpora of this size are searched exhaustively in milliseconds."""
    index = faiss.IndexFlatIP(dimension)
    if len(matrix):
        index.add(np.ascontiguousarray(matrix, dtype=np.float32))
    return index


@contextmanager
def hold_writer_lock(index_dir: Path) -> Iterator[None]:
    """The one-writer guarantee: a second writer is refused at once instead of interleaving."""
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(index_dir / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise IndexLocked(f"another process is writing the index at {index_dir}; wait for it to finish") from None
    try:
        yield
    finally:
        lock.release()


def index_exists(index_dir: Path) -> bool:
    return (index_dir / CURRENT_FILE).is_file()


def current_version(index_dir: Path) -> str:
    """Name of the live version folder."""
    try:
        name = (index_dir / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexNotFound(f"no index at {index_dir}; build one with `semsearch index`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexFormatError(f"cannot read {index_dir / CURRENT_FILE} ({exc}); {FIX_HINT}") from None
    if not name.startswith(_VERSION_PREFIX) or "/" in name or not (index_dir / name).is_dir():
        raise IndexFormatError(f"{index_dir / CURRENT_FILE} names no version folder; {FIX_HINT}")
    return name


def save_index(index_dir: Path, data: IndexData) -> str:
    """Write ``data`` as a new version and make it live; returns the version name.

    The caller holds the writer lock.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    version = f"{_VERSION_PREFIX}{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    temp = index_dir / f"{_TEMP_PREFIX}{version}"
    temp.mkdir()
    faiss.write_index(data.vectors, str(temp / VECTORS_FILE))
    _write_json(temp / PASSAGES_FILE, [asdict(p) for p in data.passages])
    _write_json(temp / DOCUMENTS_FILE, [asdict(d) for d in data.documents.values()])
    _write_json(temp / SENTENCES_FILE, [[s.doc_id, s.start, s.end] for s in data.sentences])
    np.save(temp / SENTENCE_VECTORS_FILE, np.ascontiguousarray(data.sentence_vectors, dtype=np.float32), allow_pickle=False)
    data.keyword.save(temp / KEYWORD_DIR)
    checksums = {path.relative_to(temp).as_posix(): _file_sha256(path) for path in sorted(temp.rglob("*")) if path.is_file()}
    manifest = Manifest(**{**asdict(data.manifest), "files": checksums})
    _write_json(temp / MANIFEST_FILE, asdict(manifest))
    for path in temp.rglob("*"):
        if path.is_file():
            _fsync_file(path)
    final = index_dir / version
    os.rename(temp, final)
    _fsync_dir(index_dir)
    pointer = index_dir / f"{_TEMP_PREFIX}{CURRENT_FILE}"
    pointer.write_text(version + "\n", encoding="utf-8")
    _fsync_file(pointer)
    os.replace(pointer, index_dir / CURRENT_FILE)
    _fsync_dir(index_dir)
    data.manifest = manifest
    data.version = version
    remove_stale_versions(index_dir)
    return version


def remove_stale_versions(index_dir: Path) -> list[str]:
    """Delete versions that are not live and leftovers of interrupted builds; the caller holds the lock."""
    try:
        live = current_version(index_dir)
    except (IndexNotFound, IndexFormatError):
        live = None
    removed = []
    for entry in index_dir.iterdir():
        stale_version = entry.name.startswith(_VERSION_PREFIX) and entry.name != live
        if (stale_version or entry.name.startswith(_TEMP_PREFIX)) and entry.name != LOCK_FILE:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def load_index(index_dir: Path) -> IndexData:
    """Read the live version, verifying the manifest against the files it describes."""
    version = current_version(index_dir)
    folder = index_dir / version
    raw = _read_json(folder / MANIFEST_FILE)
    manifest = _parse_manifest(raw, folder / MANIFEST_FILE)
    if not set(_DATA_FILES) <= set(manifest.files) or not any(n.startswith(f"{KEYWORD_DIR}/") for n in manifest.files):
        raise IndexFormatError(f"{folder / MANIFEST_FILE} does not list the index files; {FIX_HINT}")
    for name, expected in manifest.files.items():
        path = folder / name
        if not path.is_file():
            raise IndexFormatError(f"index file {path} is missing; {FIX_HINT}")
        if _file_sha256(path) != expected:
            raise IndexFormatError(f"index file {path} is damaged (checksum mismatch); {FIX_HINT}")
    try:
        vectors = faiss.read_index(str(folder / VECTORS_FILE))
    except RuntimeError:
        raise IndexFormatError(f"index file {folder / VECTORS_FILE} cannot be read; {FIX_HINT}") from None
    try:
        passages = [PassageRecord(**p) for p in _read_json(folder / PASSAGES_FILE)]
        documents = {d["doc_id"]: DocumentRecord(**d) for d in _read_json(folder / DOCUMENTS_FILE)}
        sentences = [SentenceRecord(*row) for row in _read_json(folder / SENTENCES_FILE)]
        sentence_vectors = np.load(folder / SENTENCE_VECTORS_FILE, allow_pickle=False)
    except (TypeError, KeyError, ValueError):
        raise IndexFormatError(f"index files in {folder} have unexpected fields; {FIX_HINT}") from None
    keyword = KeywordIndex.load(folder / KEYWORD_DIR)
    if not vectors.ntotal == len(passages) == len(keyword) == manifest.passage_count:
        raise IndexFormatError(
            f"index in {folder} is inconsistent: {vectors.ntotal} vectors, {len(passages)} passages, "
            f"{len(keyword)} keyword rows, manifest says {manifest.passage_count}; {FIX_HINT}"
        )
    if vectors.d != manifest.dimension or sentence_vectors.shape != (len(sentences), manifest.dimension):
        raise IndexFormatError(f"vectors in {folder} do not match the manifest's dimension or row counts; {FIX_HINT}")
    return IndexData(manifest, vectors, passages, documents, sentences, sentence_vectors, keyword, version)


def _parse_manifest(raw: Any, path: Path) -> Manifest:
    if not isinstance(raw, dict):
        raise IndexFormatError(f"{path} is not a manifest; {FIX_HINT}")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexFormatError(
            f"index format version {version} at {path.parent} is not the supported version {FORMAT_VERSION}; {FIX_HINT}"
        )
    try:
        return Manifest(**raw)
    except TypeError:
        raise IndexFormatError(f"{path} has unexpected fields; {FIX_HINT}") from None


def _read_json(path: Path) -> Any:
    try:
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise IndexFormatError(f"index file {path} is missing; {FIX_HINT}") from None
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"index file {path} cannot be read ({type(exc).__name__}); {FIX_HINT}") from None


def _write_json(path: Path, payload: Any) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(payload, handle, ensure_ascii=False)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
