"""Keeping an index in step with its folder: ``serve --watch`` and ``semsearch watch`` on real folders."""

import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from indexer.build import BuildReport, build_index
from indexer.watch import WatchTiming, watch_folder
from search.errors import IndexLocked
from search.settings import DEFAULT_MODEL
from tests.conftest import PARAMS, ROOT, SEEDS, start_server, stop_server, write

BOUND_SECONDS = 10.0


@pytest.fixture
def small_docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for seed in sorted(SEEDS.iterdir())[:2]:
        (folder / seed.name).write_bytes(seed.read_bytes())
    return folder


@pytest.fixture
def watching_server(small_docs: Path, tmp_path: Path):
    server = start_server(small_docs, tmp_path / "index", env={"SEMSEARCH_WATCH": "1"})
    yield server
    stop_server(server)


class SearchLoop:
    """Searches without pause while files change; every answer must be a 200."""

    def __init__(self, url: str) -> None:
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,))

    def _run(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not self._stop.is_set():
                self.statuses.append(client.get("/search", params={"q": "harbour fleet", "k": 3}).status_code)

    def __enter__(self) -> "SearchLoop":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def _ids(client: httpx.Client, query: str, mode: str) -> set[str]:
    response = client.get("/search", params={"q": query, "k": 100, "mode": mode})
    assert response.status_code == 200, response.text
    return {hit["doc_id"] for hit in response.json()["results"]}


def _seconds_until(condition, what: str) -> float:
    """Poll ``condition`` until true, for at most the bound; the time counted ends when the poll that saw it returned."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < BOUND_SECONDS, f"{what} not reflected in search within {BOUND_SECONDS:.0f} s"
        time.sleep(0.1)
    seconds = time.monotonic() - started
    assert seconds <= BOUND_SECONDS, f"{what} took {seconds:.1f} s, over the {BOUND_SECONDS:.0f} s bound"
    return seconds


def _trial(client: httpx.Client, docs: Path, number: int) -> dict[str, float]:
    """Add, change, rename and delete one file; seconds until search shows each."""
    word, changed = f"quokka{number}zeppelin", f"narwhal{number}sonata"
    name, renamed = f"trial{number}.md", f"moved/trial{number}-renamed.md"
    timings = {}
    write(docs, name, f"# Trial {number}\n\nThe {word} crossed the harbour.\n")
    timings["add"] = _seconds_until(lambda: name in _ids(client, word, "keyword"), f"adding {name}")
    write(docs, name, f"# Trial {number}\n\nThe {changed} played in the harbour.\n")
    timings["change"] = _seconds_until(
        lambda: name in _ids(client, changed, "keyword") and name not in _ids(client, word, "keyword"), f"changing {name}"
    )
    (docs / "moved").mkdir(exist_ok=True)
    os.replace(docs / name, docs / renamed)
    timings["rename"] = _seconds_until(
        lambda: _ids(client, changed, "keyword") == {renamed} and name not in _ids(client, changed, "hybrid"), f"renaming {name}"
    )
    (docs / renamed).unlink()
    timings["delete"] = _seconds_until(lambda: renamed not in _ids(client, changed, "hybrid"), f"deleting {renamed}")
    return timings


def test_a_new_changed_renamed_and_deleted_file_shows_in_search_while_searches_keep_answering(watching_server, small_docs):
    with httpx.Client(base_url=watching_server.url, timeout=60) as client, SearchLoop(watching_server.url) as loop:
        _trial(client, small_docs, 0)
    assert loop.statuses and set(loop.statuses) == {200}


@pytest.mark.slow
def test_sync_latency_over_twenty_trials_and_deleted_files_stay_gone(watching_server, small_docs):
    timings: dict[str, list[float]] = {"add": [], "change": [], "rename": [], "delete": []}
    with httpx.Client(base_url=watching_server.url, timeout=60) as client, SearchLoop(watching_server.url) as loop:
        for number in range(20):
            for operation, seconds in _trial(client, small_docs, number).items():
                timings[operation].append(seconds)
        quiet_until = time.monotonic() + 6  # longer than a rescan interval: nothing deleted comes back
        while time.monotonic() < quiet_until:
            assert not {f"moved/trial{n}-renamed.md" for n in range(20)} & _ids(client, "narwhal sonata harbour", "hybrid")
            time.sleep(0.5)
    for operation, values in timings.items():
        p95 = statistics.quantiles(values, n=20)[-1]
        print(f"{operation}: p50 {statistics.median(values):.2f} s, p95 {p95:.2f} s, max {max(values):.2f} s over {len(values)} trials")
    print(f"searches during the trials: {len(loop.statuses)}, all 200: {set(loop.statuses) == {200}}")
    assert loop.statuses and set(loop.statuses) == {200}


def test_watcher_retries_when_the_index_is_busy_and_stops_promptly(small_docs, tmp_path):
    """Polling mode, a sync that finds the index locked at first: the loop survives and converges."""
    index_dir = tmp_path / "index"
    calls: list[float] = []
    reports: list[BuildReport] = []

    def sync():
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise IndexLocked("another writer is busy")
        return build_index(small_docs, index_dir, DEFAULT_MODEL, PARAMS)

    stop = threading.Event()
    timing = WatchTiming(quiet_ms=200, longest_batch_ms=1000, rescan_seconds=1.0, poll_delay_ms=100)
    thread = threading.Thread(
        target=watch_folder, args=(small_docs, sync, stop), kwargs={"on_change": reports.append, "force_polling": True, "timing": timing}
    )
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not reports and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reports and len(reports[0].added) == 2, "the locked first sync was retried on a later tick"
        write(small_docs, "late.md", "# Late\n\nA late arrival.\n")
        deadline = time.monotonic() + BOUND_SECONDS
        while len(reports) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reports[-1].added == ["late.md"]
    finally:
        stopped_at = time.monotonic()
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive() and time.monotonic() - stopped_at < 5


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a job it starts in the background (``cmd &``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "stop_signal, launched_by",
    [(signal.SIGINT, _ignore_sigint), (signal.SIGTERM, None)],
    ids=["ctrl-c, started with SIGINT ignored", "sigterm"],
)
def test_watch_command_prints_a_line_per_change_and_stops_on_ctrl_c_or_sigterm(small_docs, tmp_path, stop_signal, launched_by):
    env = {**os.environ, "SEMSEARCH_DOCS": str(small_docs), "SEMSEARCH_INDEX": str(tmp_path / "index")}
    process = subprocess.Popen(
        [sys.executable, "-m", "semsearch_cli", "watch"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=launched_by,
    )
    stdout, stderr = process.stdout, process.stderr
    assert stdout is not None and stderr is not None  # both PIPE
    lines: queue.Queue[str] = queue.Queue()
    errors: list[str] = []

    def read_lines() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read_lines, daemon=True).start()
    # stderr is read too: a pipe nobody reads fills up (64 KB) and blocks the process in its next write.
    threading.Thread(target=lambda: errors.extend(stderr), daemon=True).start()
    try:
        assert "watching" in lines.get(timeout=120)
        assert "added" in lines.get(timeout=240), "the first sync builds the index"
        write(small_docs, "fresh.md", "# Fresh\n\nA fresh note about otters.\n")
        assert "added fresh.md" in lines.get(timeout=BOUND_SECONDS)
        process.send_signal(stop_signal)
        try:
            assert process.wait(timeout=30) == 0
        except subprocess.TimeoutExpired:
            pytest.fail(f"watch did not stop on {stop_signal.name}; its stderr ended with: {''.join(errors)[-3000:]}")
        assert "stopped" in lines.get(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
