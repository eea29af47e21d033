"""Entry point: parses arguments, turns every user mistake into one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # mypy reads the typer installed, which carries its own click (one name, one module)
    from typer._click import exceptions as cli_exceptions
else:
    try:  # typer 0.25 and later carry their own copy of click
        from typer._click import exceptions as cli_exceptions
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as cli_exceptions

# Importing snapshot_commands and watch_commands registers ``snapshot``, ``restore`` and ``watch``.
from semsearch_cli import commands, snapshot_commands, watch_commands  # noqa: F401 - imported for that registration
from semsearch_cli.bench_commands import bench_app
from semsearch_cli.options import UserError

commands.app.add_typer(bench_app, name="bench")

EXIT_USER_ERROR = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; never lets a traceback reach the user for a mistake they can fix."""
    command = typer.main.get_command(commands.app)
    try:
        command.main(args=argv, prog_name="semsearch", standalone_mode=False)
    except cli_exceptions.UsageError as exc:
        return _fail(exc.format_message(), EXIT_USAGE)
    except typer.Abort:
        return _fail("interrupted", 130)
    except UserError as exc:
        return _fail(str(exc), EXIT_USER_ERROR)
    except typer.Exit as exc:
        return exc.exit_code
    return 0


def _fail(message: str, code: int) -> int:
    print(f"semsearch: error: {message}", file=sys.stderr)
    return code


def run() -> None:
    sys.exit(main())
