import json
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, open_index


def run_cli(*args, env=None):
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "semsearch_cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=300,
    )


def test_index_then_search_json(docs_copy, tmp_path):
    index_dir = tmp_path / "index"
    built = run_cli("index", "--docs", str(docs_copy), "--index", str(index_dir))
    assert built.returncode == 0, built.stderr
    assert "5 added" in built.stdout and "index written" in built.stdout
    assert re.search(r"; [\d,]+ tokens embedded, [\d,]+ tokens/s; ", built.stdout), built.stdout
    again = run_cli("index", env={"SEMSEARCH_DOCS": str(docs_copy), "SEMSEARCH_INDEX": str(index_dir)})
    assert again.returncode == 0 and "0 passages embedded" in again.stdout and "5 kept" in again.stdout

    found = run_cli("search", "Where was the Budapest summit?", "--index", str(index_dir), "-k", "3", "--json")
    assert found.returncode == 0, found.stderr
    payload = json.loads(found.stdout)
    assert payload["query"] == "Where was the Budapest summit?"
    assert [r["rank"] for r in payload["results"]] == [1, 2, 3]
    for result in payload["results"]:
        assert {"rank", "score", "doc_id", "title", "text", "start", "end"} <= set(result)
        text = (docs_copy / result["doc_id"]).read_text(encoding="utf-8")
        assert text[result["start"] : result["end"]] == result["text"]

    plain = run_cli("search", "Budapest summit", "--index", str(index_dir), "-k", "2")
    assert plain.returncode == 0 and plain.stdout.startswith("1. [")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("search", "   ", "--index", "{index}"), "the query is empty"),
        (("search", "question", "--index", "{missing}"), "no index at"),
        (("search", "question", "-k", "0"), "k must be between 1 and 100"),
        (("search", "question", "-k", "abc"), "-k"),
        (("search",), "Missing argument"),
        (("frobnicate",), "No such command"),
        (("index", "--docs", "{missing}", "--index", "{missing}"), "does not exist"),
        (("index", "--docs", "{docs}", "--index", "{missing}", "--model", "no-such-model-here"), "cannot load embedding model"),
        (("index", "--backend", "nonsense", "--index", "{missing}"), "unknown backend 'nonsense'; choose one of local, milvus"),
        (("search", "question", "--index", "{index}", "--backend", "milvus"), "built with the 'local' backend, not 'milvus'"),
        (("search", "question", "--index", "{missing}", "--backend", "milvus"), "needs a server: pass --milvus-uri"),
        (("search", "question", "--index", "nosuch://host/name"), "unknown backend 'nosuch'; choose one of local, milvus"),
        (("search", "question", "--index", "milvus://127.0.0.1:9/"), "a milvus index URL is milvus://HOST:PORT/NAME"),
        (("search", "question", "--index", "milvus://me:secret@127.0.0.1:9/x"), "put no credentials in a milvus URL"),
        (("index", "--docs", "{docs}", "--index", "{missing}", "--ray", "127.0.0.1:1"), "cannot join Ray at 127.0.0.1:1: nothing answers"),
        (("index", "--docs", "{docs}", "--index", "{missing}", "--ray", "nonsense"), "--ray takes local, auto, HOST:PORT"),
        (("index", "--docs", "{docs}", "--index", "{missing}", "--device", "tpu"), "--device must be one of cpu, cuda, not 'tpu'"),
    ],
)
def test_mistakes_give_one_line_and_non_zero_exit(args, message, seed_index, tmp_path):
    values = {"index": str(seed_index), "missing": str(tmp_path / "missing"), "docs": str(ROOT / "seeds")}
    completed = run_cli(*(a.format(**values) for a in args))
    assert completed.returncode != 0
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert completed.stderr.startswith("semsearch: error:") and message in completed.stderr
    assert "Traceback" not in completed.stderr


