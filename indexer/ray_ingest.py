"""A build's reading, chunking and embedding spread over a Ray cluster (``semsearch index --ray ADDRESS``).

The build's process (the driver) keeps what needs the index: stat-first change detection decides which
files to read, and every result goes to the backend through its one commit protocol. Ray Data runs the
rest: each file is read, hashed and extracted in a task (``read_changed``, the step a local build runs
in-process), and an actor pool of encoders chunks and embeds the documents (``document_upserts``), each
actor loading the model once, on its node's GPU when ONNX Runtime has CUDA there.

Files are read by path on the node that runs the task, as ``ray.data.read_binary_files`` reads local
paths: the documents folder must be at the same path on every node (a shared or synced volume). Every
node runs the same semsearch install (one container image), since tasks import ``indexer`` and ``search``.

Results come back as they are ready and are handed on one file at a time; the driver commits them as a
local build does (``indexer.changes``), so its memory is bounded by the commit, not by the folder, and Ray
Data's backpressure holds the cluster back while the driver commits.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunking import ChunkingParams
from indexer.documents import FileEntry, read_changed
from indexer.progress import BuildProgress
from indexer.upserts import IngestedFile, ingested_files
from search.encoding.embedding import load_embedder
from search.errors import SemsearchError, first_line

LOCAL = "local"
# Documents per encoder call, one encode over their distinct passages: few enough that a small folder still
# spreads over every encoder, since one document alone fills several forward passes.
DOCUMENTS_PER_CALL = 4

# How long a cluster address may take to accept a connection before it is reported as unreachable.
_CONNECT_TIMEOUT_S = 5.0


class RayUnavailable(SemsearchError):
    """Ray is not installed, or the cluster cannot be joined."""


def ray_ingest(
    address: str,
    pending: list[tuple[FileEntry, str | None]],
    model: str,
    quantize: str | None,
    params: ChunkingParams,
    max_bytes: int,
    progress: BuildProgress,
) -> Iterator[IngestedFile]:
    """Read, chunk and embed the ``pending`` files (each with the hash the index holds for it, if any) on
    the cluster at ``address`` (``local``: a private runtime in this process), as they come back."""
    if not pending:
        return
    with _joined(address):
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        rows = [
            {"doc_id": e.doc_id, "path": str(e.path), "size": e.size, "mtime_ns": e.mtime_ns, "sha256": sha or ""} for e, sha in pending
        ]
        dataset = (
            ray.data.from_items(rows)
            .map(partial(_read, max_bytes=max_bytes))
            .map_batches(_Encoder, fn_constructor_args=(model, quantize, params), batch_size=DOCUMENTS_PER_CALL, **_encoder_pool())
        )
        for row in dataset.iter_rows():
            file: IngestedFile = pickle.loads(row["file"])
            embedded = file.embedded
            progress.embedded(0, embedded.tokens if embedded else 0)
            progress.files_done(1, file.read.entry.size, len(embedded.upsert.passages) if embedded else 0)
            yield file


@contextmanager
def _joined(address: str) -> Iterator[None]:
    """Connected to the cluster at ``address`` for the block, or to a private local runtime stopped after it.

    A cluster with token authentication (Ray's default since 2.52) is joined with ``RAY_AUTH_MODE=token``
    and ``RAY_AUTH_TOKEN`` (or ``RAY_AUTH_TOKEN_PATH``) in the environment, which Ray reads itself.
    """
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray needs Ray: pip install 'semsearch[ray]'") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address != LOCAL:
        _require_reachable(address)
    try:
        if address == LOCAL:
            ray.init(include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except Exception as exc:  # noqa: BLE001 - ray.init raises many kinds; all mean "no cluster to use"
        hint = "" if address == LOCAL else "; a cluster with token authentication needs RAY_AUTH_MODE=token and RAY_AUTH_TOKEN"
        raise RayUnavailable(f"cannot join Ray at {address}: {first_line(exc)}{hint}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _require_reachable(address: str) -> None:
    """A one-line refusal within seconds for an address nothing answers on: ``ray.init`` itself retries an
    unreachable cluster for minutes. ``auto`` (Ray's own lookup of a cluster started on this machine) is left
    to Ray."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailable(f"--ray takes local, auto, HOST:PORT or ray://HOST:PORT, not {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise RayUnavailable(f"cannot join Ray at {address}: nothing answers there ({exc.strerror or exc})") from None


def _encoder_pool() -> dict[str, Any]:
    """One encoder per GPU when the cluster has GPUs, else one per node: an ONNX session already runs a
    forward pass on all of a node's cores, so a second encoder per CPU node would only split them."""
    import ray
    from ray.data import ActorPoolStrategy

    gpus = int(ray.cluster_resources().get("GPU", 0))
    if gpus:
        return {"compute": ActorPoolStrategy(size=gpus), "num_gpus": 1}
    nodes = sum(1 for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU", 0) >= 1)
    return {"compute": ActorPoolStrategy(size=max(nodes, 1)), "num_cpus": 1}


def _read(row: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """A Ray task: one file read, hashed and extracted. Results travel pickled: Arrow has no type for them."""
    entry = FileEntry(row["doc_id"], Path(row["path"]), int(row["size"]), int(row["mtime_ns"]))
    return {"read": pickle.dumps(read_changed(entry, row["sha256"] or None, max_bytes))}


class _Encoder:
    """A Ray actor: the model loaded once, then documents chunked and embedded a batch at a time."""

    def __init__(self, model: str, quantize: str | None, params: ChunkingParams) -> None:
        self._embedder = load_embedder(model, quantize, "auto")
        self._params = params

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
        reads = [pickle.loads(raw) for raw in batch["read"]]
        return {"file": [pickle.dumps(file) for file in ingested_files(reads, self._embedder, self._params)]}
