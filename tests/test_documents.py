import os

from indexer.documents import read_documents
from tests.conftest import write


def test_reads_txt_and_md_recursively_with_relative_ids(tmp_path):
    write(tmp_path, "a.txt", "Alpha text.")
    write(tmp_path, "sub/deeper/b.md", "# Bee\n\nBody.")
    write(tmp_path, "ignored.pdf", "not a document")
    result = read_documents(tmp_path, 1000)
    assert [d.doc_id for d in result.documents] == ["a.txt", "sub/deeper/b.md"]
    assert result.documents[1].title == "Bee"
    assert result.warnings == []


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path):
    write(tmp_path, "good.txt", "A good document.")
    write(tmp_path, "binary.txt", b"\x89PNG\x00\x00\x01binary")
    write(tmp_path, "empty.txt", "")
    write(tmp_path, "blank.md", "  \n\t\n")
    write(tmp_path, "huge.txt", "x" * 2000)
    os.mkfifo(tmp_path / "pipe.txt")
    result = read_documents(tmp_path, 1000)
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    joined = "\n".join(result.warnings)
    for name in ("binary.txt", "empty.txt", "blank.md", "huge.txt", "pipe.txt"):
        assert name in joined


def test_invalid_utf8_is_decoded_with_replacement_and_reported(tmp_path):
    write(tmp_path, "latin1.txt", "café crème".encode("latin-1"))
    result = read_documents(tmp_path, 1000)
    assert result.documents[0].text == "caf\ufffd cr\ufffdme"
    assert any("latin1.txt" in w and "UTF-8" in w for w in result.warnings)


def test_symlink_loops_and_deep_folders_do_not_stop_the_run(tmp_path):
    deep = tmp_path
    for level in range(300):
        deep = deep / f"d{level}"
    write(deep, "deep.txt", "Deep down.")
    (tmp_path / "loop").symlink_to(tmp_path)
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    result = read_documents(tmp_path, 1000)
    assert [d.doc_id.rsplit("/", 1)[-1] for d in result.documents] == ["deep.txt"]
    assert any("dangling.txt" in w for w in result.warnings)
    assert any("loop" in w for w in result.warnings)
