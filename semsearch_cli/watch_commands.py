"""``semsearch watch``: keep an index in step with a documents folder in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import typer

from indexer.build import BuildReport, build_from_settings
from indexer.watch import sync_summary, watch_folder
from semsearch_cli.commands import app
from semsearch_cli.options import BackendOption, DocsOption, IndexOption, MilvusTokenOption, MilvusUriOption, QuantizeOption, settings_from


@app.command()
def watch(
    docs: DocsOption = None,
    index: IndexOption = None,
    quantize: QuantizeOption = None,
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    milvus_token: MilvusTokenOption = None,
) -> None:
    """Update the index whenever documents are added, changed, renamed or deleted; one line per change."""
    settings = settings_from(
        docs=docs, index=index, quantize=quantize, backend=backend, milvus_uri=milvus_uri, milvus_token=milvus_token
    )
    logging.basicConfig(format="semsearch: %(message)s", level=logging.WARNING)

    def sync() -> BuildReport:
        return build_from_settings(settings)

    def show(report: BuildReport) -> None:
        typer.echo(f"{datetime.now():%H:%M:%S} {sync_summary(report)}")

    typer.echo(f"semsearch: watching {settings.docs} for {settings.index} (Ctrl-C stops)")
    try:
        watch_folder(settings.docs, sync, threading.Event(), on_change=show)
    except KeyboardInterrupt:
        typer.echo("semsearch: stopped watching")
