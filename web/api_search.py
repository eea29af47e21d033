"""``/search``: the one ranking path, used by scripts and by the page alike."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from search.ranking.rules import DEFAULT_MODE, FACETS, GROUP_BY_VALUES, MAX_K, MAX_OFFSET, MAX_QUERY_CHARS, MODES
from search.ranking.searcher import Searcher
from web.dependencies import current_searcher, require_reader
from web.schemas import TOKEN_ERRORS, CorrectionModel, ErrorResponse, SearchBody, SearchParams, SearchResponse

router = APIRouter(tags=["search"], dependencies=[Depends(require_reader)], responses=TOKEN_ERRORS)
_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse} for status in (413, 422, 503)}
# A body that is not UTF-8 or that json cannot take (e.g. nested too deep) is answered 400 by FastAPI itself.
_BODY_ERRORS: dict[int | str, dict[str, Any]] = {**_ERRORS, 400: {"model": ErrorResponse}}


@router.get("/search/rules")
def search_rules() -> dict:
    """The limits and choices of a search, as the core defines them: the page reads them from here."""
    return {
        "modes": list(MODES),
        "default_mode": DEFAULT_MODE,
        "max_k": MAX_K,
        "max_offset": MAX_OFFSET,
        "max_query_chars": MAX_QUERY_CHARS,
        "group_by": list(GROUP_BY_VALUES),
        "facets": list(FACETS),
    }


@router.get("/search", response_model=SearchResponse, responses=_ERRORS)
def search_get(
    params: Annotated[SearchParams, Query()], searcher: Annotated[Searcher, Depends(current_searcher)], http: Request
) -> Response:
    """Search with query parameters: ``/search?q=...&k=10``."""
    return run_search(params, searcher, http)


@router.post("/search", response_model=SearchResponse, responses=_BODY_ERRORS)
def search_post(params: SearchBody, searcher: Annotated[Searcher, Depends(current_searcher)], http: Request) -> Response:
    """Search with the same fields as a JSON body."""
    return run_search(params, searcher, http)


def run_search(params: SearchParams, searcher: Searcher, http: Request) -> Response:
    """Rank, count and time the search, and give the access log its mode, result count and query.

    The response is validated once, here, and serialized by pydantic; handing the model back to FastAPI
    would validate it a second time against ``response_model`` (which stays, for the OpenAPI schema)."""
    started = time.perf_counter()
    request = params.as_request()
    log_fields: dict[str, object] = {"mode": request.mode, "query": params.q}
    http.state.log_fields = log_fields
    with http.app.state.metrics.searching(request.mode):
        result = searcher.search(request)
    log_fields["results"] = len(result.hits)
    response = SearchResponse(
        query=params.q,
        k=params.k,
        offset=params.offset,
        total=result.total,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
        mode=result.mode,
        notices=list(result.notices),
        searched=result.searched,
        corrections=[CorrectionModel.model_validate({"from": c.original, "to": c.corrected}) for c in result.corrections],
        facets=result.facets,
        results=result.hits,
    )
    return Response(response.model_dump_json(), media_type="application/json")
