"""Crash safety with real processes: SIGKILLed builds and index jobs, damaged index files, two writers.

Every kill trial starts from a private copy of one small base index, against a documents folder with
one document changed and two added, so the killed run has real work. After the kill the index must
load and answer a probe question exactly as the old index did or, if the kill came after the
``CURRENT`` swap, exactly as the completed new index does; an uninterrupted ``semsearch index`` (its
real entry point, run in this process where the model is already loaded) then finishes the work and
leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from filelock import FileLock, Timeout

from search.errors import IndexFormatError
from search.index_format import CURRENT_FILE, LOCK_FILE, current_version, load_index
from search.searcher import SearchRequest, Searcher
from search.settings import get_settings
from semsearch_cli.main import main as semsearch_main
from tests.conftest import ROOT, SEEDS, write
from web.launcher import ServerProcess, launch

TOKEN = "crash-admin-token-0123456789"
PROBE = "zeppelin treaty signed by the walrus council"
NOTES = "# Harbour notes\n\nThe lighthouse keeper logs the weather every morning at six and the tide at noon.\n"
NOTES_ADDENDUM = "\nIn January the harbour froze over and the ferries stopped running for a week.\n"
FRESH = (
    "# Walrus council\n\n"
    "The zeppelin treaty was signed in Reykjavik by the walrus council after a long night of talks.\n\n"
    "Delegates agreed that airships may moor at the northern piers but never over the fishing grounds.\n"
)
# Kill moments as fractions of an uninterrupted run (denser late in a CLI run, where model loading has
# ended and embedding and writing happen), plus events: the job reporting its embedding stage, the
# temporary version folder appearing (writing), the new version folder appearing (just before the
# swap) and CURRENT naming the new version (just after it).
CLI_FRACTIONS = (0.03, 0.15, 0.3, 0.45, 0.6, 0.7, 0.78, 0.84, 0.9, 0.95)
JOB_FRACTIONS = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
DISK_EVENTS = ("temp-folder", "new-version", "current-replaced")
JOB_EVENTS = ("embedding", *DISK_EVENTS)
WAIT_SECONDS = 180


@dataclass(frozen=True)
class Base:
    """The documents of the base index, the same folder changed, and the base index."""

    docs: Path
    changed_docs: Path
    index: Path
    version: str


@dataclass(frozen=True)
class Scenario:
    """The base, the probe's answer before and after the change, and an uninterrupted run's length."""

    base: Base
    base_results: list[tuple]
    new_results: list[tuple]
    cli_seconds: float


@dataclass(frozen=True)
class Trial:
    kind: str
    moment: str
    stage: str
    landed: str
    attempts: int

    @property
    def swapped(self) -> bool:
        return self.landed == "after swap"


@dataclass(frozen=True)
class Run:
    """A re-index under way in ``process``.

    ``stage()`` is where it is, or None once it has finished; ``going()`` is cheap enough to ask every
    millisecond: whether a CLI run still runs, or (a job's state needing a request) that the server is alive.
    """

    process: subprocess.Popen
    started: float
    index: Path
    stage: Callable[[], str | None]
    going: Callable[[], bool]


def _run_index(docs: Path, index: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "semsearch_cli", "index", "--docs", str(docs), "--index", str(index), *extra],
        capture_output=True, text=True, cwd=ROOT, timeout=WAIT_SECONDS,
    )


def _start_index(docs: Path, index: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "semsearch_cli", "index", "--docs", str(docs), "--index", str(index)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def _index_in_process(docs: Path, index: Path) -> int:
    """``semsearch index`` through its real entry point, in this process where the model is already loaded."""
    get_settings.cache_clear()  # read the environment the subprocesses get, not one cached by another test
    try:
        return semsearch_main(["index", "--docs", str(docs), "--index", str(index)])
    finally:
        get_settings.cache_clear()


def _probe(index: Path) -> list[tuple]:
    hits = Searcher.open(index).search(SearchRequest(PROBE, k=5)).hits
    return [(h.doc_id, h.passage_id, h.start, h.end, round(h.score, 5)) for h in hits]


def _assert_no_leftovers(index: Path) -> None:
    assert sorted(os.listdir(index)) == sorted([CURRENT_FILE, LOCK_FILE, current_version(index)])


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    if process.stderr:
        process.stderr.close()


@contextmanager
def _cli_run(scenario: Scenario, index: Path) -> Iterator[Run]:
    process = _start_index(scenario.base.changed_docs, index)

    def stage() -> str | None:
        if process.poll() is None:
            return "running"
        assert process.returncode == 0, process.stderr.read()
        return None

    try:
        yield Run(process, time.monotonic(), index, stage, lambda: stage() is not None)
    finally:
        _kill(process)


@contextmanager
def _job_run(scenario: Scenario, index: Path) -> Iterator[Run]:
    server = _admin_server(scenario, index)

    def going() -> bool:
        assert server.process.poll() is None, "the server exited"
        return True

    def stage() -> str | None:
        going()
        status = httpx.get(f"{server.url}/index/status", timeout=30).json()
        assert status["state"] in ("running", "succeeded"), status
        return status["stage"] if status["state"] == "running" else None

    try:
        assert httpx.get(f"{server.url}/health", timeout=30).json()["index_version"] == scenario.base.version
        yield Run(server.process, _post_index(server), index, stage, going)
    finally:
        _kill(server.process)


def _seen_on_disk(event: str, index: Path, base_version: str) -> bool:
    if event == "current-replaced":
        return (index / CURRENT_FILE).read_text(encoding="utf-8").strip() != base_version
    prefix = {"temp-folder": ".tmp-v-", "new-version": "v-"}[event]
    return any(entry.startswith(prefix) and entry != base_version for entry in os.listdir(index))


def _wait_then_kill(run: Run, moment: float | str, base_version: str) -> str | None:
    """SIGKILL the run at ``moment``; the stage it was in, or None if it finished first.

    A disk event is watched every millisecond without asking a job for its stage: that request
    would slow down the very writes being watched.
    """
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        if moment in DISK_EVENTS:
            if not run.going():
                return None
            if _seen_on_disk(moment, run.index, base_version):
                stage = "(not asked)"
                break
        else:
            stage = run.stage()
            if stage is None:
                return None
            if stage.startswith("embedding") if moment == "embedding" else time.monotonic() >= run.started + moment:
                break
        assert time.monotonic() < deadline, f"kill moment {moment} never came"
        time.sleep(0.001)
    _kill(run.process)
    return stage


def _kill_trial(
    kind: str, moment: float | str, seconds: float, scenario: Scenario, workdir: Path, trials: list[Trial]
) -> None:
    """Kill a run at ``moment`` (a fraction of ``seconds`` or an event), then check what it left.

    A run that finishes before a late moment (the machine got faster since ``seconds`` was measured)
    is repeated with its own length, so every trial is a real kill.
    """
    start_run = _cli_run if kind == "cli" else _job_run
    for attempt in range(3):
        index = workdir / f"index-{attempt}"
        shutil.copytree(scenario.base.index, index)
        at = moment * seconds if isinstance(moment, float) else moment
        with start_run(scenario, index) as run:
            stage = _wait_then_kill(run, at, scenario.base.version)
        if stage is not None:
            break
        seconds = time.monotonic() - run.started
    else:
        pytest.fail(f"{kind} run finished before the kill moment {moment} three times")
    label = f"{at:.2f} s" if isinstance(at, float) else at
    trial = Trial(kind, label, stage, _landing(index, scenario.base.version), attempt + 1)
    trials.append(trial)
    assert trial.landed in _POSSIBLE_LANDINGS.get(label, {trial.landed}), trial
    assert (load_index(index).version != scenario.base.version) == trial.swapped
    assert _probe(index) == (scenario.new_results if trial.swapped else scenario.base_results), trial
    assert _index_in_process(scenario.base.changed_docs, index) == 0, trial
    _assert_no_leftovers(index)
    assert _probe(index) == scenario.new_results, trial


def _landing(index: Path, base_version: str) -> str:
    """Where the kill landed, read from what it left on disk."""
    if current_version(index) != base_version:
        return "after swap"
    entries = os.listdir(index)
    if any(e.startswith("v-") and e != base_version for e in entries):
        return "after rename, before swap"
    if any(e.startswith(".tmp-") for e in entries):
        return "while writing"
    return "before writing"


# Where a kill triggered by an event can land: at or after the event, never before it.
_POSSIBLE_LANDINGS = {
    "embedding": {"before writing"},
    "temp-folder": {"while writing", "after rename, before swap", "after swap"},
    "new-version": {"after rename, before swap", "after swap"},
    "current-replaced": {"after swap"},
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    """An index of two seeds and a note; the changed folder updates the note and adds two documents."""
    root = tmp_path_factory.mktemp("crash")
    docs, changed_docs = root / "base-docs", root / "changed-docs"
    for folder in (docs, changed_docs):
        folder.mkdir()
        for seed in sorted(SEEDS.iterdir())[:2]:
            shutil.copy(seed, folder / seed.name)
        write(folder, "notes.md", NOTES)
    write(changed_docs, "notes.md", NOTES + NOTES_ADDENDUM)
    write(changed_docs, "fresh.md", FRESH)
    excerpt = sorted(SEEDS.iterdir())[4].read_text(encoding="utf-8")
    write(changed_docs, "excerpt.txt", excerpt[: excerpt.index("\n\n", 5000)])
    index = root / "base-index"
    built = _run_index(docs, index)
    assert built.returncode == 0, built.stderr
    return Base(docs, changed_docs, index, current_version(index))


@pytest.fixture(scope="module")
def scenario(base: Base) -> Scenario:
    new_index = base.index.parent / "new-index"
    shutil.copytree(base.index, new_index)
    started = time.monotonic()
    rebuilt = _run_index(base.changed_docs, new_index)
    cli_seconds = time.monotonic() - started
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "2 added, 1 updated" in rebuilt.stdout, rebuilt.stdout
    base_results, new_results = _probe(base.index), _probe(new_index)
    assert base_results != new_results and new_results[0][0] == "fresh.md"
    return Scenario(base, base_results, new_results, cli_seconds)


@pytest.fixture(scope="module")
def trials() -> Iterator[list[Trial]]:
    """Every kill trial of the module, summed up at the end (shown with ``pytest -s``)."""
    log: list[Trial] = []
    yield log
    for kind in ("cli", "job"):
        ran = [t for t in log if t.kind == kind]
        swapped = sum(t.swapped for t in ran)
        print(f"\n{kind}: {len(ran)} SIGKILL trials, {len(ran) - swapped} before the swap, {swapped} after")
        for trial in ran:
            print(f"  {trial.moment:>17}  {trial.stage:<26} {trial.landed:<26} attempts: {trial.attempts}")


@pytest.fixture
def index_copy(base: Base, tmp_path: Path) -> Path:
    index = tmp_path / "index"
    shutil.copytree(base.index, index)
    return index


def _admin_server(scenario: Scenario, index: Path) -> ServerProcess:
    return launch(scenario.base.changed_docs, index, env={"SEMSEARCH_ADMIN_TOKEN": TOKEN})


def _post_index(server: ServerProcess) -> float:
    started = httpx.post(f"{server.url}/index", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert started.status_code == 202, started.text
    return time.monotonic()


@pytest.fixture(scope="module")
def job_seconds(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> float:
    """How long an uninterrupted ``POST /index`` job takes, measured once; it ends at the new index."""
    index = tmp_path_factory.mktemp("job-reference") / "index"
    shutil.copytree(scenario.base.index, index)
    with _job_run(scenario, index) as run:
        deadline = run.started + WAIT_SECONDS
        while run.stage() is not None:
            assert time.monotonic() < deadline, "the reference index job did not finish"
            time.sleep(0.01)
        seconds = time.monotonic() - run.started
    assert _probe(index) == scenario.new_results
    return seconds


def _moments(fractions: tuple[float, ...], events: tuple[str, ...]) -> list:
    return [pytest.param(f, id=f"at-{f:.2f}-of-a-run") for f in fractions] + [pytest.param(e, id=e) for e in events]


@pytest.mark.slow
@pytest.mark.parametrize("moment", _moments(CLI_FRACTIONS, DISK_EVENTS))
def test_sigkilled_index_command_leaves_the_old_or_the_new_index(moment, scenario, tmp_path, trials):
    _kill_trial("cli", moment, scenario.cli_seconds, scenario, tmp_path, trials)


@pytest.mark.slow
@pytest.mark.parametrize("moment", _moments(JOB_FRACTIONS, JOB_EVENTS))
def test_sigkilled_server_during_index_job_leaves_the_old_or_the_new_index(moment, scenario, job_seconds, tmp_path, trials):
    _kill_trial("job", moment, job_seconds, scenario, tmp_path, trials)


def _truncate(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)


def _garble(path: Path) -> None:
    """Overwrite a stretch in the middle with bytes that are neither valid UTF-8 nor the original."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(0xFF - (b & 0x0F) for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))


DAMAGED_FILES = (
    "vectors.faiss", "passages.json", "documents.json", "sentences.json", "sentence_vectors.npy",
    "keyword/vocab.index.json", "keyword/data.csc.index.npy", "keyword/keyword.json", "manifest.json", CURRENT_FILE,
)


@pytest.mark.parametrize("damage", [_truncate, _garble], ids=["truncated", "garbled"])
@pytest.mark.parametrize("name", DAMAGED_FILES)
def test_damaged_file_is_named_with_the_fix(name, damage, base, index_copy):
    target = index_copy / name if name == CURRENT_FILE else index_copy / base.version / name
    assert target.is_file()
    damage(target)
    with pytest.raises(IndexFormatError) as caught:
        load_index(index_copy)
    message = str(caught.value)
    assert name in message and "semsearch index --full" in message, message


@pytest.mark.slow
def test_server_on_a_damaged_index_reports_it_and_a_full_rebuild_repairs_it(base, index_copy):
    _garble(index_copy / base.version / "vectors.faiss")
    server = launch(base.docs, index_copy, wait_ready=False)
    try:
        health = httpx.get(f"{server.url}/health", timeout=30)
        assert health.status_code == 503
        reason = health.json()["reason"]
        assert "vectors.faiss" in reason and "semsearch index --full" in reason, reason
        searched = httpx.get(f"{server.url}/search", params={"q": "x"}, timeout=30)
        assert searched.status_code == 503 and "vectors.faiss" in searched.json()["detail"]
        time.sleep(0.5)
        assert server.process.poll() is None, "the server must keep running without an index"
    finally:
        server.stop()
        server.process.stderr.close()
    repaired = _run_index(base.docs, index_copy, "--full")
    assert repaired.returncode == 0, repaired.stderr
    assert "full rebuild: --full was requested" in repaired.stdout
    assert load_index(index_copy).manifest.documents.keys() == load_index(base.index).manifest.documents.keys()
    _assert_no_leftovers(index_copy)


@pytest.mark.slow
def test_second_writer_is_refused_while_the_first_finishes(scenario, index_copy):
    first = _start_index(scenario.base.changed_docs, index_copy)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        lock = FileLock(str(index_copy / LOCK_FILE), timeout=0)
        while True:
            assert first.poll() is None, f"the first run ended before taking the lock: {first.stderr.read()}"
            assert time.monotonic() < deadline, "the first run never took the index lock"
            try:
                lock.acquire()
            except Timeout:
                break
            lock.release()
            time.sleep(0.05)
        started = time.monotonic()
        second = _run_index(scenario.base.changed_docs, index_copy)
        assert time.monotonic() - started < 20
        assert first.poll() is None, "the first run must still hold the lock while the second is refused"
        assert second.returncode != 0
        assert second.stderr.count("\n") == 1 and second.stderr.startswith("semsearch: error: "), second.stderr
        assert "another process is writing the index" in second.stderr
        assert first.wait(timeout=WAIT_SECONDS) == 0, first.stderr.read()
    finally:
        _kill(first)
    assert _probe(index_copy) == scenario.new_results
    _assert_no_leftovers(index_copy)
