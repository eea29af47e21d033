"""Log output for ``serve`` and ``watch``: plain text for people (the default) or one JSON object per line.

JSON lines are for log collectors: every line parses on its own and carries ``event``, so a collector
can pick the request lines (``"event": "request"``) without parsing message text.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime

from search.settings import LOG_FORMATS


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, event, message and the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": "log",
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_config(log_format: str) -> dict:
    """A ``logging.config.dictConfig`` for the server or the watcher, also given to uvicorn as its own.

    Plain keeps what the server always wrote: uvicorn's warnings and errors, semsearch's as ``semsearch:``
    lines, no line per request. JSON adds the request lines (``semsearch.access`` at INFO).
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    as_json = log_format == "json"
    formatter = {"()": JsonFormatter} if as_json else {"format": "semsearch: %(levelname)s: %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"semsearch": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "semsearch", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "semsearch": {"level": "INFO" if as_json else "WARNING"},
            "uvicorn": {"level": "INFO" if as_json else "WARNING"},
            "uvicorn.access": {"level": "WARNING", "propagate": False},
        },
    }


def configure_logging(log_format: str) -> None:
    logging.config.dictConfig(log_config(log_format))
