"""Measurements taken in a fresh Python process, the way a server starts: JSON request in, JSON figures out.

Load time and resident memory mean something only in a process that has not already loaded the index,
the model or the libraries: the benchmarks hand the measuring step to ``python -c`` and read its answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from search.errors import SemsearchError


def run_fresh(module: str, entry: str, request: dict[str, Any], what: str) -> dict[str, Any]:
    """Call ``module.entry()`` in a new interpreter with ``request`` on its standard input; its JSON answer."""
    completed = subprocess.run(
        [sys.executable, "-c", f"from {module} import {entry}; {entry}()"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if completed.returncode != 0:
        raise SemsearchError(f"{what} failed: {completed.stderr.strip().splitlines()[-1:]}")
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer
