"""Operations: ``/health`` for load balancers; ``/index`` (re-indexing) and ``/admin/snapshot`` behind the admin token."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from search.backends.local.layout import snapshot_name
from search.backends.local.snapshot import take_snapshot
from search.settings import Settings
from web.dependencies import get_engine, get_jobs, get_settings_dep, require_admin, require_reader
from web.engine import Engine
from web.index_stats import index_stats
from web.jobs import IndexJobs, JobAlreadyRunning
from web.schemas import TOKEN_ERRORS, ErrorResponse, HealthResponse, JobStatusModel, SnapshotWritten

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
def health(engine: Annotated[Engine, Depends(get_engine)]) -> JSONResponse:
    """200 when searches can be answered, 503 with the reason when not."""
    searcher = engine.searcher
    if searcher is None:
        body = HealthResponse(
            status="unavailable",
            reason=engine.unavailable_reason,
            model=None,
            encoder=None,
            index_version=None,
            backend=engine.location.backend,
            documents=0,
            passages=0,
        )
        return JSONResponse(body.model_dump(), status_code=503)
    stats = index_stats(searcher)
    body = HealthResponse(
        status="ready",
        reason=None,
        model=stats.model,
        encoder=stats.encoder,
        index_version=stats.version,
        backend=stats.backend,
        documents=stats.documents,
        passages=stats.passages,
    )
    return JSONResponse(body.model_dump())


@router.post(
    "/index",
    status_code=202,
    response_model=JobStatusModel,
    dependencies=[Depends(require_admin)],
    responses={status: {"model": ErrorResponse} for status in (401, 403, 409)},
)
def start_index_job(jobs: Annotated[IndexJobs, Depends(get_jobs)]) -> JobStatusModel:
    """Re-index the documents folder in the background; poll ``/index/status``."""
    try:
        return JobStatusModel(**asdict(jobs.start()))
    except JobAlreadyRunning as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None


@router.get("/index/status", response_model=JobStatusModel, dependencies=[Depends(require_reader)], responses=TOKEN_ERRORS)
def index_status(jobs: Annotated[IndexJobs, Depends(get_jobs)]) -> JobStatusModel:
    """The current or last re-index job; its report names documents, so it is a read like ``/documents``."""
    return JobStatusModel(**asdict(jobs.snapshot()))


@router.post(
    "/admin/snapshot",
    status_code=201,
    response_model=SnapshotWritten,
    dependencies=[Depends(require_admin)],
    responses={status: {"model": ErrorResponse} for status in (400, 401, 403, 503)},
)
def write_snapshot(settings: Annotated[Settings, Depends(get_settings_dep)]) -> SnapshotWritten:
    """Copy the index as last committed into a new folder under ``SEMSEARCH_SNAPSHOT_DIR``; searches and writes go on."""
    dest = settings.snapshot_folder / snapshot_name()
    manifest = take_snapshot(settings.location(), dest)
    return SnapshotWritten(
        path=str(dest.resolve()),
        generation=manifest.generation,
        index_version=manifest.index_version,
        documents=manifest.documents,
        passages=manifest.passages,
        files=len(manifest.files),
    )
