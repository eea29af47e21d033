"""Starting ``semsearch serve`` as a separate process on loopback, for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen
    docs: Path
    index: Path
    started_at: float
    # The server's stderr goes to a file: a pipe nobody reads fills up (64 KB), and the server then blocks
    # in its next log line, with every request it holds.
    log_path: Path

    def resident_bytes(self) -> int:
        """The server's resident memory, from /proc (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def output_tail(self, characters: int = 2000) -> str:
        """The last ``characters`` (0: all) of what the server wrote to stderr so far."""
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return ""

    def stop(self) -> str:
        """Stop the server and remove its log; what it wrote to stderr, all of it."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        output = self.output_tail(characters=0)
        self.log_path.unlink(missing_ok=True)
        return output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(
    docs: Path,
    index: Path,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    timeout: float = 240,
    options: tuple[str, ...] = (),
) -> ServerProcess:
    """Start a server and wait (bounded) until ``/health`` answers 200 (or any answer if not ``wait_ready``).

    ``options`` are added to the ``semsearch serve`` command line (e.g. ``("--log-format", "json")``).

    ``docs`` and ``index`` are resolved against the caller's current folder: the server runs from the project
    folder, where a relative path would name another place.
    """
    docs, index = Path(docs).resolve(), Path(index).resolve()
    port = free_port()
    environment = {**os.environ, "SEMSEARCH_DOCS": str(docs), "SEMSEARCH_INDEX": str(index), **(env or {})}
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile(prefix="semsearch-serve-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "semsearch_cli", "serve", "--host", "127.0.0.1", "--port", str(port), *options],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, docs, index, started, Path(log.name))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = server.output_tail()
            server.log_path.unlink(missing_ok=True)
            raise RuntimeError(f"server exited: {output}")
        try:
            status = httpx.get(f"{server.url}/health", timeout=2).status_code
            if status == 200 or not wait_ready:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server did not become ready within {timeout:.0f} s")
