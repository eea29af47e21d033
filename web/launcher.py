"""Starting ``semsearch serve`` as a separate process on loopback, for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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

    def resident_bytes(self) -> int:
        """The server's resident memory, from /proc (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


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
    process = subprocess.Popen(
        [sys.executable, "-m", "semsearch_cli", "serve", "--host", "127.0.0.1", "--port", str(port), *options],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, docs, index, started)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode(errors='replace')[-2000:]}")
        try:
            status = httpx.get(f"{server.url}/health", timeout=2).status_code
            if status == 200 or not wait_ready:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server did not become ready within {timeout:.0f} s")
