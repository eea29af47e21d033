"""The Dockerfile kept honest where no image can be built: hadolint finds nothing, and the final stage's entry
command and health check, run outside a container with the image's environment, serve and pass.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.server_process import free_port
from tests.conftest import ROOT, write

DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent  # what the image's PATH puts first: the environment semsearch is installed in
_HEALTHCHECK = re.compile(r"^(?:--\S+\s+)*CMD\s+(\[.*\])$")


def stages(text: str) -> list[list[tuple[str, str]]]:
    """(INSTRUCTION, arguments) per stage, continuation lines joined and comments dropped."""
    uncommented = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    logical = uncommented.replace("\\\n", " ")
    found: list[list[tuple[str, str]]] = []
    for line in filter(str.strip, logical.splitlines()):
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            found.append([])
        found[-1].append((instruction.upper(), rest.strip()))
    return found


def arguments(stage: list[tuple[str, str]], instruction: str) -> list[str]:
    return [value for name, value in stage if name == instruction]


def environment(stage: list[tuple[str, str]]) -> dict[str, str]:
    """The stage's ENV lines (``KEY=value`` form, which hadolint requires over ``KEY value``)."""
    pairs = [word.split("=", 1) for value in arguments(stage, "ENV") for word in shlex.split(value)]
    return dict(pairs)


def on_this_machine(argv: list[str]) -> list[str]:
    """``argv`` with its program taken from the running environment, as the image's PATH would find it."""
    program = sys.executable if argv[0] == "python" else str(BIN / argv[0])
    return [program, *argv[1:]]


def test_the_dockerfile_is_hadolint_clean():
    result = subprocess.run([str(BIN / "hadolint"), str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_non_root_user_and_exposes_the_port_it_serves():
    final = stages(DOCKERFILE.read_text())[-1]
    assert arguments(final, "USER")[-1].split(":")[0] not in {"0", "root"}
    assert arguments(final, "EXPOSE") == [environment(final)["SEMSEARCH_PORT"]]


@pytest.mark.slow
def test_the_build_step_prepares_the_model_and_the_entry_command_serves_offline_and_is_healthy(tmp_path):
    build, *_, final = stages(DOCKERFILE.read_text())
    cache = tmp_path / "cache"
    docs = tmp_path / "docs"
    write(docs, "talks.md", "# Talks resume\n\nThe delegations met in Geneva on Monday.\n")
    port = free_port()
    places = {
        "SEMSEARCH_DOCS": str(docs),
        "SEMSEARCH_INDEX": str(tmp_path / "index"),
        "SEMSEARCH_CACHE_DIR": str(cache),
        "SEMSEARCH_PORT": str(port),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }

    def env_of(stage):
        image_env = environment(stage)
        assert {key for key, value in image_env.items() if value.startswith("/")} <= set(places), "a new path to map"
        return {**os.environ, **image_env, **{key: value for key, value in places.items() if key in image_env}}

    prepare = next(shlex.split(value) for value in arguments(build, "RUN") if "load_embedder" in value)
    subprocess.run(on_this_machine(prepare), env=env_of(build), cwd=tmp_path, check=True, timeout=600)
    prepared = {path.name: path.stat().st_mtime_ns for path in cache.iterdir()}
    assert any(name.endswith(".onnx") for name in prepared)

    command = json.loads(arguments(final, "ENTRYPOINT")[-1]) + json.loads(arguments(final, "CMD")[-1])
    healthcheck = _HEALTHCHECK.match(arguments(final, "HEALTHCHECK")[-1])
    assert healthcheck, arguments(final, "HEALTHCHECK")
    health = json.loads(healthcheck[1])
    env = env_of(final)
    server = subprocess.Popen(on_this_machine(command), env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert server.stderr is not None  # stderr=PIPE
    try:
        started = time.monotonic()
        while _status(f"http://127.0.0.1:{port}/health") != 200:
            assert server.poll() is None, server.stderr.read().decode(errors="replace")[-2000:]
            assert time.monotonic() - started < 240, "no healthy answer within 240 s"
            time.sleep(0.2)
        print(f"entry command healthy after {time.monotonic() - started:.1f} s")
        assert subprocess.run(on_this_machine(health), env=env, timeout=30).returncode == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert {path.name: path.stat().st_mtime_ns for path in cache.iterdir()} == prepared, "the start exported again"
    assert subprocess.run(on_this_machine(health), env=env, capture_output=True, timeout=30).returncode != 0


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None
