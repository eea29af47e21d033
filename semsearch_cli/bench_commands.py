"""``semsearch bench``: a real server's speed (no subcommand) and ``bench scale``, the engine at N passages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from indexer.build import build_from_settings
from indexer.readers.pdf_pages import DEFAULT_WIDTH, MAX_WIDTH, MIN_WIDTH
from semsearch_cli.options import BackendOption, DocsOption, IndexOption, MilvusUriOption, QuantizeOption, UserError, settings_from

if TYPE_CHECKING:
    from benchmarks.speed import BenchReport, LatencySummary

bench_app = typer.Typer(add_completion=False, help="Measure speed and memory.")


@bench_app.callback(invoke_without_command=True)
def bench(
    context: typer.Context,
    docs: DocsOption = None,
    index: IndexOption = None,
    quantize: QuantizeOption = None,
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    queries: Annotated[int, typer.Option("--queries", min=1, max=100_000, help="Sequential distinct questions.")] = 200,
    clients_seconds: Annotated[
        float,
        typer.Option("--clients-seconds", min=0, max=3600, help="Throughput run length at each of 1, 8 and 16 clients; 0 skips them."),
    ] = 10,
    during_index: Annotated[
        int,
        typer.Option(
            "--during-index",
            min=0,
            max=100_000,
            help="Search while a POST /index job embeds this many new documents (in a temporary copy); 0 skips it.",
        ),
    ] = 0,
    clients: Annotated[int, typer.Option("--clients", min=0, max=256, help="Concurrent clients for the soak.")] = 16,
    soak_seconds: Annotated[float, typer.Option("--soak-seconds", min=0, max=3600, help="Soak length; 0 skips it.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Measure a real server on loopback: start-up, latency, throughput, a fresh build, optionally searches
    during a re-index and a soak. Relative paths are taken from the current folder."""
    if context.invoked_subcommand is not None:
        return
    from benchmarks.speed import run_bench

    settings = settings_from(docs=docs, index=index, quantize=quantize, backend=backend, milvus_uri=milvus_uri)
    settings = settings.model_copy(update={"docs": settings.docs.resolve(), "index": str(Path(settings.index).resolve())})
    built = build_from_settings(settings)  # nothing to do unless the documents or the encoder changed
    if built.written:
        # Standard error: with --json, standard output is the report alone.
        typer.echo(f"bench: built {settings.index}: {built.total_passages} passages in {built.seconds:.1f}s", err=True)
    report = run_bench(settings, queries, clients, soak_seconds, clients_seconds, during_index)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    _print_report(report)


def _print_report(report: BenchReport) -> None:
    build = report.build
    typer.echo(f"server encoder: {report.encoder}")
    typer.echo(f"start-up to first healthy /health: {report.startup_seconds:.2f} s")
    typer.echo(_latency_line("sequential", report.sequential))
    for run in report.throughput:
        typer.echo(_latency_line(f"{run.clients} clients, {run.searches_per_second:.1f} searches/s", run.latency))
    if report.soak is not None:
        typer.echo(_latency_line(f"soak, {report.soak_clients} clients", report.soak))
    typer.echo(
        f"fresh build ({build.encoder}): model load {build.model_load_seconds:.2f} s, then {build.documents} documents, "
        f"{build.passages} passages in {build.build_seconds:.2f} s ({build.passages_per_second:.1f} passages/s)"
    )
    if (during := report.during_index) is not None:
        typer.echo(
            f"during a POST /index of {during.documents} new documents ({during.encoder}): job {during.job_state} in "
            f"{during.job_seconds:.1f} s, {during.embedded_passages} passages embedded"
        )
        typer.echo(_latency_line(f"  searches meanwhile, {during.clients} clients", during.latency))
    typer.echo(
        f"server resident memory: {report.rss_launch_mb:.0f} MB at launch, {report.rss_warm_mb:.0f} MB after the "
        f"sequential run, {report.rss_end_mb:.0f} MB at the end ({100 * report.growth_after_warmup:+.1f}% after warm-up)"
    )


def _latency_line(label: str, summary: LatencySummary) -> str:
    return (
        f"{label}: {summary.requests} requests in {summary.seconds:.1f} s, {summary.errors} errors; "
        f"p50 {summary.p50_ms:.1f} ms, p95 {summary.p95_ms:.1f} ms, p99 {summary.p99_ms:.1f} ms"
    )


