"""Collection names and schemas of a Milvus index: the only module that knows field names and index types.

An index is a *set* of three collections sharing a name and a suffix (a full rebuild writes a new set and
flips a pointer to it):

    ss_<name>_<suffix>_passages   one row per passage: text (BM25 input), dense vector, offsets, filters
    ss_<name>_<suffix>_sentences  one row per sentence: its passage, position and float16 vector
    ss_<name>_<suffix>_documents  the catalog: one row per <= 64 KB piece of a document's text (BM25 input
                                  for whole-document ranking); piece 0 also carries the file stats and hash

Every row carries ``doc_key`` (a document version's key: a document rewritten gets a new one) and the
``generation`` that wrote it, which is what readers filter on (see ``backend``).

Sentences have their own collection rather than a packed field: Milvus 2.5 has no bytes type, an ARRAY
holds at most 4,096 numbers and a VARCHAR 65,535 bytes, so any packed form caps sentences per passage,
while a FLOAT16_VECTOR row per sentence has no cap and costs 2 bytes a dimension, half of float32.

Text is analyzed inside Milvus by an analyzer built from the index's own ``Analyzer`` (lower-casing, its
stop words, its Snowball stemmer), so BM25 sees the terms the local backend's tantivy index sees; the one
difference is the tokenizer (Milvus's Unicode ``standard`` one against our ``\\b\\w\\w+\\b``), which keeps
one-letter words.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pymilvus import DataType, Function, FunctionType, MilvusClient

from search.text.analyzer import Analyzer

VARCHAR_BYTES = 65_535
CONSISTENCY = "Strong"
DEFAULT_INDEX_TYPE = "AUTOINDEX"
# Build and search parameters for the index types that take them; AUTOINDEX and FLAT take none.
_BUILD_PARAMS = {"IVF_FLAT": {"nlist": 1024}, "IVF_SQ8": {"nlist": 1024}, "HNSW": {"M": 16, "efConstruction": 200}}
_SEARCH_PARAMS = {"IVF_FLAT": {"nprobe": 64}, "IVF_SQ8": {"nprobe": 64}, "HNSW": {"ef": 256}}
INDEX_TYPES = ("AUTOINDEX", "FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW")
_SET_KINDS = ("passages", "sentences", "documents")

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


def dense_search_params(index_type: str) -> dict:
    return {"metric_type": "IP", "params": _SEARCH_PARAMS.get(index_type, {})}


def create_set(client: MilvusClient, names: CollectionSet, dimension: int, analyzer: Analyzer, index_type: str) -> None:
    """Create the three collections of a set (a crash half-way leaves a set ``discard_stale`` drops)."""
    analyzed = milvus_analyzer(analyzer)
    _create_passages(client, names.passages, dimension, analyzed, index_type)
    _create_sentences(client, names.sentences, dimension)
    _create_documents(client, names.documents, analyzed)


def drop_set(client: MilvusClient, names: CollectionSet) -> None:
    for collection in names.collections():
        if client.has_collection(collection):
            client.drop_collection(collection)


def _bm25(schema, text_field: str, analyzer: dict) -> None:
    schema.add_field(text_field, DataType.VARCHAR, max_length=VARCHAR_BYTES, enable_analyzer=True, analyzer_params=analyzer)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(name=f"{text_field}_bm25", function_type=FunctionType.BM25, input_field_names=[text_field], output_field_names=["sparse"])
    )


def _keyed(client: MilvusClient, auto_id: bool = False):
    schema = client.create_schema(auto_id=auto_id, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_key", DataType.INT64)
    schema.add_field("generation", DataType.INT64)
    return schema


def _create_passages(client: MilvusClient, name: str, dimension: int, analyzer: dict, index_type: str) -> None:
    schema = _keyed(client)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    for number in ("ordinal", "start", "end", "page", "page_end", "context"):
        schema.add_field(number, DataType.INT64)
    for text in ("section", "title", "sentences"):
        schema.add_field(text, DataType.VARCHAR, max_length=VARCHAR_BYTES)
    schema.add_field("date", DataType.VARCHAR, max_length=64)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    _bm25(schema, "text", analyzer)
    indexes = client.prepare_index_params()
    indexes.add_index("vector", index_type=index_type, metric_type="IP", params=_BUILD_PARAMS.get(index_type, {}))
    indexes.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(name, schema=schema, index_params=indexes, consistency_level=CONSISTENCY)


def _create_sentences(client: MilvusClient, name: str, dimension: int) -> None:
    schema = _keyed(client, auto_id=True)
    schema.add_field("passage", DataType.INT64)
    schema.add_field("position", DataType.INT64)
    schema.add_field("vector", DataType.FLOAT16_VECTOR, dim=dimension)
    indexes = client.prepare_index_params()
    # Never searched, only fetched by passage: FLAT is the cheapest index Milvus will load.
    indexes.add_index("vector", index_type="FLAT", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=indexes, consistency_level=CONSISTENCY)


def _create_documents(client: MilvusClient, name: str, analyzer: dict) -> None:
    schema = _keyed(client)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    schema.add_field("piece", DataType.INT64)
    schema.add_field("date", DataType.VARCHAR, max_length=64)
    schema.add_field("pages", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    schema.add_field("meta", DataType.VARCHAR, max_length=VARCHAR_BYTES)
    _bm25(schema, "text", analyzer)
    indexes = client.prepare_index_params()
    indexes.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(name, schema=schema, index_params=indexes, consistency_level=CONSISTENCY)
