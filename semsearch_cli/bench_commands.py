"""``semsearch bench``: a real server's speed (no subcommand) and ``bench scale``, the engine at N passages.

Imported by ``commands`` after it has defined the shared options and helpers this module uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from search.index_format import index_exists
from semsearch_cli.commands import DocsOption, IndexOption, _build, _settings

bench_app = typer.Typer(add_completion=False, help="Measure speed and memory.")


@bench_app.callback(invoke_without_command=True)
def bench(
    context: typer.Context,
    docs: DocsOption = None,
    index: IndexOption = None,
    queries: Annotated[int, typer.Option("--queries", min=1, max=100_000, help="Sequential distinct questions.")] = 200,
    clients: Annotated[int, typer.Option("--clients", min=0, max=256, help="Concurrent clients for the soak.")] = 16,
    soak_seconds: Annotated[float, typer.Option("--soak-seconds", min=0, max=3600, help="Soak length; 0 skips it.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measure a real server on loopback: start-up time, search latency, optionally a soak."""
    if context.invoked_subcommand is not None:
        return
    from evaluation.speed import run_bench

    settings = _settings(docs=docs, index=index)
    if not index_exists(settings.index):
        _build(settings)
    report = run_bench(settings.docs, settings.index, queries, clients, soak_seconds)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    typer.echo(f"start-up to first healthy /health: {report.startup_seconds:.2f} s")
    for label, summary in (("sequential", report.sequential), (f"soak, {report.soak_clients} clients", report.soak)):
        if summary is not None:
            typer.echo(
                f"{label}: {summary.requests} requests in {summary.seconds:.1f} s, {summary.errors} errors; "
                f"p50 {summary.p50_ms:.1f} ms, p95 {summary.p95_ms:.1f} ms, p99 {summary.p99_ms:.1f} ms"
            )
    typer.echo(
        f"server resident memory: {report.rss_launch_mb:.0f} MB at launch, {report.rss_warm_mb:.0f} MB after the "
        f"sequential run, {report.rss_end_mb:.0f} MB at the end ({100 * report.growth_after_warmup:+.1f}% after warm-up)"
    )


@bench_app.command("scale")
def scale(
    passages: Annotated[int, typer.Option("--passages", help="Passages in the synthetic collection (10 per file).")],
    workdir: Annotated[Optional[Path], typer.Option("--workdir", help="Where the temporary collection and index go [default: the temp folder].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build, update, compact, load and search a synthetic index of N passages; embedding is excluded (a stand-in makes vectors)."""
    from evaluation.scale import run_scale

    result = run_scale(passages, workdir, log=lambda message: typer.echo(f"bench scale: {message}", err=True))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        typer.echo(f"{key}: {json.dumps(value)}")
