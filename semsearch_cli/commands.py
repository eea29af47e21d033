"""The subcommands. Each validates its options, calls the library and prints; nothing here ranks or indexes."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from indexer.build import BuildReport, build_from_settings
from indexer.chunking import ChunkingParams
from indexer.progress import ProgressDisplay
from search.backends.contract import Maintainable
from search.backends.registry import backend_class
from search.ranking.rules import DEFAULT_MODE, FACETS, MAX_K, MODES, SearchRequest, normalize_folder, parse_facets, validate_request
from search.ranking.searcher import Searcher
from search.settings import Settings
from semsearch_cli.options import (
    BackendOption,
    DeviceOption,
    DocsOption,
    IndexOption,
    LogFormatOption,
    MilvusTokenOption,
    MilvusUriOption,
    ModelOption,
    QuantizeOption,
    UserError,
    settings_from,
)
from semsearch_cli.search_output import print_result, wants_color

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Semantic search over a folder of documents.")

cli_log = logging.getLogger("semsearch.cli")


def announce(settings: Settings, event: str, message: str, **fields: object) -> None:
    """A line on stdout for people, or with ``--log-format json`` a JSON log line with ``event`` and ``fields``."""
    if settings.log_format == "json":
        cli_log.info(message, extra={"fields": {"event": event, **fields}})
    else:
        typer.echo(message)


@app.command()
def index(
    docs: DocsOption = None,
    index: IndexOption = None,
    model: ModelOption = None,
    quantize: QuantizeOption = None,
    device: DeviceOption = None,
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    milvus_token: MilvusTokenOption = None,
    full: Annotated[bool, typer.Option("--full", help="Re-embed everything.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="One line per added, updated, removed or unread file.")] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Read and embed on a Ray cluster (host:port or ray://...), or 'local' for a "
            "Ray runtime in this process; needs the 'ray' extra [env SEMSEARCH_RAY].",
        ),
    ] = None,
) -> None:
    """Build or update the index: only files whose size or time changed are read, only new content embedded.

    The index remembers its model and encoder precision; searches use the same, and changing either rebuilds."""
    settings = settings_from(
        docs=docs,
        index=index,
        model=model,
        quantize=quantize,
        device=device,
        backend=backend,
        milvus_uri=milvus_uri,
        milvus_token=milvus_token,
        ray=ray,
    )
    _build(settings, full=full, verbose=verbose)


@app.command()
def compact(
    index: IndexOption = None,
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    milvus_token: MilvusTokenOption = None,
    force: Annotated[bool, typer.Option("--force", help="Merge every small segment and drop every tombstone.")] = True,
) -> None:
    """Merge small vector segments and drop deleted passages' vectors; searches go on meanwhile."""
    settings = settings_from(index=index, backend=backend, milvus_uri=milvus_uri, milvus_token=milvus_token)
    location = settings.location()
    kind = backend_class(location.backend)
    with kind.writer(location):
        live = kind.open(location)
        try:
            if not isinstance(live, Maintainable):
                raise UserError(f"the {kind.name} backend does its own housekeeping; there is nothing to compact")
            live.recover()
            report = live.maintain(force=force)
        finally:
            live.close()
    typer.echo(
        f"merged {report.merged_segments} segments, dropped {report.dropped_deleted} deleted vectors; {report.segments_after} segments now"
    )


def _build(settings: Settings, full: bool = False, verbose: bool = False) -> None:
    report = build_from_settings(settings, full=full, progress=progress_display(settings))
    print_build_report(report, settings.index, verbose)


def progress_display(settings: Settings) -> ProgressDisplay:
    """A bar on a terminal; elsewhere (a container log, CI, a pipe) a line about every 30 s, on stderr or as
    a JSON log line."""
    if sys.stderr.isatty():
        return ProgressDisplay(bar=True)
    if settings.log_format == "json":
        return ProgressDisplay(emit=lambda line: cli_log.info(line, extra={"fields": {"event": "progress"}}))
    return ProgressDisplay(emit=lambda line: typer.echo(line, err=True))


