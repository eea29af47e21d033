"""Crash safety with real processes: writers SIGKILLed at named stages, damaged files, two writers, the old format.

Every kill trial starts a real writer (``semsearch index``, a forced compaction, or a server running a
``POST /index`` job) with ``SEMSEARCH_PAUSE_AT`` naming one stage of ``search.backends.checkpoints``: the writer
creates the marker file when it gets there and waits, and the test SIGKILLs it. Each trial therefore
hits the moment it names on any machine, however loaded. After the kill the index must open and
answer exactly as a clean build of the old documents or of the new ones does; a following
``semsearch index`` must succeed, end at the new state and leave no file the store does not name.

Writers spend seconds loading the model: the next trial's writer is started (and reaches its pause)
while the current trial is being checked.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from benchmarks.server_process import ServerProcess, launch
from indexer.build import build_index
from indexer.chunking import ChunkingParams
from search.backends.checkpoints import (
    COMPACTION_COMMITTED,
    COMPACTION_WRITTEN,
    EMBEDDING,
    FOLDER_WRITTEN,
    KEYWORD_COMMITTED,
    PAUSABLE,
    PAUSE_AT_ENV,
    PAUSE_MARKER_ENV,
    READING,
    SEGMENT_WRITTEN,
    STORE_COMMITTED,
    StageReporter,
    quiet,
)
from search.backends.contract import DocumentSummary, IndexLocation
from search.backends.local.backend import LocalBackend
from search.backends.local.layout import (
    CURRENT_FILE,
    LOCK_FILE,
    SEGMENTS_DIR,
    STORE_FILE,
    VECTORS_DIR,
    live_folder,
)
from search.backends.local.store import Store
from search.encoding.embedder import Embedder
from search.errors import IndexFormatError
from search.ranking.rules import SearchRequest
from search.ranking.searcher import Searcher
from search.settings import Settings, get_settings
from semsearch_cli.main import main as semsearch_main
from tests.conftest import ROOT, write

pytestmark = pytest.mark.slow

TOKEN = "crash-admin-token-0123456789"
WAIT_SECONDS = 120

BASE_DOCS = {
    "harbour.txt": "The lighthouse keeper logs the weather every morning at six. Fishing boats return before the storm.",
    "orchard.txt": "The apple orchard is pruned in winter. The harvest starts in September when the cider press opens.",
    "observatory.txt": "Astronomers at the mountain observatory point the telescope at distant galaxies on clear nights.",
    "bakery.txt": "The village bakery bakes sourdough bread before dawn and sells croissants until the flour runs out.",
    "railway.txt": "The mountain railway climbs through tunnels. The steam locomotive takes on water at every station.",
    "library.txt": "The public library lends atlases and novels. Its archive keeps old maps of the harbour and the coast.",
}
ADDED_DOCS = {
    "glacier.txt": "The glacier retreats every summer. Climbers cross the ice and snow of the pass with ropes and crampons.",
    "vineyard.txt": "On the sunny slope the vineyard grows grapes. The wine is pressed in autumn and stored in oak barrels.",
}
UPDATED_DOCS = {
    "orchard.txt": "The orchard was sold and became a garden around a small telescope where children watch stars at night.",
}
DELETED_DOCS = ("bakery.txt", "railway.txt")
# One query each that the added, the updated and the deleted documents answer.
QUERIES = ("telescope stars at night", "bread and flour", "ice and snow on the mountain pass")
MODES = ("keyword", "semantic")

# Every stage each kind of write reaches (checked by test_trials_name_every_stage_each_write_reaches).
INCREMENTAL = (READING, EMBEDDING, SEGMENT_WRITTEN, STORE_COMMITTED, KEYWORD_COMMITTED)
STAGES = {
    "add": INCREMENTAL,
    "update": INCREMENTAL,
    # Two of six documents gone leaves their segment over MAX_DEAD_SHARE dead: the build compacts it.
    "delete": (*INCREMENTAL, COMPACTION_WRITTEN, COMPACTION_COMMITTED),
    "full": (*INCREMENTAL, FOLDER_WRITTEN),
    "compaction": (COMPACTION_WRITTEN, COMPACTION_COMMITTED),
}
# A server job runs the same build as ``semsearch index``: a few of its stages suffice.
JOB_STAGES = (EMBEDDING, STORE_COMMITTED, COMPACTION_COMMITTED)
# From here on an in-place write has committed; a full build commits only when it publishes its folder.
COMMITTED = {STORE_COMMITTED, KEYWORD_COMMITTED, COMPACTION_WRITTEN, COMPACTION_COMMITTED}

_COMPACT_SCRIPT = (
    "import sys\n"
    "from pathlib import Path\n"
    "from search.backends.contract import IndexLocation\n"
    "from search.backends.local.backend import LocalBackend\n"
    "location = IndexLocation(Path(sys.argv[1]))\n"
    "with LocalBackend.writer(location):\n"
    "    LocalBackend.open(location).maintain(force=True)\n"
)


@dataclass(frozen=True)
class Trial:
    kind: str
    stage: str

    def __str__(self) -> str:
        return f"{self.kind}-at-{self.stage.replace(' ', '-')}"


TRIALS = [Trial(kind, stage) for kind, stages in STAGES.items() for stage in stages] + [Trial("job", stage) for stage in JOB_STAGES]


@dataclass(frozen=True)
class Answers:
    """What an index says: its documents with passage counts, and its top passages for fixed queries."""

    documents: tuple[DocumentSummary, ...]
    hits: tuple[tuple[str, str, tuple[tuple[str, int, int], ...]], ...]


@dataclass(frozen=True)
class Folders:
    """Documents folders (unchanged files keep their mtimes) and clean reference indexes of them."""

    docs: dict[str, Path]
    answers: dict[str, Answers]
    base_index: Path
    segmented_index: Path


@dataclass
class Writer:
    """A writer paused at its trial's stage."""

    process: subprocess.Popen
    index: Path
    docs: Path
    log: Path
    server: ServerProcess | None = None


