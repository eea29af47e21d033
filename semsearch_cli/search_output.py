"""How ``semsearch search`` prints a result for people: one block per hit, the answer sentence marked on a terminal.

Color follows the usual conventions: on by default only when stdout is a terminal and ``NO_COLOR`` is not
set (https://no-color.org), ``--color always`` forces it (through a pipe to ``less -R``, for instance) and
``--color never`` turns it off. Without color the text is exactly what it was before marking existed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable

import typer

from search.errors import SemsearchError
from search.ranking.searcher import SearchResult
from search.records import Hit, Span

COLOR_CHOICES = ("auto", "always", "never")


def wants_color(choice: str) -> bool:
    """Whether ``--color CHOICE`` colors stdout here; an unknown choice is a user error naming the valid ones."""
    if choice not in COLOR_CHOICES:
        raise SemsearchError(f"--color takes {', '.join(COLOR_CHOICES)}, not {choice!r}")
    if choice == "auto":
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return choice == "always"


def print_result(result: SearchResult, color: bool) -> None:
    """What was searched when a word was corrected, the facet counts asked for, then each hit's rank, score,
    title and place, its text on one line with the answer marked, and its explanation."""
    if result.corrections:
        typer.echo(f"showing results for: {result.searched}")
        typer.echo("")
    for name, counts in result.facets.items():
        typer.echo(f"{name}: " + (", ".join(f"{value} ({count})" for value, count in counts.items()) or "none"))
    if result.facets:
        typer.echo("")
    if not result.hits:
        typer.echo("no results")
    for hit in result.hits:
        where = "".join(part for part in (f" p. {hit.page}" if hit.page else "", f" § {hit.section}" if hit.section else ""))
        typer.echo(f"{hit.rank}. [{hit.score:.3f}] {hit.title}  ({hit.doc_id} {hit.start}-{hit.end}{where})")
        typer.echo("   " + marked_text(hit, color), color=color)
        if hit.explain:
            typer.echo(f"   explain: {json.dumps(hit.explain, ensure_ascii=False)}")
        typer.echo("")


def marked_text(hit: Hit, color: bool) -> str:
    """The hit's text with runs of white space made one space; its highlighted sentences styled when ``color``."""
    runs = _collapsed_runs(hit.text, _marked_characters(len(hit.text), hit.highlights))
    return "".join(typer.style(run, fg="magenta", bold=True) if marked and color else run for run, marked in runs)


def _marked_characters(length: int, spans: Iterable[Span]) -> list[bool]:
    marked = [False] * length
    for span in spans:
        for position in range(max(span.start, 0), min(span.end, length)):
            marked[position] = True
    return marked


def _collapsed_runs(text: str, marked: list[bool]) -> list[tuple[str, bool]]:
    """``text`` stripped, each run of white space one space (marked only inside a marked stretch), cut into
    (piece, marked) runs."""
    runs: list[tuple[str, bool]] = []
    pending_space = False
    for position, char in enumerate(text):
        if char.isspace():
            pending_space = bool(runs)
            continue
        if pending_space:
            _append(runs, " ", marked[position] and runs[-1][1])
            pending_space = False
        _append(runs, char, marked[position])
    return runs


def _append(runs: list[tuple[str, bool]], piece: str, marked: bool) -> None:
    if runs and runs[-1][1] == marked:
        runs[-1] = (runs[-1][0] + piece, marked)
    else:
        runs.append((piece, marked))