def print_build_report(report: BuildReport, index_dir: str, verbose: bool = False) -> None:
    """A summary line; per-file lines only with ``--verbose`` (a large folder would print thousands)."""
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if report.full_rebuild_reason:
        typer.echo(f"full rebuild: {report.full_rebuild_reason}")
    for label, ids in (("added", report.added), ("updated", report.updated), ("removed", report.removed)):
        for doc_id in ids if verbose else ():
            typer.echo(f"{label}: {doc_id}")
    for reason, ids in sorted(report.left_out.items(), key=lambda item: (-len(item[1]), item[0])):
        for doc_id in sorted(ids) if verbose else ():
            typer.echo(f"not read: {doc_id} ({reason})")
        typer.echo(f"{len(ids)} {'file' if len(ids) == 1 else 'files'} not read: {reason}")
    if report.rows_by_worker:
        workers = ", ".join(f"{worker} {rows}" for worker, rows in sorted(report.rows_by_worker.items()))
        typer.echo(f"rows written by Ray workers: {workers}; {report.rows_through_driver} passage and sentence rows through this process")
    state = "written" if report.written else "unchanged"
    typer.echo(
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.removed)} removed, "
        f"{report.kept} kept; {report.embedded_passages} passages embedded, {report.total_passages} in total; "
        f"{report.embedded_tokens:,} tokens embedded, {_rate(report):,.0f} tokens/s; "
        f"index {state} at {index_dir} in {report.seconds:.1f}s"
    )


def _rate(report: BuildReport) -> float:
    """Tokens embedded per second of reading and embedding."""
    return report.embedded_tokens / report.embedding_seconds if report.embedding_seconds else 0.0


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    index: IndexOption = None,
    k: Annotated[int, typer.Option("-k", "--k", help=f"How many passages (1..{MAX_K}).")] = 5,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many results (paging).")] = 0,
    mode: Annotated[str, typer.Option("--mode", help=f"Ranking: {', '.join(MODES)}.")] = DEFAULT_MODE,
    doc_id: Annotated[list[str] | None, typer.Option("--doc-id", help="Only this document (repeatable).")] = None,
    date_from: Annotated[str | None, typer.Option("--date-from", help="Only documents dated on or after (YYYY-MM-DD).")] = None,
    date_to: Annotated[str | None, typer.Option("--date-to", help="Only documents dated on or before (YYYY-MM-DD).")] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--type", help="Only documents with this file extension, e.g. pdf (repeatable).")
    ] = None,
    folder: Annotated[str | None, typer.Option("--folder", help="Only documents under this folder, e.g. notes/2024.")] = None,
    facets: Annotated[str | None, typer.Option("--facets", help=f"Count documents per value of these facets ({','.join(FACETS)}).")] = None,
    group_by: Annotated[str | None, typer.Option("--group-by", help="'document': at most one passage per document.")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Drop results scoring lower (scores are 0..1).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Show matched terms, best sentence and fusion inputs.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    color: Annotated[
        str, typer.Option("--color", help="Mark answers in color: auto (on a terminal, unless NO_COLOR is set), always or never.")
    ] = "auto",
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    milvus_token: MilvusTokenOption = None,
) -> None:
    """Print the passages that best answer QUESTION; the same filters as the API, checked by the same rules."""
    request = SearchRequest(
        question,
        k=k,
        offset=offset,
        doc_ids=tuple(doc_id or ()),
        date_from=date_from,
        date_to=date_to,
        group_by=group_by,
        min_score=min_score,
        mode=mode,
        explain=explain,
        types=tuple(kind or ()),
        folder=normalize_folder(folder),
        facets=parse_facets(facets),
    )
    validate_request(request)
    colored = wants_color(color)
    settings = settings_from(index=index, backend=backend, milvus_uri=milvus_uri, milvus_token=milvus_token)
    searcher = Searcher.open(settings.location())
    result = searcher.search(request)
    for notice in result.notices:
        typer.echo(f"notice: {notice}", err=True)
    if as_json:
        payload = {
            "query": question,
            "mode": result.mode,
            "total": result.total,
            "notices": list(result.notices),
            "corrections": [{"from": c.original, "to": c.corrected} for c in result.corrections],
            "facets": result.facets,
            "results": [asdict(hit) for hit in result.hits],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    print_result(result, colored)


@app.command()
def serve(
    docs: DocsOption = None,
    index: IndexOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on [env SEMSEARCH_HOST].")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port [env SEMSEARCH_PORT].")] = None,
    watch: Annotated[
        bool | None, typer.Option("--watch", help="Keep the index in step with the documents folder [env SEMSEARCH_WATCH].")
    ] = None,
    quantize: QuantizeOption = None,
    device: DeviceOption = None,
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    milvus_token: MilvusTokenOption = None,
    log_format: LogFormatOption = None,
    mcp: Annotated[
        bool | None,
        typer.Option("--mcp", help="Also serve the MCP tools at /mcp (streamable HTTP), behind the search token [env SEMSEARCH_MCP]."),
    ] = None,
) -> None:
    """Serve the API and the search page; builds the index first if there is none."""
    import uvicorn

    from semsearch_cli.log_format import configure_logging
    from web.app import MAX_REQUEST_HEAD_BYTES, create_app

    settings = settings_from(
        docs=docs,
        index=index,
        host=host,
        port=port,
        watch=watch,
        quantize=quantize,
        device=device,
        backend=backend,
        milvus_uri=milvus_uri,
        milvus_token=milvus_token,
        log_format=log_format,
        mcp=mcp,
    )
    configure_logging(settings.log_format)
    location = settings.location()
    if not backend_class(location.backend).exists(location):
        announce(settings, "building", f"no index at {settings.index}; building it from {settings.docs}")
        if settings.log_format == "json":
            announce(settings, "built", "index built", **asdict(build_from_settings(settings, progress=progress_display(settings))))
        else:
            _build(settings)
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{shown_host}:{settings.port}/"
    announce(settings, "serving", f"semsearch: serving {settings.index} at {url} (Ctrl-C stops)", index=str(settings.index), url=url)
    # Logging is configured above, once for the build and the server: uvicorn is told to leave it alone.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
    )


