"""``semsearch snapshot`` and ``semsearch restore``: a copy of one committed generation, and an index made from it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from search.backends.local.snapshot import restore_snapshot, take_snapshot
from semsearch_cli.commands import app
from semsearch_cli.options import BackendOption, IndexOption, MilvusTokenOption, MilvusUriOption, settings_from


@app.command()
def snapshot(
    dest: Annotated[Path, typer.Argument(help="A new folder for the snapshot.")],
    index: IndexOption = None,
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    milvus_token: MilvusTokenOption = None,
) -> None:
    """Copy the index as last committed to DEST, with a sha256 of every file; a server may search and write meanwhile."""
    settings = settings_from(index=index, backend=backend, milvus_uri=milvus_uri, milvus_token=milvus_token)
    started = time.perf_counter()
    manifest = take_snapshot(settings.location(), dest)
    typer.echo(
        f"snapshot of generation {manifest.generation} ({manifest.documents} documents, {manifest.passages} passages, "
        f"{len(manifest.files)} files) written to {dest} in {time.perf_counter() - started:.1f}s"
    )


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="A folder written by `semsearch snapshot`.")],
    index: IndexOption = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the index already at --index.")] = False,
) -> None:
    """Check SOURCE against its checksums and make it the index at --index, ready to search or serve."""
    settings = settings_from(index=index)
    manifest = restore_snapshot(source, Path(settings.index), force=force)
    typer.echo(
        f"restored generation {manifest.generation} ({manifest.documents} documents, {manifest.passages} passages) "
        f"from {source} to {settings.index}"
    )
