"""Request and response models of the JSON API; they are also what /openapi.json documents."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from search.records import Hit
from search.rules import MAX_K

MAX_QUERY_CHARS = 1000
MAX_OFFSET = 10_000
# The searcher refuses a query that ``str.strip()`` empties; the schema says so with a pattern built from
# the same whitespace (U+3000 is the last such character), so clients and fuzzers know a blank query is invalid.
_NOT_BLANK = "[^" + "".join(f"\\u{code:04x}" for code in range(0x3001) if chr(code).isspace()) + "]"


def _day_from_text(value: object) -> date:
    # JSON has no date type, so a day is text in the query string and in JSON alike; pydantic alone would also
    # take a number (0 as 1970-01-01) and other ISO 8601 forms. Only ``YYYY-MM-DD`` text is a day.
    try:
        day = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        day = None
    if day is None or day.isoformat() != value:
        raise ValueError("must be a date like 2025-01-31")
    return day


Day = Annotated[date, BeforeValidator(_day_from_text)]


class SearchParams(BaseModel):
    """The query parameters of ``GET /search``; ``SearchBody`` takes the same fields as JSON."""

    model_config = ConfigDict(extra="forbid")

    q: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        json_schema_extra={"pattern": _NOT_BLANK},
        description="The question, in plain language; not only whitespace.",
    )
    k: int = Field(10, ge=1, le=MAX_K, description="How many results.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="How many results to skip (paging).")
    mode: Literal["hybrid", "semantic", "keyword"] | None = Field(None, description="Ranking mode; hybrid by default.")
    doc_id: list[str] = Field(default_factory=list, max_length=1000, description="Only these documents.")
    date_from: Day | None = Field(None, description="Only documents dated on or after this day.")
    date_to: Day | None = Field(None, description="Only documents dated on or before this day.")
    group_by: Literal["document"] | None = Field(None, description="At most one passage per document.")
    min_score: float | None = Field(None, ge=-1e6, le=1e6, allow_inf_nan=False, description="Drop results scoring lower.")


class SearchBody(SearchParams):
    """The JSON body of ``POST /search``: the same fields, with numbers as JSON numbers."""

    @field_validator("k", "offset", "min_score", mode="before")
    @classmethod
    def _json_numbers_only(cls, value: object) -> object:
        # Query strings are text and must be parsed; in JSON, pydantic alone would also take true as 1 and "5" as 5.
        if isinstance(value, (bool, str)):
            raise ValueError("must be a JSON number")
        return value


class SearchResponse(BaseModel):
    query: str
    k: int
    offset: int
    total: int
    took_ms: float
    mode: str
    notices: list[str]
    results: list[Hit]


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    date: str | None
    length: int
    passages: int


class DocumentFull(DocumentSummary):
    text: str
    pages: list[int] = Field(default_factory=list, description="Offset in text where each page starts; empty without pages.")


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
