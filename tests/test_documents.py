import os

import pytest

from indexer.documents import Document, LeftOut, file_source, list_files, load_document, read_documents
from tests.conftest import write


def _left_out(result) -> str:
    return "\n".join(map(str, result.left_out))


def test_reads_txt_and_md_recursively_with_relative_ids(tmp_path):
    write(tmp_path, "a.txt", "Alpha text.")
    write(tmp_path, "sub/deeper/b.md", "# Bee\n\nBody.")
    write(tmp_path, "sheet.xlsx", b"PK\x03\x04\x00\x00binary zip")
    result = read_documents(tmp_path, 1000)
    assert [d.doc_id for d in result.documents] == ["a.txt", "sub/deeper/b.md"]
    assert result.documents[1].title == "Bee"
    assert result.warnings == []
    assert result.left_out == [LeftOut("sheet.xlsx", "unknown type")]


def test_text_files_of_no_known_type_are_read_as_plain_text(tmp_path):
    write(tmp_path, "README", "Read me first: how to install.")
    write(tmp_path, "NEWS", "Version 2 adds facets.")
    write(tmp_path, "notes.markdown", "# Notes\n\nSome notes.")
    write(tmp_path, "guide.rst", "Guide\n=====\n\nA reStructuredText guide.")
    write(tmp_path, "README.Debian", "Debian notes.")
    write(tmp_path, "image.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(tmp_path, "latin1.conf", "caf\xe9 cr\xe8me".encode("latin-1"))
    write(tmp_path, ".hidden/HEAD", "ref: refs/heads/main")
    result = read_documents(tmp_path, 1000)
    documents = {d.doc_id: d for d in result.documents}
    assert sorted(documents) == ["NEWS", "README", "README.Debian", "guide.rst", "notes.markdown"]
    assert documents["notes.markdown"].title == "Notes" and documents["README"].text == "Read me first: how to install."
    assert sorted(map(str, result.left_out)) == [
        "skipped .hidden: hidden",
        "skipped image.bin: unknown type",
        "skipped latin1.conf: unknown type",
    ]


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path):
    write(tmp_path, "good.txt", "A good document.")
    write(tmp_path, "binary.txt", b"\x89PNG\x00\x00\x01binary")
    write(tmp_path, "empty.txt", "")
    write(tmp_path, "blank.md", "  \n\t\n")
    write(tmp_path, "huge.txt", "x" * 2000)
    os.mkfifo(tmp_path / "pipe.txt")
    result = read_documents(tmp_path, 1000)
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    assert sorted(map(str, result.left_out)) == [
        "skipped binary.txt: binary content",
        "skipped blank.md: empty",
        "skipped empty.txt: empty",
        "skipped huge.txt: over the 1000-byte limit",
        "skipped pipe.txt: not a regular file",
    ]


def test_invalid_utf8_is_decoded_with_replacement_and_reported(tmp_path):
    write(tmp_path, "latin1.txt", "café crème".encode("latin-1"))
    result = read_documents(tmp_path, 1000)
    assert result.documents[0].text == "caf\ufffd cr\ufffdme"
    assert any("latin1.txt" in w and "UTF-8" in w for w in result.warnings)


def add_deep_file_and_bad_links(folder, depth, name):
    """A file ``depth`` folders down, a symlink loop back to the top and a dangling link."""
    deep = folder
    for level in range(depth):
        deep = deep / f"d{level}"
    write(deep, name, "A document at the bottom of a very deep folder.")
    (folder / "loop").symlink_to(folder)
    (folder / "dangling.txt").symlink_to(folder / "missing.txt")


def test_symlink_loops_and_deep_folders_do_not_stop_the_run(tmp_path):
    add_deep_file_and_bad_links(tmp_path, 300, "deep.txt")
    result = read_documents(tmp_path, 1000)
    assert [d.doc_id.rsplit("/", 1)[-1] for d in result.documents] == ["deep.txt"]
    assert "skipped dangling.txt: No such file or directory" in _left_out(result)
    assert "skipped loop/: folder already visited (symlink loop)" in _left_out(result)


