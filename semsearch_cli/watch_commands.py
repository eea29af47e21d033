"""``semsearch watch``: keep an index in step with a documents folder in the foreground until Ctrl-C."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import typer

from indexer.build import BuildReport, build_from_settings
from indexer.watch import sync_summary, watch_folder
from semsearch_cli.commands import DocsOption, IndexOption, QuantizeOption, app, _settings


@app.command()
def watch(docs: DocsOption = None, index: IndexOption = None, quantize: QuantizeOption = None) -> None:
    """Update the index whenever documents are added, changed, renamed or deleted; one line per change."""
    settings = _settings(docs=docs, index=index, quantize=quantize)
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
