"""The rules of a request, checked in one place (``validate_request``) for the API, the CLI and the library alike."""

from __future__ import annotations

import pytest

from search.errors import InvalidQuery
from search.ranking.rules import MAX_QUERY_CHARS, SearchRequest, validate_request


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"query": " "}, "the query is empty"),
        ({"query": "x" * (MAX_QUERY_CHARS + 1)}, "longer than 10000 characters"),
        ({"k": 0}, "k must be between 1 and 100"),
        ({"offset": -1}, "offset must be between"),
        ({"mode": "fuzzy"}, "unknown mode 'fuzzy'"),
        ({"date_from": "2025-1-5"}, "date_from must be a date"),
        ({"group_by": "sentence"}, "unknown group_by 'sentence'; choose document"),
        ({"min_score": float("nan")}, "min_score must be a number"),
        ({"min_score": 1e9}, "min_score must be a number"),
    ],
)
def test_each_rule_names_what_is_wrong(changes, message):
    with pytest.raises(InvalidQuery, match=message):
        validate_request(SearchRequest(**{"query": "question", **changes}))


def test_a_valid_request_passes_and_groups_by_document():
    request = SearchRequest("question", group_by="document", min_score=0.5, date_from="2025-01-05")
    validate_request(request)
    assert request.group_by_document and not SearchRequest("question").group_by_document
