"""Collection names, schemas and indexes of a Milvus index: the only module that knows field names and index types.

An index is a *set* of three collections sharing a name and a suffix (a full rebuild writes a new set and
flips a pointer to it):

    ss_<name>_<suffix>_passages   one row per passage: text (BM25 input), dense vector, offsets, filters
    ss_<name>_<suffix>_sentences  one row per sentence, id = passage id x 1,024 + position: its float16 vector
    ss_<name>_<suffix>_documents  the catalog: one row per <= 64 KB piece of a document's text (BM25 input
                                  for whole-document ranking); piece 0 also carries the file stats and hash

Every row carries ``doc_key`` (a document version's key: a document rewritten gets a new one) and the
``generation`` that wrote it, which is what readers filter on (see ``backend``).

Every lookup is by primary key or by a field with a scalar index. Ids are made from what a reader already
holds: a passage's id from its document version's key and its ordinal, a sentence's from its passage's id
and its position, a catalog piece's from the document version's key and the piece number. Every scalar a
filter names has an INVERTED index (``FILTERED``), so a filter is a posting-list lookup, not a scan.

Sentences have their own collection rather than a packed field: Milvus 2.5 has no bytes type, an ARRAY
holds at most 4,096 numbers and a VARCHAR 65,535 bytes, so any packed form caps sentences per passage,
while a FLOAT16_VECTOR row per sentence costs 2 bytes a dimension, half of float32.

Text is analyzed inside Milvus by an analyzer built from the index's own ``Analyzer`` (lower-casing, its
stop words, its Snowball stemmer), so BM25 sees the terms the local backend's tantivy index sees; the one
difference is the tokenizer (Milvus's Unicode ``standard`` one against our ``\\b\\w\\w+\\b``), which keeps
one-letter words.

Cluster settings (``ClusterSettings``, from the index URL): shards per collection, in-memory replicas at
load, and which fields are memory-mapped (text fields and sentence vectors by default: each search reads
them for a few hundred rows by id, so keeping them in memory buys nothing).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any

from pymilvus import DataType, Function, FunctionType, MilvusClient

from search.text.analyzer import Analyzer

VARCHAR_BYTES = 65_535
# A document type is a file extension of at most 16 letters and digits (``contract.document_type``).
TYPE_BYTES = 16
# Searches and reads of the index; the writer waits until its rows are visible at this level (``backend``).
READ_LEVEL = "Bounded"
# The writer's reads of the control rows that decide who may write (claims, the committed state).
WRITER_LEVEL = "Strong"
DEFAULT_INDEX_TYPE = "AUTOINDEX"
# Build and search parameters for the index types that take them; AUTOINDEX and FLAT take none.
_BUILD_PARAMS = {"IVF_FLAT": {"nlist": 1024}, "IVF_SQ8": {"nlist": 1024}, "HNSW": {"M": 16, "efConstruction": 200}}
_SEARCH_PARAMS = {"IVF_FLAT": {"nprobe": 64}, "IVF_SQ8": {"nprobe": 64}, "HNSW": {"ef": 256}}
INDEX_TYPES = ("AUTOINDEX", "FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW")
_SET_KINDS = ("passages", "sentences", "documents")
# Which fields ``mmap`` may name: "text" (passage and document text, titles, sentence spans, catalog
# metadata) and "sentences" (the sentence vectors and their index).
MMAP_CHOICES = ("text", "sentences")
# Scalar fields each collection filters on, every one with an INVERTED index (``tests`` read them back).
FILTERED = {
    "passages": ("doc_id", "doc_type", "doc_key", "generation", "date"),
    "sentences": ("doc_key", "generation"),
    "documents": ("doc_id", "doc_type", "doc_key", "generation", "date", "piece"),
}

PASSAGE_FIELDS = [
    "id",
    "doc_key",
    "doc_id",
    "ordinal",
    "start",
    "end",
    "page",
    "page_end",
    "section",
    "title",
    "date",
    "context",
    "text",
    "sentences",
]
# What a search returns with each hit: enough to rescore, shape and feed back without reading it again.
HIT_FIELDS = ["doc_key", "start", "end", "sentences", "vector"]


def index_base(name: str) -> str:
    """The collection-name stem of an index: Milvus allows letters, digits and underscores only, so other
    characters become underscores and a short hash of the real name keeps "a-b" and "a_b" apart."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)[:120]
    if clean != name:
        clean += "_" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]
    return f"ss_{clean}"


