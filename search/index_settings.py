"""What an index says about itself, fixed when it is created and checked on every open."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search.errors import IndexFormatError
from search.text.analyzer import Analyzer

FIX_HINT = "rebuild it with `semsearch index --full`"
QUANTIZATIONS = ("int8",)


def parse_quantize(value: object) -> str | None:
    """The one rule for ``--quantize`` / ``SEMSEARCH_QUANTIZE``: "int8", or empty / "none" for full precision."""
    if value is None or str(value).strip().lower() in ("", "none", "fp32"):
        return None
    if value not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZATIONS)} or none, not {value!r}")
    return str(value)


@dataclass(frozen=True)
class IndexSettings:
    """The model and precision that embedded the index, its chunking, its keyword analyzer and its backend."""

    model: str
    dimension: int
    chunking: dict[str, Any]
    analyzer: Analyzer
    quantize: str | None = None
    backend: str = "local"

    def as_meta(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dimension": self.dimension,
            "chunking": self.chunking,
            "analyzer": self.analyzer.as_dict(),
            "quantize": self.quantize,
            "backend": self.backend,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any], where: str) -> IndexSettings:
        """Settings read back from an index; anything missing or malformed is damage, named with the fix."""
        try:
            return cls(
                meta["model"],
                int(meta["dimension"]),
                dict(meta["chunking"]),
                Analyzer.from_dict(meta["analyzer"]),
                parse_quantize(meta.get("quantize")),
                str(meta.get("backend", "local")),
            )
        except (KeyError, TypeError, ValueError):
            raise IndexFormatError(f"index {where} has unexpected settings; {FIX_HINT}") from None
