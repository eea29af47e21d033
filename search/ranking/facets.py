"""Facet counts: how a search's candidates split across document types, folders and years.

A count is the number of distinct documents among the fused candidates before the cut to k: the set that
``total`` counts (after fusion, feedback, de-duplication, grouping and the score floor, the request's
filters applied), so it does not change with k or offset, and a document counts once however many of its
passages are candidates. Hybrid search thus counts the documents either ranking brought in, which is what
its results are drawn from, not one ranking's matches alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from search.backends.contract import document_type


def facet_counts(documents: Iterable[tuple[str, str | None]], names: Sequence[str], folder: str | None) -> dict[str, dict[str, int]]:
    """For each facet in ``names``, the documents (``(doc_id, date)``, each once) per value, commonest first.

    ``type`` is the file extension (``document_type``), ``year`` the date's year (undated documents have
    none), ``folder`` the folder one level below the ``folder`` filter (the top level without one) that holds
    the document; a document directly in that folder has none.
    """
    counters: dict[str, Counter[str]] = {name: Counter() for name in names}
    for doc_id, date in documents:
        values = {"type": document_type(doc_id), "year": date[:4] if date else None, "folder": subfolder(doc_id, folder)}
        for name, counter in counters.items():
            if (value := values[name]) is not None:
                counter[value] += 1
    return {name: dict(sorted(counter.items(), key=lambda item: (-item[1], item[0]))) for name, counter in counters.items()}


def subfolder(doc_id: str, folder: str | None) -> str | None:
    """The folder one level below ``folder`` (the top level when None) that holds ``doc_id``, as a path from
    the documents folder; None for a document directly in ``folder`` or outside it."""
    prefix = f"{folder}/" if folder else ""
    if not doc_id.startswith(prefix):
        return None
    child, slash, _ = doc_id[len(prefix) :].partition("/")
    return prefix + child if slash else None
