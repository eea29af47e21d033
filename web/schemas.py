"""Request and response models of the JSON API; they are also what /openapi.json documents."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from search.searcher import MAX_K

MAX_QUERY_CHARS = 1000
MAX_OFFSET = 10_000


class SearchParams(BaseModel):
    """The same fields arrive as query parameters (GET) or a JSON body (POST)."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="The question, in plain language.")
    k: int = Field(10, ge=1, le=MAX_K, description="How many results.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="How many results to skip (paging).")
    mode: Literal["hybrid", "semantic", "keyword"] | None = Field(None, description="Ranking mode; hybrid by default.")
    doc_id: list[str] = Field(default_factory=list, max_length=1000, description="Only these documents.")
    date_from: date | None = Field(None, description="Only documents dated on or after this day.")
    date_to: date | None = Field(None, description="Only documents dated on or before this day.")
    group_by: Literal["document"] | None = Field(None, description="At most one passage per document.")
    min_score: float | None = Field(None, ge=-1e6, le=1e6, allow_inf_nan=False, description="Drop results scoring lower.")


class SpanModel(BaseModel):
    start: int
    end: int


class HitModel(BaseModel):
    rank: int
    score: float
    doc_id: str
    title: str
    date: str | None
    passage_id: str
    text: str
    start: int
    end: int
    scores: dict[str, float | None]
    highlights: list[SpanModel]


class SearchResponse(BaseModel):
    query: str
    k: int
    offset: int
    total: int
    took_ms: float
    mode: str
    notices: list[str]
    results: list[HitModel]


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    date: str | None
    length: int
    passages: int


class DocumentFull(DocumentSummary):
    text: str


class HealthResponse(BaseModel):
    status: Literal["ready", "unavailable"]
    reason: str | None
    model: str | None
    index_version: str | None
    documents: int
    passages: int


class JobStatusModel(BaseModel):
    job_id: str | None
    state: Literal["idle", "running", "succeeded", "failed"]
    stage: str | None
    started_at: str | None
    finished_at: str | None
    report: dict | None
    error: str | None


class ErrorResponse(BaseModel):
    detail: str | list
