"""Snapshots of a live index: one committed generation, checked by sha256, restored as an index that answers as the source did."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from benchmarks.server_process import ServerProcess
from search.backends.local.layout import SNAPSHOT_MANIFEST, index_exists
from search.backends.local.snapshot import restore_snapshot
from search.encoding.embedding import load_embedder
from search.errors import SnapshotError
from search.ranking.rules import SearchRequest
from search.ranking.searcher import Searcher
from search.settings import DEFAULT_MODEL, Settings
from tests.conftest import SEEDS, SHARED_EVAL, open_index, start_server, stop_server
from tests.test_cli import run_cli
from web.app import create_app

TOKEN = "test-admin-token-snapshots-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRITING_S = 20.0
SOURCE_SEEDS = sorted(SEEDS.iterdir())[:2]
QUESTIONS = [
    record["question"]
    for record in map(json.loads, (SHARED_EVAL / "seed_questions_public.jsonl").read_text(encoding="utf-8").splitlines())
    if record["doc"] in {seed.name for seed in SOURCE_SEEDS}
]
# Words of the seed questions, so the notes written meanwhile move their answers from one generation to the next.
TOPICS = ("preconditions for the talks", "the Russian delegation", "the Black Sea fleet", "the Istanbul talks", "the ceasefire")


@dataclass(frozen=True)
class Committed:
    """The source after one committed write: its generation, documents (id -> sha256) and the questions' answers."""

    generation: int
    folder: str
    catalog: dict[str, str]
    answers: list[list[tuple[str, float]]]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server over two seeds that takes uploads and writes snapshots under its own folder."""
    folder = tmp_path_factory.mktemp("snapshot-source")
    docs = folder / "docs"
    docs.mkdir()
    for seed in SOURCE_SEEDS:
        shutil.copy(seed, docs / seed.name)
    env = {"SEMSEARCH_ADMIN_TOKEN": TOKEN, "SEMSEARCH_SNAPSHOT_DIR": str(folder / "snapshots")}
    server = start_server(docs, folder / "index", env=env)
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def seed_snapshot(seed_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("seed-snapshot") / "snapshot"
    written = run_cli("snapshot", "--index", str(seed_index), str(dest))
    assert written.returncode == 0, written.stderr
    return dest


@pytest.mark.slow
def test_snapshots_taken_during_continuous_puts_restore_one_generation_that_answers_as_the_source_did(source, tmp_path):
    catalog = {path.relative_to(source.docs).as_posix(): _sha256(path.read_bytes()) for path in source.docs.rglob("*") if path.is_file()}
    log: list[Committed] = []
    statuses: list[int] = []
    stop = threading.Event()
    writer = threading.Thread(target=_write_continuously, args=(source.url, catalog, log, statuses, stop), daemon=True)
    # The model this process searches the restored indexes with loads while the writes run: the test stays within a minute.
    loading = threading.Thread(target=load_embedder, args=(DEFAULT_MODEL,), daemon=True)
    started = time.monotonic()
    writer.start()
    loading.start()
    time.sleep(WRITING_S / 4)
    by_cli = run_cli("snapshot", "--index", str(source.index), str(tmp_path / "by-cli"))
    time.sleep(WRITING_S / 4)
    by_http = httpx.post(f"{source.url}/admin/snapshot", headers=AUTH, timeout=120)
    time.sleep(max(0.0, started + WRITING_S - time.monotonic()))
    stop.set()
    writer.join(timeout=120)
    loading.join(timeout=120)

    assert by_cli.returncode == 0, by_cli.stderr
    assert by_http.status_code == 201, by_http.text
    assert statuses and set(statuses) <= {200, 201}, "a write failed while snapshots were taken"
    http_snapshot = by_http.json()
    for snapshot in (tmp_path / "by-cli", Path(http_snapshot["path"])):
        manifest = json.loads((snapshot / SNAPSHOT_MANIFEST).read_text(encoding="utf-8"))
        generation = manifest["generation"]
        assert log[0].generation < generation < log[-1].generation, "the writes did not go on around the snapshot"
        committed = next(state for state in log if state.generation >= generation)
        assert manifest["index_version"] == f"{committed.folder}/{generation}"
        restored = tmp_path / f"restored-{snapshot.name}"
        restore_snapshot(snapshot, restored)
        searcher = Searcher.open(restored)
        assert {summary.doc_id: summary.sha256 for summary in searcher.backend.documents()} == committed.catalog
        for question, answered in zip(QUESTIONS, committed.answers):
            hits = searcher.search(SearchRequest(question, k=3)).hits
            assert [hit.passage_id for hit in hits] == [passage_id for passage_id, _ in answered], question
            assert [hit.score for hit in hits] == pytest.approx([score for _, score in answered], abs=1e-5)
        searcher.backend.close()
    assert http_snapshot["generation"] == manifest["generation"] and http_snapshot["index_version"] == manifest["index_version"]


def test_admin_snapshot_needs_the_admin_token_and_points_milvus_to_milvus_backup(tmp_path):
    # Without the lifespan nothing is loaded: both answers come before the index is touched.
    local = TestClient(create_app(Settings(index=str(tmp_path / "index"), admin_token=SecretStr(TOKEN))))
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = local.post("/admin/snapshot", headers=headers)
        assert refused.status_code == 401 and refused.json() == {"detail": "a valid admin token is required"}
    milvus = TestClient(create_app(Settings(index="milvus://127.0.0.1:9/index", admin_token=SecretStr(TOKEN))))
    pointed = milvus.post("/admin/snapshot", headers=AUTH)
    assert pointed.status_code == 400 and "milvus-backup" in pointed.json()["detail"]


def test_restore_makes_an_index_and_replaces_one_only_when_forced(seed_snapshot, seed_index, tmp_path):
    index = tmp_path / "index"
    assert run_cli("restore", str(seed_snapshot), "--index", str(index)).returncode == 0
    restored, source = open_index(index), open_index(seed_index)
    assert restored.documents() == source.documents() and restored.counts().passages == source.counts().passages
    restored.close()
    source.close()
    again = run_cli("restore", str(seed_snapshot), "--index", str(index))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"semsearch: error: an index already exists at {index}; restore into another folder, or pass --force to replace it"
    ]
    assert run_cli("restore", str(seed_snapshot), "--index", str(index), "--force").returncode == 0
    assert not list(seed_index.glob(".snapshot-*")), "the snapshot left its pins in the live index"


def test_a_damaged_snapshot_file_is_a_one_line_error_and_restores_nothing(seed_snapshot, tmp_path):
    damaged = tmp_path / "snapshot"
    shutil.copytree(seed_snapshot, damaged)
    vector_file = next((damaged / "vectors").iterdir())
    with vector_file.open("r+b") as handle:
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    index = tmp_path / "index"
    refused = run_cli("restore", str(damaged), "--index", str(index))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"semsearch: error: snapshot file {vector_file} is damaged: its sha256 differs from the one in {SNAPSHOT_MANIFEST}"
    ]
    assert not index_exists(index)


def test_a_manifest_naming_a_file_outside_the_index_folder_is_refused(seed_snapshot, tmp_path):
    crafted = tmp_path / "snapshot"
    shutil.copytree(seed_snapshot, crafted)
    manifest = json.loads((crafted / SNAPSHOT_MANIFEST).read_text(encoding="utf-8"))
    manifest["files"]["segments/../../escaped.txt"] = _sha256(b"")
    (crafted / SNAPSHOT_MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(SnapshotError, match="only files of an index folder"):
        restore_snapshot(crafted, tmp_path / "index")
    assert not (tmp_path / "escaped.txt").exists() and not index_exists(tmp_path / "index")


def test_snapshot_refuses_a_folder_in_the_way_and_the_milvus_backend(seed_index, tmp_path):
    (tmp_path / "taken").mkdir()
    in_the_way = run_cli("snapshot", "--index", str(seed_index), str(tmp_path / "taken"))
    assert in_the_way.returncode == 1 and "already exists" in in_the_way.stderr
    on_milvus = run_cli("snapshot", "--index", "milvus://127.0.0.1:9/corpus", str(tmp_path / "snapshot"))
    assert on_milvus.returncode == 1 and len(on_milvus.stderr.strip().splitlines()) == 1
    assert "milvus-backup" in on_milvus.stderr and not (tmp_path / "snapshot").exists()


def _write_continuously(url: str, catalog: dict[str, str], log: list[Committed], statuses: list[int], stop: threading.Event) -> None:
    """PUT notes one after another, new ones and then replacements, logging what the source held after each."""
    with httpx.Client(base_url=url, timeout=120) as client:
        log.append(_committed(client, catalog))
        number = 0
        while not stop.is_set():
            doc_id = f"notes/note{number % 8}.md"
            body = f"# Note {number}\n\nEntry {number} of the ledger is about {TOPICS[number % len(TOPICS)]}.\n".encode()
            response = client.put(f"/documents/{doc_id}", content=body, headers=AUTH)
            statuses.append(response.status_code)
            catalog[doc_id] = _sha256(body)
            log.append(_committed(client, catalog))
            number += 1


def _committed(client: httpx.Client, catalog: dict[str, str]) -> Committed:
    folder, generation = client.get("/health").json()["index_version"].split("/")
    answers = [
        [(hit["passage_id"], hit["score"]) for hit in client.get("/search", params={"q": question, "k": 3}).json()["results"]]
        for question in QUESTIONS
    ]
    return Committed(int(generation), folder, dict(catalog), answers)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
