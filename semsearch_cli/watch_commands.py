"""``semsearch watch``: keep an index in step with a documents folder in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from datetime import datetime

from indexer.build import BuildReport, build_from_settings
from indexer.watch import sync_summary, watch_folder
from semsearch_cli.commands import announce, app
from semsearch_cli.log_format import configure_logging
from semsearch_cli.options import (
    BackendOption,
    DocsOption,
    IndexOption,
    LogFormatOption,
    MilvusTokenOption,
    MilvusUriOption,
    QuantizeOption,
    settings_from,
)


@app.command()
def watch(
    docs: DocsOption = None,
    index: IndexOption = None,
    quantize: QuantizeOption = None,
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    milvus_token: MilvusTokenOption = None,
    log_format: LogFormatOption = None,
) -> None:
    """Update the index whenever documents are added, changed, renamed or deleted; one line per change."""
    settings = settings_from(
        docs=docs,
        index=index,
        quantize=quantize,
        backend=backend,
        milvus_uri=milvus_uri,
        milvus_token=milvus_token,
        log_format=log_format,
    )
    configure_logging(settings.log_format)
    # Ctrl-C and a service manager's SIGTERM both stop it cleanly, even when it was started from a
    # shell that runs background jobs with SIGINT ignored (Python then installs no handler of its own).
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)

    def sync() -> BuildReport:
        return build_from_settings(settings)

    def show(report: BuildReport) -> None:
        announce(settings, "sync", f"{datetime.now():%H:%M:%S} {sync_summary(report)}", **asdict(report))

    announce(
        settings,
        "watching",
        f"semsearch: watching {settings.docs} for {settings.index} (Ctrl-C stops)",
        docs=str(settings.docs),
        index=str(settings.index),
    )
    try:
        watch_folder(settings.docs, sync, threading.Event(), on_change=show)
    except KeyboardInterrupt:
        announce(settings, "stopped", "semsearch: stopped watching")
