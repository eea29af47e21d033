"""Domain errors of the core; the CLI and the HTTP layer each translate them once into a message."""


class SemsearchError(Exception):
    """Base class: anything the user can fix by changing input, settings or files."""


class IndexNotFound(SemsearchError):
    """No index exists at the given folder."""


class IndexFormatError(SemsearchError):
    """An index exists but cannot be used as it is (version, model, damaged files)."""


class IndexLocked(SemsearchError):
    """Another process is writing the same index."""


class ModelLoadError(SemsearchError):
    """The embedding model could not be loaded."""


class DeviceUnavailable(SemsearchError):
    """The asked device (``--device cuda``) cannot run the encoder here."""


class InvalidQuery(SemsearchError):
    """The query or its parameters cannot be searched."""


class PageNotFound(SemsearchError):
    """No page image to give: a page past the end, a passage not there, a document without pages (not a PDF), or a
    file no longer in the documents folder."""


class DocumentChanged(SemsearchError):
    """The file is no longer what the index holds; indexing it again brings them back in step."""


class SemanticUnavailable(SemsearchError):
    """The embedding model failed on a query that can only be answered semantically."""


class DocumentNotFound(SemsearchError):
    """No document of that id is in the index; ids are looked up, never used as paths."""

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"no document {doc_id!r} in the index")


class SnapshotError(SemsearchError):
    """A snapshot cannot be taken, checked or restored as asked (damaged, in the way, or not a local index)."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name), for one-line user messages and logs."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class UnknownBackend(SemsearchError):
    """No retrieval backend of that name is registered, or its client library is missing."""
