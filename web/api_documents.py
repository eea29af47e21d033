"""``/documents``: what is indexed. Ids are looked up in the index, never used as file paths."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends

from search.errors import DocumentNotFound
from search.ranking.searcher import Searcher
from web.dependencies import current_searcher, require_reader
from web.schemas import TOKEN_ERRORS, DocumentFull, DocumentSummary, ErrorResponse

router = APIRouter(tags=["documents"], dependencies=[Depends(require_reader)], responses=TOKEN_ERRORS)


@router.get("/documents", response_model=list[DocumentSummary], responses={503: {"model": ErrorResponse}})
def list_documents(searcher: Annotated[Searcher, Depends(current_searcher)]) -> list[DocumentSummary]:
    """Every indexed document with its size and passage count."""
    return [DocumentSummary(**asdict(summary)) for summary in searcher.backend.documents()]


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
