"""A real two-node Ray cluster on 127.0.0.1 for tests: started with ``ray start``, stopped by process id.

Each node is one ``ray start --block`` process in a session of its own, with its own temp folder; it
stops its raylet, object store and workers when it gets SIGTERM, and anything left in its process
group is killed after. The cluster keeps Ray's default token authentication on, with a token made
for the test run and handed over in the environment (``RAY_AUTH_MODE=token``, ``RAY_AUTH_TOKEN``),
so nothing is written to ``~/.ray`` and a client joins the way an operator's would.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_RAY = str(Path(sys.executable).with_name("ray"))
_READY = "Ray runtime started"
_OBJECT_STORE_BYTES = 200_000_000


def auth_environment(token: str) -> dict[str, str]:
    """What a Ray process needs to serve or join a cluster with token authentication, quietly."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass
class RayCluster:
    address: str
    token: str
    folder: Path
    nodes: list[subprocess.Popen] = field(default_factory=list)

    @classmethod
    def start(cls, nodes: int = 2) -> RayCluster:
        """A head node and ``nodes - 1`` workers, one CPU each, all on 127.0.0.1."""
        folder = Path(tempfile.mkdtemp(prefix="ssray-"))  # short: Ray's socket paths must fit in 107 bytes
        cluster = cls(f"127.0.0.1:{_free_port()}", secrets.token_hex(32), folder)
        try:
            cluster._start_node("head", ["--head", f"--port={cluster.address.rsplit(':', 1)[1]}", "--include-dashboard=false"])
            for number in range(1, nodes):
                cluster._start_node(f"worker{number}", [f"--address={cluster.address}"])
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_node(self, name: str, role: list[str]) -> None:
        temp = self.folder / name
        temp.mkdir()
        log = self.folder / f"{name}.log"
        environment = {
            **os.environ,
            **auth_environment(self.token),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        command = [
            _RAY,
            "start",
            "--block",
            *role,
            "--node-ip-address=127.0.0.1",
            "--num-cpus=1",
            f"--object-store-memory={_OBJECT_STORE_BYTES}",
            f"--dashboard-agent-listen-port={_free_port()}",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ]
        with open(log, "wb") as output:
            node = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        self.nodes.append(node)
        deadline = time.monotonic() + 120
        while _READY not in log.read_text(errors="replace"):
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray node {name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Workers first, then the head; each by its pid, then whatever its process group still holds."""
        for node in reversed(self.nodes):
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
        self.nodes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