@app.command("mcp")
def mcp_stdio(
    index: IndexOption = None,
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    milvus_token: MilvusTokenOption = None,
) -> None:
    """Serve the search and get_document tools to an assistant over stdio (the Model Context Protocol)."""
    from semsearch_cli.log_format import configure_logging
    from web.engine import Engine
    from web.mcp_server import build_mcp_server

    settings = settings_from(index=index, backend=backend, milvus_uri=milvus_uri, milvus_token=milvus_token)
    # Logs go to stderr: stdout carries the protocol.
    configure_logging(settings.log_format)
    engine = Engine(settings.location())
    engine.load()
    build_mcp_server(engine).run("stdio")


@app.command("eval")
def evaluate(
    path: Annotated[Path, typer.Argument(help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) or a questions .jsonl file.")],
    docs: Annotated[Path | None, typer.Option("--docs", help="Documents the questions file is about [default: SEMSEARCH_DOCS].")] = None,
    mode: Annotated[list[str] | None, typer.Option("--mode", help="Mode(s) to evaluate; all by default.")] = None,
    model: ModelOption = None,
    quantize: QuantizeOption = None,
    index: Annotated[
        str | None, typer.Option("--index", help="An index URL (milvus://HOST:PORT/NAME) whose server holds the temporary index.")
    ] = None,
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    milvus_token: MilvusTokenOption = None,
    typos: Annotated[
        bool, typer.Option("--typos", help="Questions files: also score each mode with one seeded typo per question.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measure ranking quality in a temporary index: nDCG@10, recall@100, MRR@10 (BEIR) or hit@1, hit@5, MRR@10 (questions)."""
    from evaluation.runner import evaluate_beir, evaluate_questions

    settings = settings_from(
        docs=docs, model=model, quantize=quantize, index=index or "eval", backend=backend, milvus_uri=milvus_uri, milvus_token=milvus_token
    )
    modes = mode or list(MODES)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise UserError(f"unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
    params = ChunkingParams(settings.chunk_tokens, settings.overlap_sentences)
    if path.is_file():
        report = evaluate_questions(
            path,
            settings.docs,
            modes,
            settings.model,
            params,
            settings.max_file_bytes,
            quantize=settings.quantize,
            backend=settings.location(),
            typos=typos,
        )
    elif path.is_dir():
        report = evaluate_beir(
            path,
            modes,
            settings.model,
            params,
            show_progress=sys.stderr.isatty(),
            quantize=settings.quantize,
            backend=settings.location(),
        )
    else:
        raise UserError(f"{path} is neither a BEIR folder nor a questions file")
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    typer.echo(f"{report.dataset}: {report.queries} queries, {report.seconds:.0f} s")
    metrics = list(next(iter(report.modes.values())))
    width = max([10, *(len(name) + 1 for name in report.modes)])
    typer.echo("mode".ljust(width) + "".join(f"{name:>12}" for name in metrics))
    for name, values in report.modes.items():
        typer.echo(name.ljust(width) + "".join(f"{values[m]:>12.4f}" for m in metrics))
    if report.skipped:
        typer.echo(f"skipped {len(report.skipped)} queries the engine refused (scored as finding nothing):")
        for query, reason in report.skipped.items():
            typer.echo(f"  {query[:60]}: {reason}")
