"""A build's reading, chunking, embedding and writing spread over a Ray cluster (``semsearch index --ray ADDRESS``).

The build's process (the driver) keeps what needs the index: stat-first change detection decides which
files to read, and every change goes through the backend's one commit protocol. Ray Data runs the rest:

    read    a CPU task per file: read, hashed, extracted (``read_changed``, as a local build does)
    chunk   a CPU task per ``FILES_PER_CHUNK_TASK`` files: cut into passages with the model's tokenizer
            alone, and packed into groups of at least ``EMBED_PASSAGES`` passages
    embed   an actor pool of encoders, each with the model loaded once (on its node's GPU when ONNX
            Runtime has CUDA there), one group per call

Where the backend offers ``StagedWrites`` (Milvus), the encoders also write each group's rows to it
themselves, under a stage the driver reserved, and send back only counts: no passage row passes through
the driver, which commits once per stage. Otherwise (local files) the embedded documents come back to the
driver as they are ready, which commits them as a local build does (``indexer.changes``): its memory is
bounded by the commit, not by the folder, and Ray Data's backpressure holds the cluster back meanwhile.

Files are read by path on the node that runs the task, as ``ray.data.read_binary_files`` reads local
paths: the documents folder must be at the same path on every node (a shared or synced volume). Every
node runs the same semsearch install (one container image), since tasks import ``indexer`` and ``search``;
with Milvus, workers need ``SEMSEARCH_MILVUS_TOKEN`` in their environment when the server wants one.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunking import ChunkingParams
from indexer.documents import FileEntry, FileRead, read_changed
from indexer.progress import BuildProgress
from indexer.upserts import ChunkedDocument, IngestedBatch, IngestedFile, StagedCost, chunk_documents, embed_chunked
from search.backends.contract import Stage
from search.encoding.embedding import load_embedder, load_tokenizer
from search.errors import SemsearchError, first_line

LOCAL = "local"
# Passages per encoder call: enough for full batches on a GPU; a chunking task's last group may hold fewer.
EMBED_PASSAGES = 256
# Files per chunking task (one task's documents are packed into groups of EMBED_PASSAGES).
FILES_PER_CHUNK_TASK = 64


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
    stage: Stage | None = None,
) -> Iterator[IngestedBatch]:
    """Read, chunk and embed the ``pending`` files (each with the hash the index holds for it, if any) on the cluster
    at ``address`` (``local``: a private runtime in this process), one batch per encoder call as they come back. With
    a ``stage`` (one slot per pending file, in order), the workers write the rows and the batches carry counts."""
    if not pending:
        return
    with _joined(address):
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        rows = [
            {"doc_id": e.doc_id, "path": str(e.path), "size": e.size, "mtime_ns": e.mtime_ns, "sha256": sha or "", "slot": slot}
            for slot, (e, sha) in enumerate(pending)
        ]
        dataset = (
            ray.data.from_items(rows)
            .map(partial(_read, max_bytes=max_bytes))
            .map_batches(partial(_chunk, model=model, params=params), batch_size=FILES_PER_CHUNK_TASK, num_cpus=1)
            .map_batches(_Encoder, fn_constructor_args=(model, quantize, stage), batch_size=1, **_encoder_pool())
        )
        for row in dataset.iter_rows():
            batch = IngestedBatch(pickle.loads(row["files"]))
            for part in pickle.loads(row["staged"]):
                batch.add_staged(part)
            for file in batch.files:
                progress.embedded(0, file.tokens)
                progress.files_done(1, file.read.entry.size, file.passages)
            yield batch


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
    return {"read": pickle.dumps(read_changed(entry, row["sha256"] or None, max_bytes)), "slot": row["slot"]}


def _chunk(batch: dict[str, np.ndarray], model: str, params: ChunkingParams) -> dict[str, list[bytes]]:
    """A Ray task: the batch's new documents cut into passages, and the files packed into groups of at least
    ``EMBED_PASSAGES`` passages (one encoder call each)."""
    reads: list[FileRead] = [pickle.loads(raw) for raw in batch["read"]]
    documents = [read.document for read in reads if read.document is not None]
    chunked = iter(chunk_documents(documents, load_tokenizer(model), params))
    groups: list[list[tuple[FileRead, int, ChunkedDocument | None]]] = [[]]
    passages = 0
    for read, slot in zip(reads, batch["slot"].tolist()):
        one = next(chunked) if read.document is not None else None
        if passages >= EMBED_PASSAGES:
            groups.append([])
            passages = 0
        groups[-1].append((replace(read, document=None), slot, one))
        passages += len(one.passages) if one is not None else 0
    return {"group": [pickle.dumps(group) for group in groups if group]}


class _Encoder:
    """A Ray actor: the model loaded once, then a group of chunked documents embedded per call, and with a stage
    their rows written to the backend from here."""

    def __init__(self, model: str, quantize: str | None, stage: Stage | None) -> None:
        self._embedder = load_embedder(model, quantize, "auto")
        self._stage = stage

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
        files, staged = [], []
        for raw in batch["group"]:
            group: list[tuple[FileRead, int, ChunkedDocument | None]] = pickle.loads(raw)
            new = [(slot, one) for _, slot, one in group if one is not None]
            embedded = embed_chunked([one for _, one in new], self._embedder)
            if self._stage is None:
                done = iter(embedded)
                files += [IngestedFile(read, next(done) if one is not None else None) for read, _, one in group]
                continue
            if embedded:
                staged.append(self._stage.write([document.upsert for document in embedded], [slot for slot, _ in new]))
            costs = iter(StagedCost(len(document.upsert.passages), document.tokens) for document in embedded)
            files += [IngestedFile(read, None, next(costs) if one is not None else None) for read, _, one in group]
        return {"files": [pickle.dumps(files)], "staged": [pickle.dumps(staged)]}
