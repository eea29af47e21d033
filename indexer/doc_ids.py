"""The one rule for document ids that arrive from outside (the write API): a safe relative path in the folder."""

from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath

from indexer.readers import SUPPORTED_SUFFIXES
from search.errors import SemsearchError

MAX_COMPONENT_CHARS = 255
MAX_ID_CHARS = 1000


class InvalidDocumentId(SemsearchError):
    """A document id that could name a file outside the documents folder, or one no reader handles."""


def validate_doc_id(doc_id: str) -> PurePosixPath:
    """The id as a relative path that stays inside the documents folder; raises ``InvalidDocumentId`` saying why not.

    An id is used as a file path, so anything a filesystem could read as "elsewhere" is refused
    rather than normalised: a script that sends ``a/../b.txt`` gets told, not silently redirected.
    Hidden components are refused because editors and sync tools keep their own files there.
    """
    if not doc_id:
        raise InvalidDocumentId("the document id is empty")
    if len(doc_id) > MAX_ID_CHARS:
        raise InvalidDocumentId(f"the document id is {len(doc_id)} characters; at most {MAX_ID_CHARS} are allowed")
    if "\\" in doc_id:
        raise InvalidDocumentId("the document id contains a backslash; separate folders with '/'")
    if any(unicodedata.category(char) == "Cc" for char in doc_id):
        raise InvalidDocumentId("the document id contains a control character")
    if doc_id.startswith("/"):
        raise InvalidDocumentId("the document id is an absolute path; give it relative to the documents folder")
    parts = doc_id.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidDocumentId(f"the document id has an empty, '.' or '..' component: {doc_id!r}")
        if part.startswith("."):
            raise InvalidDocumentId(f"the document id has a hidden component {part!r}")
        if len(part) > MAX_COMPONENT_CHARS:
            raise InvalidDocumentId(f"a component of the document id is over {MAX_COMPONENT_CHARS} characters")
    if not parts[-1].lower().endswith(SUPPORTED_SUFFIXES):
        raise InvalidDocumentId(f"the document id must end with a supported extension: {', '.join(SUPPORTED_SUFFIXES)}")
    return PurePosixPath(doc_id)
