"""One settings object for every entry point, read from ``SEMSEARCH_*`` environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# The one chunking default: passages of this many model tokens, one whole sentence repeated between neighbours.
DEFAULT_CHUNK_TOKENS = 192
DEFAULT_OVERLAP_SENTENCES = 1
QUANTIZATIONS = ("int8",)
LogFormat = Literal["plain", "json"]
LOG_FORMATS: tuple[str, ...] = get_args(LogFormat)


def parse_quantize(value: object) -> str | None:
    """The one rule for ``--quantize`` / ``SEMSEARCH_QUANTIZE``: "int8", or empty / "none" for full precision."""
    if value is None or str(value).strip().lower() in ("", "none", "fp32"):
        return None
    if value not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZATIONS)} or none, not {value!r}")
    return str(value)


class Settings(BaseSettings):
    """Everything an operator can configure; CLI options override these per call."""

    model_config = SettingsConfigDict(env_prefix="SEMSEARCH_", extra="ignore")

    docs: Path = Path("seeds")
    index: Path = Path("indexes/default")
    model: str = DEFAULT_MODEL
    quantize: str | None = None
    # A Ray cluster's address, or "local", for folder builds to read and embed on (indexer.ray_ingest).
    ray: str | None = None
    backend: str = "local"
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
        return self.snapshot_dir or self.index.parent / "snapshots"

    @field_validator("backend", mode="before")
    @classmethod
    def _known_backend(cls, value: object) -> str:
        from search.backends.registry import parse_backend

        return parse_backend(value)

    @field_validator("quantize", mode="before")
    @classmethod
    def _known_quantization(cls, value: object) -> str | None:
        return parse_quantize(value)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