@dataclass
class Outcome:
    trial: Trial
    landed: str
    left_by_kill: list[str]
    left_after_run: list[str] = field(default_factory=list)


def _build(docs: Path, index: Path, embedder: Embedder, full: bool = False, report_stage: StageReporter = quiet) -> None:
    """What ``semsearch index`` does, in this process where the model is already loaded."""
    settings = Settings()
    params = ChunkingParams(settings.chunk_tokens, settings.overlap_sentences)
    build_index(docs, index, settings.model, params, full=full, embedder=embedder, report_stage=report_stage)


def answers(index_dir: Path) -> Answers:
    searcher = Searcher.open(index_dir)
    try:
        hits = tuple(
            (mode, query, tuple((h.doc_id, h.start, h.end) for h in searcher.search(SearchRequest(query, k=5, mode=mode)).hits))
            for mode in MODES
            for query in QUERIES
        )
        return Answers(tuple(searcher.backend.documents()), hits)
    finally:
        searcher.backend.close()


def leftovers(index_dir: Path) -> list[str]:
    """Files and folders the live store does not account for: interrupted builds, temporary and orphan files."""
    live = live_folder(index_dir)
    found = sorted(set(os.listdir(index_dir)) - {CURRENT_FILE, LOCK_FILE, live.name})
    store = Store(live / STORE_FILE)
    try:
        named = {SEGMENTS_DIR: {s.file for s in store.segments()}, VECTORS_DIR: set(store.vector_files().values())}
    finally:
        store.close()
    for sub, names in named.items():
        present = set(os.listdir(live / sub))
        assert names <= present, f"the store names {sorted(names - present)} in {sub}/, which are missing"
        found += [f"{live.name}/{sub}/{name}" for name in sorted(present - names)]
    found += [str(path.relative_to(index_dir)) for path in live.rglob(".tmp-*")]
    return found


