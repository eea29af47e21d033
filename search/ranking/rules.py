"""The rules of a search request, defined once: the API schema, the CLI and the page read them from here."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Literal, get_args

from search.errors import InvalidQuery

# The choices as types (the API schema states them) and as values (the CLI, the page and the checks below).
Mode = Literal["hybrid", "semantic", "keyword"]
MODES: tuple[Mode, ...] = get_args(Mode)
DEFAULT_MODE = "hybrid"
MAX_K = 100
# Long enough for "passages like this one" and judged collections' long queries (one runs to 2,083
# characters). The encoder embeds only the first ~256 tokens; BM25 keeps at most MAX_QUERY_TERMS terms.
MAX_QUERY_CHARS = 10_000
MAX_OFFSET = 10_000
MAX_DOC_IDS = 1000
GroupBy = Literal["document"]
GROUP_BY_VALUES: tuple[GroupBy, ...] = get_args(GroupBy)
# Scores are 0..1; a floor outside this range is a mistake, not a request.
MAX_ABS_MIN_SCORE = 1e6
FACETS = ("type", "folder", "year")
MAX_TYPES = 100
MAX_FOLDER_CHARS = 1000
# A type is a file extension of letters and digits (``search.backends.contract.document_type``).
_TYPE = re.compile(r"[A-Za-z0-9]{1,16}")


@dataclass(frozen=True)
class SearchRequest:
    """A query and everything that narrows or shapes its results."""

    query: str
    k: int = 10
    offset: int = 0
    doc_ids: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    group_by: str | None = None
    min_score: float | None = None
    mode: str = DEFAULT_MODE
    explain: bool = False
    types: tuple[str, ...] = ()
    folder: str | None = None
    facets: tuple[str, ...] = ()

    @property
    def group_by_document(self) -> bool:
        return self.group_by == "document"


def parse_day(value: str, name: str) -> date:
    """Only ``YYYY-MM-DD`` text is a day (ISO 8601 has other forms that would surprise a user)."""
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        day = None
    if day is None or day.isoformat() != value:
        raise InvalidQuery(f"{name} must be a date like 2025-01-31, not {value!r}")
    return day


def parse_facets(value: str | None) -> tuple[str, ...]:
    """``type,folder,year`` as a tuple, each name once; unknown names are an ``InvalidQuery`` naming the valid ones."""
    names = tuple(dict.fromkeys(name.strip() for name in (value or "").split(",") if name.strip()))
    for name in names:
        if name not in FACETS:
            raise InvalidQuery(f"unknown facet {name!r}; choose from {', '.join(FACETS)}")
    return names


def normalize_folder(value: str | None) -> str | None:
    """A folder filter without the slashes around it (``/notes/`` is ``notes``); None for none."""
    return None if value is None else value.strip("/")


def validate_request(request: SearchRequest) -> None:
    """Raise ``InvalidQuery`` naming the first thing wrong with ``request``."""
    if not request.query.strip():
        raise InvalidQuery("the query is empty")
    if len(request.query) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"the query is longer than {MAX_QUERY_CHARS} characters")
    if not 1 <= request.k <= MAX_K:
        raise InvalidQuery(f"k must be between 1 and {MAX_K}")
    if not 0 <= request.offset <= MAX_OFFSET:
        raise InvalidQuery(f"offset must be between 0 and {MAX_OFFSET}")
    if request.mode not in MODES:
        raise InvalidQuery(f"unknown mode {request.mode!r}; choose one of {', '.join(MODES)}")
    if len(request.doc_ids) > MAX_DOC_IDS:
        raise InvalidQuery(f"at most {MAX_DOC_IDS} doc_id values")
    for name in ("date_from", "date_to"):
        if getattr(request, name) is not None:
            parse_day(getattr(request, name), name)
    if request.group_by is not None and request.group_by not in GROUP_BY_VALUES:
        raise InvalidQuery(f"unknown group_by {request.group_by!r}; choose {', '.join(GROUP_BY_VALUES)}")
    if request.min_score is not None and not (math.isfinite(request.min_score) and abs(request.min_score) <= MAX_ABS_MIN_SCORE):
        raise InvalidQuery(f"min_score must be a number between {-MAX_ABS_MIN_SCORE:g} and {MAX_ABS_MIN_SCORE:g}")
    if len(request.types) > MAX_TYPES:
        raise InvalidQuery(f"at most {MAX_TYPES} type values")
    for kind in request.types:
        if not _TYPE.fullmatch(kind):
            raise InvalidQuery(f"a type is a file extension of 1 to 16 letters and digits, such as pdf, not {kind!r}")
    if request.folder is not None:
        folder = request.folder
        if not folder or folder != folder.strip("/") or len(folder) > MAX_FOLDER_CHARS:
            raise InvalidQuery(f"folder must be a path inside the documents folder such as notes/2024, up to {MAX_FOLDER_CHARS} characters")
        if any(unicodedata.category(char) == "Cc" for char in folder):
            raise InvalidQuery("folder contains a control character")
    for name in request.facets:
        if name not in FACETS:
            raise InvalidQuery(f"unknown facet {name!r}; choose from {', '.join(FACETS)}")
