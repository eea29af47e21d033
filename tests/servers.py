"""Real servers for tests, started as our own processes on 127.0.0.1 and stopped by process id.

Loaded as a pytest plugin (``pytest_plugins`` in conftest), so any test can ask for ``milvus_uri``.

Milvus: the ``milvus`` binary that milvus-lite 2.5.1 ships (Milvus's own C++ engine serving the Milvus
gRPC protocol). It is started directly rather than through ``milvus_lite.server.Server``: that wrapper's
package imports ``pkg_resources`` (setuptools) at import time, and with a TCP address it can only stop its
child by SIGKILL after a wait; here we own the one process and end it ourselves.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient, MilvusException

MILVUS_START_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MilvusServer:
    """One milvus-lite server process with its own database file."""

    def __init__(self, folder: Path) -> None:
        spec = importlib.util.find_spec("milvus_lite")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("milvus-lite is not installed: pip install 'semsearch[milvus]'")
        lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, LD_LIBRARY_PATH=f"{lib}:{os.environ.get('LD_LIBRARY_PATH', '')}")
        self.log = (folder / "milvus.log").open("wb")
        self.process = subprocess.Popen(
            [str(lib / "milvus"), str(folder / "milvus.db"), f"127.0.0.1:{self.port}", "ERROR"],
            cwd=folder,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + MILVUS_START_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"milvus-lite exited with {self.process.returncode}; see {self.log.name}")
            try:
                MilvusClient(uri=self.uri, timeout=2).list_collections()
                return
            except MilvusException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"milvus-lite did not answer on {self.uri} within {MILVUS_START_S:.0f} s") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a milvus-lite server that lives for the test session."""
    server = MilvusServer(tmp_path_factory.mktemp("milvus"))
    try:
        yield server.uri
    finally:
        server.stop()
