"""Reads of the document catalog: the first piece of each document (its stats, hash and title), by ``doc_id``.

``doc_id`` and ``piece`` carry INVERTED indexes, so looking documents up by id reads their posting lists;
listing every document (a folder build's change detection) pages through the catalog with an iterator.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from search.backends.contract import iter_chunks
from search.backends.milvus.rows import sourced_row
from search.backends.milvus.schema import READ_LEVEL, CollectionSet
from search.backends.milvus.view import Committed

# What a summary and a writer's change need of a document; with its text, what a touched document is rewritten from.
HEAD_FIELDS = ["doc_id", "doc_key", "date", "meta"]
CATALOG_FIELDS = ["id", "doc_key", "generation", "doc_id", "doc_type", "piece", "date", "text", "pages", "meta"]
_KEYS_PER_QUERY = 1_000


def catalog_heads(
    client: Any, names: CollectionSet, committed: Committed, doc_ids: Iterable[str] | None, fields: list[str]
) -> list[dict[str, Any]]:
    """Piece 0 of each visible document, or of the named ones."""
    visible = f"{committed.expression()} and piece == 0"
    if doc_ids is None:
        iterator = client.query_iterator(
            names.documents, batch_size=1_000, filter=visible, output_fields=fields, consistency_level=READ_LEVEL
        )
        rows: list[dict[str, Any]] = []
        while batch := iterator.next():
            rows.extend(batch)
        iterator.close()
        return rows
    return [
        row
        for chunk in iter_chunks(sorted(set(doc_ids)), _KEYS_PER_QUERY)
        for row in client.query(
            names.documents, filter=f"{visible} and doc_id in {json.dumps(chunk)}", output_fields=fields, consistency_level=READ_LEVEL
        )
    ]


def set_sources(client: Any, names: CollectionSet, committed: Committed, sources: Iterable[tuple[str, str]]) -> None:
    """Give these documents new ``source`` strings (their content unchanged): one upsert of their piece-0 rows."""
    new = dict(sources)
    heads = catalog_heads(client, names, committed, list(new), CATALOG_FIELDS) if new else []
    if heads:
        client.upsert(names.documents, [sourced_row(row, new[row["doc_id"]]) for row in heads])