@dataclass(frozen=True)
class CollectionSet:
    """The three collections of one build of an index."""

    base: str
    suffix: str

    @property
    def name(self) -> str:
        return f"{self.base}_{self.suffix}"

    @property
    def passages(self) -> str:
        return f"{self.name}_passages"

    @property
    def sentences(self) -> str:
        return f"{self.name}_sentences"

    @property
    def documents(self) -> str:
        return f"{self.name}_documents"

    def collections(self) -> tuple[str, str, str]:
        return self.passages, self.sentences, self.documents

    @classmethod
    def all_of(cls, client: MilvusClient, base: str) -> list[CollectionSet]:
        """Every set of an index on the server, complete or left half-created by a crash."""
        pattern = re.compile(rf"^{re.escape(base)}_([0-9a-f]{{12}})_(?:{'|'.join(_SET_KINDS)})$")
        suffixes = {m.group(1) for name in client.list_collections() if (m := pattern.match(name))}
        return [cls(base, suffix) for suffix in sorted(suffixes)]


@dataclass(frozen=True)
class ClusterSettings:
    """How a set is laid out on a cluster: shards per collection (fixed at creation), in-memory replicas (at
    load) and the memory-mapped fields."""

    shards: int = 1
    replicas: int = 1
    mmap: tuple[str, ...] = MMAP_CHOICES

    @classmethod
    def parse(cls, shards: str | None, replicas: str | None, mmap: str | None) -> ClusterSettings:
        """From the index URL's ``shards``, ``replicas`` and ``mmap`` options (``mmap=none`` maps nothing)."""
        mapped = MMAP_CHOICES if mmap is None else tuple(part for part in mmap.lower().split(",") if part and part != "none")
        unknown = sorted(set(mapped) - set(MMAP_CHOICES))
        if unknown:
            raise ValueError(f"unknown mmap field {unknown[0]!r}; choose from {', '.join(MMAP_CHOICES)} or none")
        return cls(_count(shards, "shards", 1, 16), _count(replicas, "replicas", 1, 64), mapped)

    def as_meta(self) -> dict[str, Any]:
        return asdict(self) | {"mmap": list(self.mmap)}

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None) -> ClusterSettings:
        meta = meta or {}
        return cls(int(meta.get("shards", 1)), int(meta.get("replicas", 1)), tuple(meta.get("mmap", ())))


