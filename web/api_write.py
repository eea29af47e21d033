"""``PUT``/``DELETE /documents/{doc_id}``: scripts add, replace and remove documents behind the admin token.

Both answer only once the change is searchable: the file is in the documents folder, the index
committed it and the live searcher sees it. Writes queue on the server's single writer (``IndexJobs``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.convertors import PathConvertor, register_url_convertor

from indexer.doc_ids import InvalidDocumentId
from indexer.readers import UnreadableDocument
from indexer.uploads import place_document, remove_document
from web.dependencies import get_jobs, require_admin
from web.engine import Engine
from web.jobs import IndexJobs
from web.middleware import UPLOAD_PATH_PREFIX
from web.schemas import ErrorResponse

router = APIRouter(tags=["documents"], dependencies=[Depends(require_admin)])


class _DocumentIdConvertor(PathConvertor):
    """A document id in a write path: any path but a document's page image (``.../pages/N.png``), a resource of
    its own that takes only GET; so a 405 there names GET alone, as its schema does."""

    regex = r"(?!.*/pages/[^/]+\.png$).*"


register_url_convertor("document_id", _DocumentIdConvertor())
_PATH = f"{UPLOAD_PATH_PREFIX}{{doc_id:document_id}}"
_ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorResponse} for status in (401, 403, 409, 413, 422)}


class DocumentWritten(BaseModel):
    doc_id: str
    state: str
    passages: int
    took_ms: float


@router.put(_PATH, status_code=201, response_model=DocumentWritten, responses={200: {"model": DocumentWritten}, **_ERRORS})
async def put_document(doc_id: str, request: Request, jobs: Annotated[IndexJobs, Depends(get_jobs)]) -> JSONResponse:
    """Create (201) or replace (200) a document from the raw request body; its extension picks the reader."""
    started = time.perf_counter()
    body = await request.body()
    settings = jobs.settings
    with jobs.metrics.uploading("put"), _as_422():
        created, _report = await run_in_threadpool(
            jobs.change_documents, lambda: place_document(settings.docs, doc_id, body, settings.max_file_bytes), [doc_id]
        )
    written = DocumentWritten(doc_id=doc_id, state="searchable", passages=_passages(jobs.engine, doc_id) or 0, took_ms=_ms(started))
    return JSONResponse(written.model_dump(), status_code=201 if created else 200)


@router.delete(_PATH, status_code=204, responses={404: {"model": ErrorResponse}, **_ERRORS})
async def delete_document(doc_id: str, jobs: Annotated[IndexJobs, Depends(get_jobs)]) -> Response:
    """Remove a document from the folder and the index (a document indexed but already gone from the folder too)."""
    with jobs.metrics.uploading("delete"):
        indexed = _passages(jobs.engine, doc_id) is not None
        with _as_422():
            removed, _report = await run_in_threadpool(jobs.change_documents, lambda: remove_document(jobs.settings.docs, doc_id), [doc_id])
        if not (removed or indexed):
            raise HTTPException(status_code=404, detail=f"no document {doc_id!r} in the folder or the index")
    return Response(status_code=204)


@contextmanager
def _as_422() -> Iterator[None]:
    """Ids and bodies the core refuses are the client's to fix: 422 with the core's reason."""
    try:
        yield
    except (InvalidDocumentId, UnreadableDocument) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


def _passages(engine: Engine, doc_id: str) -> int | None:
    """Passages of ``doc_id`` in the live searcher's index; None when it holds no such document."""
    searcher = engine.searcher
    if searcher is None:
        return None
    found = searcher.backend.documents([doc_id])
    return found[0].passages if found else None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