@bench_app.command("scale")
def scale(
    passages: Annotated[int, typer.Option("--passages", help="Passages in the synthetic collection (10 per file).")],
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Where the temporary collection and index go [default: the temp folder].")
    ] = None,
    vectors: Annotated[
        str,
        typer.Option(
            "--vectors",
            help="mixtures (of real embeddings, like the model's) or hashed (bag of words, as before issue 18; needs no model).",
        ),
    ] = "mixtures",
    backend: BackendOption = None,
    milvus_uri: MilvusUriOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build, update, compact, load and search a synthetic index of N passages; embedding is excluded (a stand-in makes vectors)."""
    from benchmarks.scale import run_scale

    location = settings_from(index="scale", backend=backend, milvus_uri=milvus_uri).location()
    result = run_scale(
        passages, workdir, log=lambda message: typer.echo(f"bench scale: {message}", err=True), vectors=vectors, backend=location
    )
    _print_result(result, as_json)


@bench_app.command("vectors")
def vectors_match(
    noise: Annotated[float | None, typer.Option("--noise", min=0, max=10, help="Noise length of the mixtures (the tuned default).")] = None,
    sentences: Annotated[
        Path | None,
        typer.Option(
            "--sentences",
            exists=True,
            dir_okay=False,
            help="Real sentences, one a line (python -m benchmarks.docstrings): check the IVF probe rule on their embeddings.",
        ),
    ] = None,
    sizes: Annotated[str, typer.Option("--sizes", help="With --sentences: comma-separated index sizes.")] = "10000,50000,100000",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """IVF recall against nprobe on the real embedded basis sentences beside mixtures of equal count; with
    --sentences, the local backend's probe rule on real embeddings of each size beside mixtures."""
    if sentences is not None:
        from benchmarks.probe_rule import check_probe_rule

        result = check_probe_rule(sentences, _sizes(sizes), log=lambda message: typer.echo(f"bench vectors: {message}", err=True))
    else:
        from benchmarks.vectors import compare_curves, load_basis

        basis = load_basis()
        result = compare_curves(basis) if noise is None else compare_curves(basis, noise=noise)
    _print_result(result, as_json)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"--sizes must be comma-separated whole numbers, not {text!r}") from None
    if not sizes or min(sizes) < 1000 or max(sizes) > 5_000_000:
        raise typer.BadParameter("--sizes must each be between 1000 and 5000000")
    return sizes


@bench_app.command("ann")
def ann(
    vectors: Annotated[
        int, typer.Option("--vectors", min=1000, max=5_000_000, help="Synthetic vectors (mixtures of real embeddings) to index.")
    ],
    kinds: Annotated[str, typer.Option("--kinds", help="Comma-separated: ivf, ivf-fp16, ivf-sq8, hnsw.")] = "ivf,ivf-fp16,ivf-sq8,hnsw",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Build each ANN index on N realistic vectors and measure build time, memory, disk, latency and recall@10."""
    from benchmarks.ann import run_ann

    result = run_ann(vectors, kinds.split(","), log=lambda message: typer.echo(f"bench ann: {message}", err=True))
    _print_result(result, as_json)


@bench_app.command("pages")
def pages(
    pdfs: Annotated[list[Path] | None, typer.Argument(help="PDF files [default: every PDF under the documents folder].")] = None,
    docs: DocsOption = None,
    width: Annotated[int, typer.Option("--width", min=MIN_WIDTH, max=MAX_WIDTH, help="Image width in pixels.")] = DEFAULT_WIDTH,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Render every page of some PDFs as the page-image route does on a cache miss, with a passage and its
    answer marked: milliseconds per page."""
    from benchmarks.page_render import run_page_render

    chosen = pdfs or sorted(settings_from(docs=docs).docs.rglob("*.pdf"))
    if not chosen:
        raise UserError("no PDF to render: name some, or point --docs at a folder that holds PDFs")
    _print_result(run_page_render(chosen, width, log=lambda message: typer.echo(f"bench pages: {message}", err=True)), as_json)


def _print_result(result: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        typer.echo(f"{key}: {json.dumps(value)}")