def _docs_folder(root: Path, name: str, base: Path, drop: tuple[str, ...] = (), extra: dict[str, str] | None = None) -> Path:
    """A copy of ``base`` that keeps its files' mtimes (so they count as unchanged), minus ``drop``, plus ``extra``."""
    folder = root / name
    shutil.copytree(base, folder)
    for doc in drop:
        (folder / doc).unlink()
    for doc, text in (extra or {}).items():
        write(folder, doc, text)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Folders:
    root = tmp_path_factory.mktemp("crash")
    base = root / "base"
    for doc, text in BASE_DOCS.items():
        write(base, doc, text)
    docs = {
        "base": base,
        "add": _docs_folder(root, "add", base, extra=ADDED_DOCS),
        "update": _docs_folder(root, "update", base, extra=UPDATED_DOCS),
        "delete": _docs_folder(root, "delete", base, drop=DELETED_DOCS),
        "mixed": _docs_folder(root, "mixed", base, drop=DELETED_DOCS, extra={**ADDED_DOCS, **UPDATED_DOCS}),
    }
    docs["update+add"] = _docs_folder(root, "update+add", docs["update"], extra=ADDED_DOCS)
    reference: dict[str, Answers] = {}
    for name, folder in docs.items():
        index = root / f"clean-{name}"
        _build(folder, index, embedder)
        reference[name] = answers(index)
    assert len(set(reference.values())) == len(reference), "every documents folder must answer differently"
    # Three flat segments and a tombstone: what a forced compaction merges.
    segmented = root / "segmented"
    shutil.copytree(root / "clean-base", segmented)
    for name in ("update", "update+add"):
        _build(docs[name], segmented, embedder)
    return Folders(docs, reference, root / "clean-base", segmented)


def _old_and_new(kind: str) -> tuple[str, str]:
    """The documents folders a trial's writer starts from and goes to."""
    special = {"compaction": ("update+add", "update+add"), "full": ("base", "mixed"), "job": ("base", "mixed")}
    return special.get(kind, ("base", kind))


def _start(trial: Trial, folders: Folders, workdir: Path) -> Writer:
    """Start the trial's writer and return once it has paused at the trial's stage."""
    index, marker, log = workdir / "index", workdir / "paused", workdir / "writer.log"
    shutil.copytree(folders.segmented_index if trial.kind == "compaction" else folders.base_index, index)
    docs = folders.docs[_old_and_new(trial.kind)[1]]
    pause = {PAUSE_AT_ENV: trial.stage, PAUSE_MARKER_ENV: str(marker)}
    if trial.kind == "job":
        server = launch(docs, index, env={"SEMSEARCH_ADMIN_TOKEN": TOKEN, **pause})
        started = httpx.post(f"{server.url}/index", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        assert started.status_code == 202, started.text
        writer = Writer(server.process, index, docs, log, server)
    else:
        if trial.kind == "compaction":
            argv = ["-c", _COMPACT_SCRIPT, str(index)]
        else:
            argv = ["-m", "semsearch_cli", "index", "--docs", str(docs), "--index", str(index)]
            argv += ["--full"] if trial.kind == "full" else []
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, *argv], cwd=ROOT, env={**os.environ, **pause}, stdout=output, stderr=subprocess.STDOUT
            )
        writer = Writer(process, index, docs, log)
    deadline = time.monotonic() + WAIT_SECONDS
    while not marker.exists():
        if writer.process.poll() is not None or time.monotonic() > deadline:
            _kill(writer)
            pytest.fail(f"{trial}: the writer never paused (exit {writer.process.returncode}): {_output(writer)}")
        time.sleep(0.05)
    return writer


def _output(writer: Writer) -> str:
    if writer.server is not None:
        return writer.server.output_tail()
    return writer.log.read_text(errors="replace")[-2000:]


def _kill(writer: Writer) -> None:
    if writer.process.poll() is None:
        writer.process.send_signal(signal.SIGKILL)
    writer.process.wait(timeout=30)
    if writer.server is not None:
        writer.server.log_path.unlink(missing_ok=True)


