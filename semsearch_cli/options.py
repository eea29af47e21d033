"""Options shared by the subcommands, and the one place that turns them into ``Settings``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from search.backends.registry import BACKENDS, parse_backend
from search.errors import SemsearchError
from search.index_settings import parse_quantize
from search.settings import DEVICES, LOG_FORMATS, Settings, get_settings

UserError = SemsearchError

DocsOption = Annotated[Path | None, typer.Option("--docs", help="Documents folder [env SEMSEARCH_DOCS].")]
IndexOption = Annotated[
    str | None,
    typer.Option("--index", help="Index folder, or an index URL such as milvus://HOST:PORT/NAME [env SEMSEARCH_INDEX]."),
]
ModelOption = Annotated[str | None, typer.Option("--model", help="sentence-transformers name or path [env SEMSEARCH_MODEL].")]
QuantizeOption = Annotated[
    str | None,
    typer.Option(
        "--quantize",
        help="int8: a faster quantized encoder with slightly different vectors; none: full precision [env SEMSEARCH_QUANTIZE].",
    ),
]
DeviceOption = Annotated[
    str | None,
    typer.Option("--device", help="Where builds embed: cpu, or cuda (needs the 'gpu' extra and a GPU) [env SEMSEARCH_DEVICE]."),
]
BackendOption = Annotated[
    str | None, typer.Option("--backend", help=f"Older spelling of an index URL's scheme: {', '.join(BACKENDS)} [env SEMSEARCH_BACKEND].")
]
LogFormatOption = Annotated[
    str | None, typer.Option("--log-format", help="plain, or json: one JSON object per line [env SEMSEARCH_LOG_FORMAT].")
]
MilvusUriOption = Annotated[
    str | None,
    typer.Option(
        "--milvus-uri",
        help="Older spelling: the Milvus server for --backend milvus, e.g. http://127.0.0.1:19530 [env SEMSEARCH_MILVUS_URI].",
    ),
]
MilvusTokenOption = Annotated[
    str | None, typer.Option("--milvus-token", help="Milvus token (user:password or API key) [env SEMSEARCH_MILVUS_TOKEN].")
]


def settings_from(
    quantize: str | None = None, backend: str | None = None, milvus_token: str | None = None, **overrides: object
) -> Settings:
    """Environment settings with the options given on the command line taking precedence.

    ``model_copy`` does not validate, so the options with rules are parsed here by the same rules.
    """
    update = {name: value for name, value in overrides.items() if value is not None}
    if quantize is not None:
        try:
            update["quantize"] = parse_quantize(quantize)
        except ValueError as exc:
            raise UserError(f"--quantize: {exc}") from None
    if backend is not None:
        update["backend"] = parse_backend(backend)
    if milvus_token is not None:
        update["milvus_token"] = SecretStr(milvus_token)
    settings = get_settings().model_copy(update=update)
    if settings.log_format not in LOG_FORMATS:
        raise UserError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, not {settings.log_format!r}")
    if settings.device not in DEVICES:
        raise UserError(f"--device must be one of {', '.join(DEVICES)}, not {settings.device!r}")
    return settings
