"""``/documents``: what is indexed, and PDF pages as images. Ids are looked up in the index first; only a page
image then reads the file, inside the documents folder (``web.page_images``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from indexer.doc_ids import MAX_ID_CHARS
from indexer.readers.pdf_pages import ANSWER, DEFAULT_WIDTH, MAX_WIDTH, MIN_WIDTH, PASSAGE, Mark
from search.errors import DocumentNotFound, PageNotFound
from search.ranking.rules import MAX_QUERY_CHARS
from search.ranking.searcher import Searcher
from web.dependencies import current_searcher, get_page_images, require_reader
from web.page_images import PageImages
from web.schemas import TOKEN_ERRORS, DocumentFull, DocumentSummary, ErrorResponse

router = APIRouter(tags=["documents"], dependencies=[Depends(require_reader)], responses=TOKEN_ERRORS)


@router.get("/documents", response_model=list[DocumentSummary], responses={503: {"model": ErrorResponse}})
def list_documents(searcher: Annotated[Searcher, Depends(current_searcher)]) -> list[DocumentSummary]:
    """Every indexed document with its size and passage count."""
    return [DocumentSummary(**asdict(summary)) for summary in searcher.backend.documents()]


@router.get(
    "/documents/{doc_id:path}/pages/{number}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The page as a PNG; ``X-Mark-Box`` frames the answer (or passage) marked."},
        **{status: {"model": ErrorResponse} for status in (404, 409, 422, 503)},
    },
)
def get_page_image(
    doc_id: str,
    number: int,
    searcher: Annotated[Searcher, Depends(current_searcher)],
    images: Annotated[PageImages, Depends(get_page_images)],
    passage: Annotated[str | None, Query(max_length=MAX_ID_CHARS + 20, description="A passage id (doc_id#n) to mark.")] = None,
    q: Annotated[str | None, Query(max_length=MAX_QUERY_CHARS, description="With passage: also mark the sentence answering this.")] = None,
    width: Annotated[int, Query(ge=MIN_WIDTH, le=MAX_WIDTH, description="Image width in pixels.")] = DEFAULT_WIDTH,
) -> Response:
    """Page ``number`` (from 1) of a PDF document as a PNG, with a passage's text and its answer sentence marked."""
    document = searcher.backend.document(doc_id)
    if document is None:
        raise DocumentNotFound(doc_id)
    marks: list[Mark] = []
    if passage is not None:
        stored, answer = searcher.passage(passage, q)
        if stored.record.doc_id != doc_id:
            raise PageNotFound(f"passage {passage!r} is not in {doc_id!r}")
        start = stored.record.start
        marks = [Mark(start, stored.record.end, PASSAGE), *(Mark(start + span.start, start + span.end, ANSWER) for span in answer)]
    image = images.render(document, number, width, marks)
    headers = {"Cache-Control": "private, max-age=60"}
    if image.marked is not None:
        headers["X-Mark-Box"] = ",".join(map(str, image.marked))
    return Response(image.png, media_type="image/png", headers=headers)


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentFull,
    responses={404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
def get_document(doc_id: str, searcher: Annotated[Searcher, Depends(current_searcher)]) -> DocumentFull:
    """The full text that result offsets point into, with where each page starts."""
    document = searcher.backend.document(doc_id)
    summaries = searcher.backend.documents([doc_id])
    if document is None or not summaries:
        raise DocumentNotFound(doc_id)
    return DocumentFull(
        doc_id=doc_id,
        title=document.title,
        date=document.date,
        length=document.length,
        passages=summaries[0].passages,
        text=document.text,
        pages=list(document.pages),
    )