def test_a_missing_file_between_listing_and_reading_is_left_out(tmp_path):
    write(tmp_path, "vanished.txt", "Here when listed.")
    [entry] = list_files(tmp_path, [])
    entry.path.unlink()
    assert load_document(entry, 1000, []) == LeftOut("vanished.txt", "No such file or directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_files_are_skipped_with_a_warning(tmp_path):
    write(tmp_path, "good.txt", "Readable.")
    secret = write(tmp_path, "secret.txt", "Unreadable.")
    secret.chmod(0)
    result = read_documents(tmp_path, 1000)
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    assert "skipped secret.txt: Permission denied" in _left_out(result)


@pytest.mark.slow
def test_a_build_over_a_folder_of_bad_files_indexes_every_good_one(docs_copy, tmp_path):
    from indexer.build import build_index
    from search.settings import DEFAULT_MODEL
    from tests.conftest import PARAMS, open_index

    bad = docs_copy / "bad"
    write(bad, "binary.txt", bytes(range(256)) * 100)
    write(bad, "latin1.md", "Un café crème au comptoir.".encode("latin-1"))
    write(bad, "empty.txt", "")
    with (bad / "one-line-50mb.txt").open("w") as handle:
        handle.write("word " * 10_000_000)
    add_deep_file_and_bad_links(bad, 120, "deep.md")
    os.mkfifo(bad / "fifo.txt")

    report = build_index(docs_copy, tmp_path / "index", DEFAULT_MODEL, PARAMS)
    index = open_index(tmp_path / "index")
    indexed = {summary.doc_id for summary in index.documents()}
    seeds = {p.name for p in docs_copy.glob("*.txt")}
    assert seeds <= indexed
    latin1 = index.document("bad/latin1.md")
    assert "bad/latin1.md" in indexed and latin1 is not None and latin1.text.count("\ufffd") == 2
    assert any(doc_id.endswith("deep.md") for doc_id in indexed)
    problems = "\n".join(report.problems())
    for name in ("binary.txt", "latin1.md", "empty.txt", "one-line-50mb.txt", "dangling.txt", "fifo.txt", "loop"):
        assert name in problems, name
    assert len(indexed) == len(seeds) + 2


def test_a_folder_mixing_formats_and_bad_files_reads_every_good_one(tmp_path):
    from tests.test_readers import HTML_PAGE, make_docx, make_pdf

    write(tmp_path, "good.pdf", make_pdf(2))
    write(tmp_path, "good.docx", make_docx())
    write(tmp_path, "good.html", HTML_PAGE)
    write(tmp_path, "good.markdown", "# Notes\n\nSome notes.")
    write(tmp_path, "locked.pdf", make_pdf(1, encrypt="secret"))
    write(tmp_path, "half.pdf", make_pdf(30)[:2000])
    write(tmp_path, "text.pdf", "I am text in disguise.")
    write(tmp_path, "notzip.docx", "Neither zip nor Word.")
    write(tmp_path, "pdf.docx", make_pdf(1))
    result = read_documents(tmp_path, 10_000_000)
    documents = {d.doc_id: d for d in result.documents}
    assert sorted(documents) == ["good.docx", "good.html", "good.markdown", "good.pdf", "pdf.docx"]
    assert documents["good.pdf"].pages == (0, documents["good.pdf"].text.index("page 2 marker"))
    assert documents["good.docx"].sections[0].path == ("Annual report",)
    warnings = "\n".join([*result.warnings, *map(str, result.left_out)])
    for name, reason in [
        ("locked.pdf", "encrypted PDF"),
        ("half.pdf", "damaged PDF"),
        ("text.pdf", "not a PDF"),
        ("notzip.docx", "not a DOCX (not a zip file)"),
        ("pdf.docx", "content is PDF"),
    ]:
        assert f"{name}: {reason}" in warnings or f"skipped {name}: {reason}" in warnings, name


def test_a_file_that_changes_after_it_was_listed_is_skipped_until_the_next_run(tmp_path):
    path = write(tmp_path, "moving.txt", "First version.")
    [entry] = list_files(tmp_path, [])
    os.utime(path, ns=(entry.mtime_ns + 1_000_000_000, entry.mtime_ns + 1_000_000_000))
    assert str(load_document(entry, 1000, [])) == "skipped moving.txt: changed while being read; it will be read on the next run"
    [fresh] = list_files(tmp_path, [])
    document = load_document(fresh, 1000, [])
    assert isinstance(document, Document) and document.source == file_source(fresh.size, fresh.mtime_ns)
