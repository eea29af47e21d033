"""Request and response models of the JSON API; they are also what /openapi.json documents."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from search.errors import InvalidQuery
from search.ranking.rules import (
    FACETS,
    MAX_ABS_MIN_SCORE,
    MAX_DOC_IDS,
    MAX_FOLDER_CHARS,
    MAX_K,
    MAX_OFFSET,
    MAX_QUERY_CHARS,
    MAX_TYPES,
    GroupBy,
    Mode,
    SearchRequest,
    parse_day,
    parse_facets,
)
from search.records import Hit

# The searcher refuses a query that ``str.strip()`` empties; the schema says so with a pattern built from
# the same whitespace (U+3000 is the last such character), so clients and fuzzers know a blank query is invalid.
_NOT_BLANK = "[^" + "".join(f"\\u{code:04x}" for code in range(0x3001) if chr(code).isspace()) + "]"
# A folder as the rules take it: no control character, no slash at either end.
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f"
_FOLDER = f"^[^/{_CONTROL}]([^{_CONTROL}]*[^/{_CONTROL}])?$"
_FACET = "(" + "|".join(FACETS) + ")"
Extension = Annotated[str, Field(pattern="^[A-Za-z0-9]{1,16}$")]


def _day_from_text(value: object) -> date:
    # JSON has no date type, so a day is text in the query string and in JSON alike; pydantic alone would also
    # take a number (0 as 1970-01-01) and other ISO 8601 forms. The rule itself lives in search.ranking.rules.
    if not isinstance(value, str):
        raise ValueError("must be a date like 2025-01-31")
    try:
        return parse_day(value, "the date")
    except InvalidQuery:
        raise ValueError("must be a date like 2025-01-31") from None


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
    mode: Mode | None = Field(None, description="Ranking mode; hybrid by default.")
    doc_id: list[str] = Field(default_factory=list, max_length=MAX_DOC_IDS, description="Only these documents.")
    date_from: Day | None = Field(None, description="Only documents dated on or after this day.")
    date_to: Day | None = Field(None, description="Only documents dated on or before this day.")
    group_by: GroupBy | None = Field(None, description="At most one passage per document.")
    min_score: float | None = Field(
        None,
        ge=-MAX_ABS_MIN_SCORE,
        le=MAX_ABS_MIN_SCORE,
        allow_inf_nan=False,
        description="Drop results whose score (0..1 in every mode: 1 is first in every ranking used) is lower.",
    )
    explain: bool = Field(False, description="Add per hit the matched terms, the best sentence's cosine and the fusion inputs.")
    type: list[Extension] = Field(
        default_factory=list, max_length=MAX_TYPES, description="Only documents with these file extensions, case as written (repeatable)."
    )
    folder: str | None = Field(
        None,
        max_length=MAX_FOLDER_CHARS,
        json_schema_extra={"pattern": _FOLDER},
        description="Only documents under this folder of the documents folder, e.g. notes/2024.",
    )
    facets: str | None = Field(
        None,
        pattern=f"^{_FACET}(,{_FACET})*$",
        description="Comma-separated facets to count (type, folder, year): distinct documents per value among the "
        "candidates before the cut to k.",
    )

    def as_request(self) -> SearchRequest:
        """The core's request; the searcher checks it again by the rules these fields come from."""
        return SearchRequest(
            query=self.q,
            k=self.k,
            offset=self.offset,
            doc_ids=tuple(self.doc_id),
            date_from=self.date_from.isoformat() if self.date_from else None,
            date_to=self.date_to.isoformat() if self.date_to else None,
            group_by=self.group_by,
            min_score=self.min_score,
            explain=self.explain,
            types=tuple(self.type),
            folder=self.folder,
            facets=parse_facets(self.facets),
            **({"mode": self.mode} if self.mode else {}),
        )


class SearchBody(SearchParams):
    """The JSON body of ``POST /search``: the same fields, with numbers as JSON numbers."""

    @field_validator("k", "offset", "min_score", mode="before")
    @classmethod
    def _json_numbers_only(cls, value: object) -> object:
        # Query strings are text and must be parsed; in JSON, pydantic alone would also take true as 1 and "5" as 5.
        if isinstance(value, (bool, str)):
            raise ValueError("must be a JSON number")
        return value

    @field_validator("explain", mode="before")
    @classmethod
    def _json_booleans_only(cls, value: object) -> object:
        # pydantic alone would also take 0, 1 and "yes" as booleans in JSON.
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value


class CorrectionModel(BaseModel):
    """A query word the index does not know and the word it was corrected to before ranking."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    original: str = Field(alias="from", description="The word as typed.")
    corrected: str = Field(alias="to", description="The word searched instead, as the index spells it (lower case).")


class SearchResponse(BaseModel):
    query: str
    k: int
    offset: int
    total: int
    took_ms: float
    mode: str
    notices: list[str]
    searched: str = Field("", description="The question as searched: with the corrections in place, else as asked (trimmed).")
    corrections: list[CorrectionModel] = Field(
        default_factory=list, description="Query words the index does not know, corrected to near ones it does, in query order."
    )
    facets: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Per facet asked for: distinct documents per value among the candidates before the cut to k."
    )
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
    encoder: str | None = Field(None, description="What embeds queries: onnx, onnx-int8 or torch.")
    index_version: str | None
    backend: str | None = Field(None, description="The retrieval backend holding the index: local or milvus.")
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


class SnapshotWritten(BaseModel):
    path: str = Field(description="The snapshot's folder; `semsearch restore PATH --index DIR` makes an index of it.")
    generation: int = Field(description="The committed generation it holds.")
    index_version: str = Field(description="The same as /health's index_version at that generation.")
    documents: int
    passages: int
    files: int


class ErrorResponse(BaseModel):
    detail: str | list


# What a route behind a token may answer besides its own responses (documented in the OpenAPI schema).
TOKEN_ERRORS: dict[int | str, dict] = {status: {"model": ErrorResponse} for status in (401, 403)}