class Writers:
    """Starts the writers of the selected trials one trial ahead, in test order, each in its own folder."""

    def __init__(self, order: list[Trial], folders: Folders, workdirs: pytest.TempPathFactory) -> None:
        self._order, self._folders, self._workdirs = order, folders, workdirs
        self._pending: dict[Trial, Future] = {}
        self._executor = ThreadPoolExecutor(max_workers=2)

    def take(self, trial: Trial) -> Writer:
        position = self._order.index(trial)
        for upcoming in self._order[position : position + 2]:
            if upcoming not in self._pending:
                self._pending[upcoming] = self._executor.submit(_start, upcoming, self._folders, self._workdirs.mktemp(str(upcoming)))
        return self._pending.pop(trial).result()

    def close(self) -> None:
        for future in self._pending.values():
            if future.exception() is None:
                _kill(future.result())
        self._executor.shutdown()


@pytest.fixture(scope="module")
def writers(request: pytest.FixtureRequest, folders: Folders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Writers]:
    this_module = sys.modules[__name__]
    params = [
        getattr(getattr(item, "callspec", None), "params", {})
        for item in request.session.items
        if getattr(item, "module", None) is this_module
    ]
    order = [p["trial"] for p in params if "trial" in p]
    pool = Writers(order, folders, tmp_path_factory)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def outcomes() -> Iterator[list[Outcome]]:
    """Every kill trial of the module, summed up at the end (shown with ``pytest -s``)."""
    log: list[Outcome] = []
    yield log
    print(f"\n{len(log)} SIGKILL trials")
    for outcome in log:
        print(
            f"  {outcome.trial!s:<42} answered as {outcome.landed:<4} left by the kill: {outcome.left_by_kill or '-'}; "
            f"after a run: {outcome.left_after_run or '-'}"
        )


def _index_in_process(docs: Path, index: Path) -> int:
    """``semsearch index`` through its real entry point, in this process where the model is already loaded."""
    get_settings.cache_clear()
    try:
        return semsearch_main(["index", "--docs", str(docs), "--index", str(index)])
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("trial", TRIALS, ids=str)
def test_sigkilled_writer_leaves_the_old_or_the_new_index(trial, folders, writers, outcomes):
    writer = writers.take(trial)
    _kill(writer)
    old, new = (folders.answers[name] for name in _old_and_new(trial.kind))
    after_kill = answers(writer.index)
    landed = "new" if after_kill == new else "old" if after_kill == old else "neither"
    outcome = Outcome(trial, landed, leftovers(writer.index))
    outcomes.append(outcome)
    defects = []
    if landed == "neither":
        defects.append("after the kill the index answers as neither the old nor the new documents")
    elif old != new:
        committed = trial.stage in COMMITTED and trial.kind != "full"
        assert landed == ("new" if committed else "old"), trial
    assert _index_in_process(writer.docs, writer.index) == 0, trial
    assert answers(writer.index) == new, trial
    outcome.left_after_run = leftovers(writer.index)
    if outcome.left_after_run:
        defects.append(f"the next run leaves {outcome.left_after_run}")
    assert not defects, f"{trial}: {'; '.join(defects)}"


def test_trials_name_every_stage_each_write_reaches(folders, embedder, tmp_path):
    """The trial table is honest: each kind of write reaches exactly the pausable stages listed for it."""
    for kind, stages in STAGES.items():
        reached: list[str] = []
        index = tmp_path / kind
        if kind == "compaction":
            shutil.copytree(folders.segmented_index, index)
            with LocalBackend.writer(IndexLocation(index)):
                LocalBackend.open(IndexLocation(index)).maintain(force=True, report=reached.append)
        else:
            shutil.copytree(folders.base_index, index)
            _build(folders.docs[_old_and_new(kind)[1]], index, embedder, full=kind == "full", report_stage=reached.append)
        assert [stage for stage in PAUSABLE if stage in reached] == list(stages), kind
        assert answers(index) == folders.answers[_old_and_new(kind)[1]], kind
    assert set(JOB_STAGES) <= set(STAGES["delete"]), "a job on the mixed folder deletes, so it compacts"


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semsearch_cli", *args], capture_output=True, text=True, cwd=ROOT, timeout=WAIT_SECONDS)


