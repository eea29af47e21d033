"""``/documents``: what is indexed. Ids are looked up in the index, never used as file paths."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from search.searcher import Searcher
from web.dependencies import current_searcher
from web.schemas import DocumentFull, DocumentSummary, ErrorResponse

router = APIRouter(tags=["documents"])


@router.get("/documents", response_model=list[DocumentSummary], responses={503: {"model": ErrorResponse}})
def list_documents(searcher: Annotated[Searcher, Depends(current_searcher)]) -> list[DocumentSummary]:
    """Every indexed document with its size and passage count."""
    return [_summary(searcher, doc_id) for doc_id in sorted(searcher.index.documents)]


@router.get(
    "/documents/{doc_id:path}",
    response_model=DocumentFull,
    responses={404: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
)
def get_document(doc_id: str, searcher: Annotated[Searcher, Depends(current_searcher)]) -> DocumentFull:
    """The full text that result offsets point into."""
    if doc_id not in searcher.index.documents:
        raise HTTPException(status_code=404, detail=f"no document {doc_id!r} in the index")
    return DocumentFull(**_summary(searcher, doc_id).model_dump(), text=searcher.index.documents[doc_id].text)


def _summary(searcher: Searcher, doc_id: str) -> DocumentSummary:
    document = searcher.index.documents[doc_id]
    return DocumentSummary(
        doc_id=doc_id,
        title=document.title,
        date=document.date,
        length=document.length,
        passages=searcher.passage_count(doc_id),
    )
