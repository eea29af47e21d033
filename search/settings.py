"""One settings object for every entry point, read from ``SEMSEARCH_*`` environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from search.backends.contract import IndexLocation
from search.backends.registry import DEFAULT_BACKEND, backend_class, is_url, locate, parse_backend
from search.errors import IndexFormatError, SemsearchError
from search.index_settings import parse_quantize

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# The one chunking default: passages of this many model tokens, one whole sentence repeated between neighbours.
DEFAULT_CHUNK_TOKENS = 192
DEFAULT_OVERLAP_SENTENCES = 1
LogFormat = Literal["plain", "json"]
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)
# Where builds run the encoder: cuda needs the ``gpu`` extra (onnxruntime-gpu) and a GPU.
Device = Literal["cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(Device)


class Settings(BaseSettings):
    """Everything an operator can configure; CLI options override these per call."""

    model_config = SettingsConfigDict(env_prefix="SEMSEARCH_", extra="ignore")

    docs: Path = Path("seeds")
    # A folder, or a URL naming an index of another backend (``milvus://HOST:PORT/NAME``).
    index: str = "indexes/default"
    model: str = DEFAULT_MODEL
    quantize: str | None = None
    device: Device = "cpu"
    # A Ray cluster's address, or "local", for folder builds to read and embed on (indexer.ray_ingest).
    ray: str | None = None
    # The older spelling of a service index: ``--backend milvus --milvus-uri URI --index NAME``.
    backend: str = DEFAULT_BACKEND
    milvus_uri: str | None = None
    milvus_token: SecretStr | None = None
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "semsearch")
    chunk_tokens: int = Field(default=DEFAULT_CHUNK_TOKENS, ge=16, le=8192)
    overlap_sentences: int = Field(default=DEFAULT_OVERLAP_SENTENCES, ge=0, le=8)
    max_file_bytes: int = Field(default=10_000_000, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    admin_token: SecretStr | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=64_000, ge=1024)
    watch: bool = False
    search_token: SecretStr | None = None
    metrics: bool = True
    log_format: LogFormat = "plain"
    log_queries: bool = False
    # ``serve --mcp``: the MCP tools at /mcp beside the API.
    mcp: bool = False
    # Where ``POST /admin/snapshot`` writes; None: ``snapshots/`` beside the index folder.
    snapshot_dir: Path | None = None

    @property
    def snapshot_folder(self) -> Path:
        return self.snapshot_dir or Path(self.index).parent / "snapshots"

    @field_validator("backend", mode="before")
    @classmethod
    def _known_backend(cls, value: object) -> str:
        return parse_backend(value)

    @field_validator("quantize", mode="before")
    @classmethod
    def _known_quantization(cls, value: object) -> str | None:
        return parse_quantize(value)

    def location(self) -> IndexLocation:
        """Where the configured index lives: ``index`` as a path or URL, or in the older spelling a name on the
        server ``milvus_uri`` of the non-default ``backend``."""
        if is_url(self.index):
            located = locate(self.index)
            if self.backend not in (DEFAULT_BACKEND, located.backend):
                raise SemsearchError(f"--index {self.index} is a {located.backend} index, not {self.backend}; leave out --backend")
            return located
        path = Path(self.index)
        if self.backend == DEFAULT_BACKEND:
            return IndexLocation(path)
        if backend_class(DEFAULT_BACKEND).exists(IndexLocation(path)):
            raise IndexFormatError(
                f"index at {path} was built with the {DEFAULT_BACKEND!r} backend, not {self.backend!r}; "
                f"open it with --backend {DEFAULT_BACKEND}, or remove the folder to use the {self.backend!r} index of that name"
            )
        if not self.milvus_uri:
            raise SemsearchError(
                f"the {self.backend} backend needs a server: pass --milvus-uri or set SEMSEARCH_MILVUS_URI, "
                f"or name the index as {self.backend}://HOST:PORT/NAME"
            )
        token = self.milvus_token.get_secret_value() if self.milvus_token is not None else None
        return IndexLocation(path, self.backend, {"uri": self.milvus_uri, "token": token})


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