def test_second_writer_is_refused_while_the_first_holds_the_lock(folders, tmp_path):
    index, marker = tmp_path / "index", tmp_path / "paused"
    shutil.copytree(folders.base_index, index)
    first = subprocess.Popen(
        [sys.executable, "-m", "semsearch_cli", "index", "--docs", str(folders.docs["add"]), "--index", str(index)],
        cwd=ROOT,
        env={**os.environ, PAUSE_AT_ENV: READING, PAUSE_MARKER_ENV: str(marker)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not marker.exists():
            assert first.poll() is None and time.monotonic() < deadline, "the first writer never took the lock"
            time.sleep(0.05)
        second = _run_cli("index", "--docs", str(folders.docs["add"]), "--index", str(index))
        assert first.poll() is None, "the first writer must still hold the lock while the second is refused"
    finally:
        first.kill()
        first.wait(timeout=30)
    assert second.returncode == 1
    assert second.stderr.count("\n") == 1, second.stderr
    assert second.stderr.startswith("semsearch: error: another process is writing the index "), second.stderr


def _truncate(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


def _garble_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:64] = bytes(0xFF - b for b in data[:64])
    path.write_bytes(bytes(data))


def _remove_a_segment(live: Path) -> Path:
    segment = next((live / SEGMENTS_DIR).iterdir())
    segment.unlink()
    return segment


def _damage_store(live: Path, damage) -> Path:
    store = live / STORE_FILE
    damage(store)
    return store


DAMAGES = {
    "store-truncated": lambda live: _damage_store(live, _truncate),
    "store-garbled": lambda live: _damage_store(live, _garble_header),
    "segment-missing": _remove_a_segment,
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_damaged_index_file_is_named_with_the_fix(damage, folders, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(folders.base_index, index)
    damaged = damage(live_folder(index))
    with pytest.raises(IndexFormatError) as caught:
        Searcher.open(index).search(SearchRequest(QUERIES[0], mode="semantic"))
    message = str(caught.value)
    assert damaged.name in message and "semsearch index --full" in message, message


def test_server_on_a_damaged_index_reports_it_and_a_full_rebuild_repairs_it(folders, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(folders.base_index, index)
    segment = _remove_a_segment(live_folder(index))
    server = launch(folders.docs["base"], index, wait_ready=False)
    try:
        health = httpx.get(f"{server.url}/health", timeout=30)
        assert health.status_code == 503
        reason = health.json()["reason"]
        assert segment.name in reason and "semsearch index --full" in reason, reason
        searched = httpx.get(f"{server.url}/search", params={"q": "weather"}, timeout=30)
        assert searched.status_code == 503 and segment.name in searched.json()["detail"], searched.text
        time.sleep(0.5)
        assert server.process.poll() is None, "the server must keep running without an index"
    finally:
        server.stop()
    repaired = _run_cli("index", "--docs", str(folders.docs["base"]), "--index", str(index), "--full")
    assert repaired.returncode == 0, repaired.stderr
    assert "full rebuild: --full was requested" in repaired.stdout
    assert answers(index) == folders.answers["base"]
    assert leftovers(index) == []


def test_index_in_the_old_format_is_refused_with_the_fix_and_rebuilt(folders, tmp_path):
    index = tmp_path / "index"
    legacy = "v-20261124T051500-1a2b3c"
    write(index, CURRENT_FILE, f"{legacy}\n")
    write(index / legacy, "manifest.json", '{"format_version": 1}')
    with pytest.raises(IndexFormatError) as caught:
        Searcher.open(index)
    assert "semsearch index --full" in str(caught.value), caught.value
    searched = _run_cli("search", "weather", "--index", str(index))
    assert searched.returncode == 1 and searched.stderr.count("\n") == 1, searched.stderr
    assert "format 1" in searched.stderr and "semsearch index --full" in searched.stderr, searched.stderr
    rebuilt = _run_cli("index", "--docs", str(folders.docs["base"]), "--index", str(index), "--full")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert answers(index) == folders.answers["base"]
    assert leftovers(index) == []