def _count(text: str | None, name: str, default: int, most: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise ValueError(f"milvus URL option {name} must be a whole number from 1 to {most}, not {text!r}")
    return int(text)


def milvus_analyzer(analyzer: Analyzer) -> dict:
    """The index's analyzer as Milvus ``analyzer_params``."""
    return {
        "tokenizer": "standard",
        "filter": [
            "lowercase",
            {"type": "stop", "stop_words": list(analyzer.stopwords)},
            {"type": "stemmer", "language": analyzer.stemmer},
        ],
    }


def parse_index_type(name: str | None) -> str:
    text = (name or DEFAULT_INDEX_TYPE).strip().upper()
    if text not in INDEX_TYPES:
        raise ValueError(f"unknown milvus_index_type {name!r}; choose one of {', '.join(INDEX_TYPES)}")
    return text


def dense_search_params(index_type: str, limit: int) -> dict:
    """Search parameters for ``limit`` hits: HNSW's ef is never below the limit (Milvus refuses ef < k)."""
    params = dict(_SEARCH_PARAMS.get(index_type, {}))
    if "ef" in params:
        params["ef"] = max(params["ef"], limit)
    return {"metric_type": "IP", "params": params}


def create_set(
    client: MilvusClient, names: CollectionSet, dimension: int, analyzer: Analyzer, index_type: str, cluster: ClusterSettings
) -> None:
    """Create the three collections of a set and load them with the configured replicas (a crash half-way
    leaves a set ``discard_stale`` drops)."""
    analyzed = milvus_analyzer(analyzer)
    _create_passages(client, names.passages, dimension, analyzed, index_type, cluster)
    _create_sentences(client, names.sentences, dimension, cluster)
    _create_documents(client, names.documents, analyzed, cluster)
    if cluster.replicas > 1:
        for collection in names.collections():
            # A loaded collection keeps its replica number: released first, then loaded with the new one.
            client.release_collection(collection)
            client.load_collection(collection, replica_number=cluster.replicas)


def release_set(client: MilvusClient, names: CollectionSet) -> None:
    """Free the memory of a set's collections (a superseded build) before dropping it."""
    for collection in names.collections():
        if client.has_collection(collection):
            client.release_collection(collection)


def drop_set(client: MilvusClient, names: CollectionSet) -> None:
    for collection in names.collections():
        if client.has_collection(collection):
            client.drop_collection(collection)


def _bm25(schema, text_field: str, analyzer: dict, mapped: bool) -> None:
    schema.add_field(
        text_field, DataType.VARCHAR, max_length=VARCHAR_BYTES, enable_analyzer=True, analyzer_params=analyzer, mmap_enabled=mapped
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(name=f"{text_field}_bm25", function_type=FunctionType.BM25, input_field_names=[text_field], output_field_names=["sparse"])
    )


def _keyed(client: MilvusClient):
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_key", DataType.INT64)
    schema.add_field("generation", DataType.INT64)
    return schema


def _indexes(client: MilvusClient, kind: str):
    indexes = client.prepare_index_params()
    for name in FILTERED[kind]:
        indexes.add_index(name, index_type="INVERTED")
    return indexes


def _create(client: MilvusClient, name: str, schema, indexes, cluster: ClusterSettings) -> None:
    client.create_collection(name, schema=schema, index_params=indexes, consistency_level=READ_LEVEL, num_shards=cluster.shards)


def _create_passages(client: MilvusClient, name: str, dimension: int, analyzer: dict, index_type: str, cluster: ClusterSettings) -> None:
    mapped = "text" in cluster.mmap
    schema = _keyed(client)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    schema.add_field("doc_type", DataType.VARCHAR, max_length=TYPE_BYTES)
    for number in ("ordinal", "start", "end", "page", "page_end", "context"):
        schema.add_field(number, DataType.INT64)
    for text in ("section", "title", "sentences"):
        schema.add_field(text, DataType.VARCHAR, max_length=VARCHAR_BYTES, mmap_enabled=mapped)
    schema.add_field("date", DataType.VARCHAR, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    _bm25(schema, "text", analyzer, mapped)
    indexes = _indexes(client, "passages")
    indexes.add_index("vector", index_type=index_type, metric_type="IP", params=_BUILD_PARAMS.get(index_type, {}))
    indexes.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    _create(client, name, schema, indexes, cluster)


def _create_sentences(client: MilvusClient, name: str, dimension: int, cluster: ClusterSettings) -> None:
    mapped = "sentences" in cluster.mmap
    schema = _keyed(client)
    schema.add_field("vector", DataType.FLOAT16_VECTOR, dim=dimension, mmap_enabled=mapped)
    indexes = _indexes(client, "sentences")
    # Never searched, only fetched by id: FLAT is the cheapest index Milvus will load.
    indexes.add_index("vector", index_type="FLAT", metric_type="IP", params={"mmap.enabled": mapped})
    _create(client, name, schema, indexes, cluster)


def _create_documents(client: MilvusClient, name: str, analyzer: dict, cluster: ClusterSettings) -> None:
    mapped = "text" in cluster.mmap
    schema = _keyed(client)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    schema.add_field("doc_type", DataType.VARCHAR, max_length=TYPE_BYTES)
    schema.add_field("piece", DataType.INT64)
    schema.add_field("date", DataType.VARCHAR, max_length=64)
    schema.add_field("pages", DataType.VARCHAR, max_length=VARCHAR_BYTES, mmap_enabled=mapped)
    schema.add_field("meta", DataType.VARCHAR, max_length=VARCHAR_BYTES, mmap_enabled=mapped)
    _bm25(schema, "text", analyzer, mapped)
    indexes = _indexes(client, "documents")
    indexes.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    _create(client, name, schema, indexes, cluster)
