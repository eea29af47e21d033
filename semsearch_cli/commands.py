"""The subcommands. Each validates its options, calls the library and prints; nothing here ranks or indexes."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from indexer.build import BuildReport, build_index
from indexer.chunking import ChunkingParams
from search.errors import SemsearchError
from search.index_format import index_exists
from search.searcher import Searcher
from search.settings import Settings, get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Semantic search over a folder of documents.")

UserError = SemsearchError

DocsOption = Annotated[Optional[Path], typer.Option("--docs", help="Documents folder [env SEMSEARCH_DOCS].")]
IndexOption = Annotated[Optional[Path], typer.Option("--index", help="Index folder [env SEMSEARCH_INDEX].")]
ModelOption = Annotated[Optional[str], typer.Option("--model", help="sentence-transformers name or path [env SEMSEARCH_MODEL].")]


@app.command()
def index(
    docs: DocsOption = None,
    index: IndexOption = None,
    model: ModelOption = None,
    full: Annotated[bool, typer.Option("--full", help="Re-embed everything.")] = False,
) -> None:
    """Build or update the index: only new or changed documents are embedded."""
    settings = _settings(docs=docs, index=index, model=model)
    _build(settings, full=full)


def _settings(**overrides: object) -> Settings:
    """Environment settings with the options given on the command line taking precedence."""
    return get_settings().model_copy(update={name: value for name, value in overrides.items() if value is not None})


def _build(settings: Settings, full: bool = False) -> None:
    report = build_index(
        settings.docs,
        settings.index,
        settings.model,
        ChunkingParams(settings.chunk_tokens, settings.overlap_sentences),
        full=full,
        max_file_bytes=settings.max_file_bytes,
        show_progress=sys.stderr.isatty(),
    )
    print_build_report(report, settings.index)


def print_build_report(report: BuildReport, index_dir: Path) -> None:
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if report.full_rebuild_reason:
        typer.echo(f"full rebuild: {report.full_rebuild_reason}")
    for label, ids in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
        for doc_id in ids:
            typer.echo(f"{label}: {doc_id}")
    state = "written" if report.written else "unchanged"
    typer.echo(
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.removed)} removed, "
        f"{len(report.kept)} kept; {report.embedded_passages} passages embedded, {report.total_passages} in total; "
        f"index {state} at {index_dir} in {report.seconds:.1f}s"
    )


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    index: IndexOption = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="How many passages.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Print the passages that best answer QUESTION."""
    settings = get_settings()
    searcher = Searcher.open(index or settings.index)
    result = searcher.search(question, k=k)
    if as_json:
        payload = {"query": question, "total": result.total, "results": [_hit_json(hit) for hit in result.hits]}
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    if not result.hits:
        typer.echo("no results")
    for hit in result.hits:
        typer.echo(f"{hit.rank}. [{hit.score:.3f}] {hit.title}  ({hit.doc_id} {hit.start}-{hit.end})")
        typer.echo(f"   {' '.join(hit.text.split())}\n")


def _hit_json(hit) -> dict:
    data = asdict(hit)
    data["highlights"] = [{"start": span.start, "end": span.end} for span in hit.highlights]
    return data


@app.command()
def serve(
    docs: DocsOption = None,
    index: IndexOption = None,
    host: Annotated[Optional[str], typer.Option("--host", help="Address to listen on [env SEMSEARCH_HOST].")] = None,
    port: Annotated[Optional[int], typer.Option("--port", min=0, max=65535, help="Port [env SEMSEARCH_PORT].")] = None,
) -> None:
    """Serve the API and the search page; builds the index first if there is none."""
    import uvicorn

    from web.app import create_app

    settings = _settings(docs=docs, index=index, host=host, port=port)
    if not index_exists(settings.index):
        typer.echo(f"no index at {settings.index}; building it from {settings.docs}")
        _build(settings)
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    typer.echo(f"semsearch: serving {settings.index} at http://{shown_host}:{settings.port}/ (Ctrl-C stops)")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