def test_device_cuda_without_a_gpu_fails_with_one_line(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA: --device cuda may work here")
    for args, env in ((("--device", "cuda"), None), ((), {"SEMSEARCH_DEVICE": "cuda"})):
        completed = run_cli("index", "--docs", str(ROOT / "seeds"), "--index", str(tmp_path / "index"), *args, env=env)
        assert completed.returncode == 1 and completed.stderr.count("\n") == 1, completed.stderr
        assert completed.stderr.startswith("semsearch: error: --device cuda needs ONNX Runtime with CUDA")
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").glob("i-*"))


def test_quantize_option_is_remembered_by_the_index_and_a_change_rebuilds(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "aqueduct.txt").write_text("The aqueduct carried water to the city. Its arches still stand.\n", encoding="utf-8")
    index_dir = tmp_path / "index"
    built = run_cli("index", "--docs", str(docs), "--index", str(index_dir), "--quantize", "int8")
    assert built.returncode == 0, built.stderr
    found = run_cli("search", "arches of the aqueduct", "--index", str(index_dir), "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["doc_id"] == "aqueduct.txt"
    index = open_index(index_dir)
    assert index.settings.quantize == "int8"
    index.close()

    unchanged = run_cli("index", "--docs", str(docs), "--index", str(index_dir), "--quantize", "int8")
    assert "0 passages embedded" in unchanged.stdout, unchanged.stdout
    back = run_cli("index", "--docs", str(docs), "--index", str(index_dir), "--quantize", "none")
    assert back.returncode == 0, back.stderr
    assert "full rebuild: the encoder precision changed from int8 to fp32" in back.stdout

    wrong = run_cli("index", "--docs", str(docs), "--index", str(index_dir), "--quantize", "int4")
    assert wrong.returncode == 1 and wrong.stderr.count("\n") == 1
    assert wrong.stderr.startswith("semsearch: error: --quantize:") and "int8" in wrong.stderr


def test_an_index_named_by_a_milvus_url_is_built_and_searched(milvus_uri, tmp_path):
    """``--index milvus://HOST:PORT/NAME`` against a real milvus-lite server; the token comes from the environment."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "comet.md").write_text("# Night sky\n\nA telescope on the hill showed the comet.\n", encoding="utf-8")
    (docs / "bread.md").write_text("# Bakery\n\nThe oven baked bread from fresh flour.\n", encoding="utf-8")
    url = f"milvus://{milvus_uri.removeprefix('http://')}/cli_url_index"
    env = {"SEMSEARCH_MILVUS_TOKEN": ""}
    built = run_cli("index", "--docs", str(docs), "--index", url, env=env)
    assert built.returncode == 0, built.stderr
    assert "2 added" in built.stdout
    found = run_cli("search", "comet seen through a telescope", "--index", url, "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["results"][0]["doc_id"] == "comet.md"
    compacted = run_cli("compact", "--index", url, env=env)
    assert compacted.returncode != 0 and "does its own housekeeping" in compacted.stderr


def test_every_file_is_indexed_or_counted_as_not_read(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "README").write_text("Read me first: the aqueduct guide explains the arches.\n", encoding="utf-8")
    (docs / "NEWS").write_text("Version two adds a chapter on Roman roads.\n", encoding="utf-8")
    (docs / "notes.markdown").write_text("# Notes\n\nThe bridge was rebuilt in stone.\n", encoding="utf-8")
    (docs / "photo.raw").write_bytes(b"\x89RAW\x00\x01\x02" * 50)
    index_dir = tmp_path / "index"
    built = run_cli("index", "--docs", str(docs), "--index", str(index_dir))
    assert built.returncode == 0, built.stderr
    assert "3 added" in built.stdout and "1 file not read: unknown type" in built.stdout
    assert "photo.raw" not in built.stdout + built.stderr
    index = open_index(index_dir)
    assert sorted(summary.doc_id for summary in index.documents()) == ["NEWS", "README", "notes.markdown"]
    index.close()
    verbose = run_cli("index", "--docs", str(docs), "--index", str(index_dir), "--verbose")
    assert "not read: photo.raw (unknown type)" in verbose.stdout and "1 file not read: unknown type" in verbose.stdout


def _on_a_terminal(*args, env=None) -> str:
    """What the CLI writes to stdout when stdout is a terminal (a pseudo-terminal here)."""
    import pty

    leader, follower = pty.openpty()
    environment = {**{key: value for key, value in os.environ.items() if key != "NO_COLOR"}, **(env or {})}
    process = subprocess.Popen([sys.executable, "-m", "semsearch_cli", *args], stdout=follower, cwd=ROOT, env=environment)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's far end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=300)
    os.close(leader)
    return b"".join(chunks).decode()


def test_the_answer_is_marked_on_a_terminal_and_plain_when_piped_or_asked(seed_index):
    args = ("search", "Where was the Budapest summit?", "--index", str(seed_index), "-k", "2")
    terminal = _on_a_terminal(*args)
    assert "\x1b[" in terminal and terminal.startswith("1. [")
    assert "\x1b[" not in _on_a_terminal(*args, env={"NO_COLOR": "1"})
    piped = run_cli(*args)
    assert piped.returncode == 0 and "\x1b[" not in piped.stdout and piped.stdout.startswith("1. [")
    forced = run_cli(*args, "--color", "always", env={"NO_COLOR": "1"})
    assert "\x1b[1m" in forced.stdout or "\x1b[35m\x1b[1m" in forced.stdout
    plain = [line for line in piped.stdout.splitlines() if line.startswith("   ")]
    assert [line for line in forced.stdout.splitlines() if line.startswith("   ")] != plain
    assert json.loads(run_cli(*args, "--json", "--color", "always").stdout)["results"][0]["rank"] == 1
    wrong = run_cli(*args, "--color", "sometimes")
    assert wrong.returncode == 1 and "--color takes auto, always, never" in wrong.stderr


def test_marked_text_collapses_white_space_as_the_plain_text_does():
    from search.records import Hit, Span
    from semsearch_cli.search_output import marked_text

    text = "  First sentence.\n\n  The  answer\tis here.  Last one. "
    start = text.index("The")
    hit = Hit(1, 1.0, "a.txt", "A", None, "a.txt#0", text, 0, len(text), highlights=(Span(start, text.index("Last") - 2),))
    assert marked_text(hit, color=False) == " ".join(text.split())
    colored = marked_text(hit, color=True)
    assert colored.startswith("First sentence. \x1b[") and "The answer is here." in colored and colored.endswith("\x1b[0m Last one.")


def test_facets_filters_and_corrections_on_the_command_line(seed_index):
    plain = run_cli("search", "Budapest summit", "--index", str(seed_index), "-k", "2", "--facets", "type,folder", "--type", "txt")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith("type: txt (5)\nfolder: none\n\n1. [")
    payload = json.loads(run_cli("search", "Budapest summit", "--index", str(seed_index), "--facets", "year", "--json").stdout)
    assert set(payload["facets"]) == {"year"} and all(len(year) == 4 for year in payload["facets"]["year"])
    corrected = run_cli("search", "Istambul acords", "--index", str(seed_index), "-k", "1")
    assert corrected.stdout.startswith("showing results for: Istanbul accords\n\n1. [")
    wrong = run_cli("search", "Budapest summit", "--index", str(seed_index), "--facets", "colour")
    assert wrong.returncode == 1 and "unknown facet 'colour'; choose from type, folder, year" in wrong.stderr
