"""The MCP server: ``search`` and ``get_document``, the tools an assistant calls, over the API's ``Engine``.

``search`` takes the API's search fields under the names a tool caller reads (``query``, ``doc_ids``) and
with the API's own field rules (``web.schemas.SearchParams``: limits, choices, date format, descriptions),
so the tool's input schema states them and the SDK enforces them; the searcher then checks the request
by ``search.ranking.rules``, as for every front end. A mistake comes back as a tool error carrying the
API's message and the session goes on: the core's errors become ``ToolError`` here, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from search.errors import DocumentNotFound, SemsearchError
from search.ranking.rules import GroupBy, Mode
from search.ranking.searcher import Searcher
from search.records import Hit
from web.engine import Engine
from web.schemas import Day, SearchParams

# An assistant reads what a tool returns into its context: a whole book would crowd out everything else.
MAX_DOCUMENT_CHARS = 20_000
_API = SearchParams.model_fields
_READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_INSTRUCTIONS = (
    "Search a collection of documents. `search` answers a question with passages, each with its document, "
    "page, section and the sentence that best answers; `get_document` reads the text near a passage."
)


class Passage(BaseModel):
    doc_id: str
    passage_id: str = Field(description="Pass it to get_document with doc_id to read the text near this passage.")
    title: str
    page: int | None
    section: str | None
    answer: str | None = Field(description="The passage's sentence(s) that best answer the query.")
    text: str
    score: float = Field(description="0..1 in every mode; 1 is first in every ranking used.")


class SearchAnswer(BaseModel):
    query: str
    mode: str
    total: int = Field(description="How many passages matched before the first k were taken.")
    notices: list[str]
    results: list[Passage]


class DocumentText(BaseModel):
    doc_id: str
    title: str
    date: str | None
    length: int = Field(description="The whole document's length in characters.")
    start: int = Field(description="Where `text` starts in the document.")
    end: int = Field(description="Where `text` ends in the document.")
    text: str
    passage_start: int | None = Field(None, description="Where the asked passage starts in the document.")
    passage_end: int | None = Field(None, description="Where the asked passage ends in the document.")


def build_mcp_server(engine: Engine) -> MCPServer:
    """The two tools, answering from whatever searcher ``engine`` holds at each call."""
    server: MCPServer = MCPServer("semsearch", instructions=_INSTRUCTIONS)

    @server.tool(annotations=_READ_ONLY)
    def search(
        query: Annotated[str, _API["q"]],
        k: Annotated[int, _API["k"]],
        mode: Annotated[Mode | None, _API["mode"]],
        doc_ids: Annotated[list[str], _API["doc_id"]],
        date_from: Annotated[Day | None, _API["date_from"]],
        date_to: Annotated[Day | None, _API["date_to"]],
        group_by: Annotated[GroupBy | None, _API["group_by"]],
    ) -> Annotated[CallToolResult, SearchAnswer]:
        """The passages of the indexed documents that best answer a question, best first, each with the
        sentence that answers it; the same ranking and filters as the HTTP API's /search."""
        # The SDK has validated the arguments by these fields' rules already.
        params = SearchParams.model_construct(
            q=query, k=k, mode=mode, doc_id=doc_ids, date_from=date_from, date_to=date_to, group_by=group_by
        )
        with _as_tool_error():
            result = engine.current().search(params.as_request())
        answer = SearchAnswer(
            query=query, mode=result.mode, total=result.total, notices=list(result.notices), results=[_passage(hit) for hit in result.hits]
        )
        return _result(_render(answer), answer)

    @server.tool(annotations=_READ_ONLY)
    def get_document(
        doc_id: Annotated[str, Field(description="A doc_id from search results or the API's /documents.")],
        passage_id: Annotated[str | None, Field(description="A passage_id from search results: the text is centred on it.")] = None,
    ) -> Annotated[CallToolResult, DocumentText]:
        """The text of one indexed document, at most 20,000 characters: centred on the passage when
        passage_id is given, else from the beginning."""
        with _as_tool_error():
            document = _document_text(engine.current(), doc_id, passage_id)
        header = f"{document.title} ({document.doc_id}), characters {document.start}-{document.end} of {document.length}:"
        return _result(f"{header}\n\n{document.text}", document)

    return server


@contextmanager
def _as_tool_error() -> Iterator[None]:
    """The core's errors are the caller's to read: a tool error with the message the HTTP API answers."""
    try:
        yield
    except SemsearchError as exc:
        raise ToolError(str(exc)) from None


def _result(text: str, structured: BaseModel) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured.model_dump(mode="json"))


def _passage(hit: Hit) -> Passage:
    sentences = (" ".join(hit.text[span.start : span.end].split()) for span in hit.highlights)
    return Passage(
        doc_id=hit.doc_id,
        passage_id=hit.passage_id,
        title=hit.title,
        page=hit.page,
        section=hit.section,
        answer=" ".join(sentence for sentence in sentences if sentence) or None,
        text=hit.text,
        score=hit.score,
    )


def _render(answer: SearchAnswer) -> str:
    """A few lines for a reader of the text content: where each passage is and its answer sentence."""
    if not answer.results:
        lines = [f"No passage answers {answer.query!r}."]
    else:
        lines = [f"{len(answer.results)} of {answer.total} passages for {answer.query!r} ({answer.mode}):"]
    for rank, passage in enumerate(answer.results, start=1):
        page = f"p. {passage.page}" if passage.page else ""
        section = f"§ {passage.section}" if passage.section else ""
        where = ", ".join(part for part in (passage.doc_id, page, section) if part)
        lines.append(f"{rank}. {passage.title} ({where}) [{passage.score:.3f}] passage_id={passage.passage_id}")
        lines.append(f"   {passage.answer or ' '.join(passage.text.split())[:300]}")
    lines += [f"notice: {notice}" for notice in answer.notices]
    return "\n".join(lines)


def _document_text(searcher: Searcher, doc_id: str, passage_id: str | None) -> DocumentText:
    """At most ``MAX_DOCUMENT_CHARS`` of the document: centred on the passage when one is named, else from the start."""
    document = searcher.backend.document(doc_id)
    if document is None:
        raise DocumentNotFound(doc_id)
    span = None
    if passage_id is not None:
        with searcher.backend.snapshot() as view:
            span = next(((p.record.start, p.record.end) for p in view.document_passages(doc_id) if p.record.passage_id == passage_id), None)
        if span is None:
            raise ToolError(f"no passage {passage_id!r} in document {doc_id!r}")
    start = 0
    if span is not None and document.length > MAX_DOCUMENT_CHARS:
        start = min(max(0, (span[0] + span[1] - MAX_DOCUMENT_CHARS) // 2), document.length - MAX_DOCUMENT_CHARS)
    end = min(document.length, start + MAX_DOCUMENT_CHARS)
    return DocumentText(
        doc_id=doc_id,
        title=document.title,
        date=document.date,
        length=document.length,
        start=start,
        end=end,
        text=document.text[start:end],
        passage_start=span[0] if span else None,
        passage_end=span[1] if span else None,
    )
