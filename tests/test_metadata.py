import pytest

from indexer.documents import read_documents
from indexer.metadata import extract_date, extract_title, plausible_title
from tests.conftest import SEEDS


def test_title_prefers_markdown_heading():
    assert extract_title("intro line\n\n## The Real Title ##\ntext", "f.md") == "The Real Title"


def test_title_falls_back_to_short_first_line_then_file_name():
    assert extract_title("\n  Short first line\nmore", "f.txt") == "Short first line"
    assert extract_title("x" * 500, "f.txt") == "f.txt"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" date 2025-11-28 It is quite clear", "2025-11-28"),
        ("Title\n\n15 MAR 2023\n\nThe war", "2023-03-15"),
        ("Published March 5, 2024 by someone", "2024-03-05"),
        ("On 3 sept. 2022 talks began", "2022-09-03"),
        ("No date at all here", None),
        ("2025-13-45 is not a date", None),
    ],
)
def test_dates_near_the_start(text, expected):
    assert extract_date(text) == expected


def test_dates_far_into_the_text_are_ignored():
    assert extract_date("words " * 200 + "2025-01-01") is None


def test_seed_metadata():
    documents = {d.doc_id: d for d in read_documents(SEEDS, 10_000_000).documents}
    assert len(documents) == 5
    assert documents["001_d7b1d813b67cecda.txt"].date == "2025-11-28"
    assert documents["004_7d52d8e344289e91.txt"].date == "2023-03-15"
    assert documents["004_7d52d8e344289e91.txt"].title == "Are peace negotiations the right way to go for Russia?"
    for document in documents.values():
        assert document.text == (SEEDS / document.doc_id).read_text(encoding="utf-8")


def test_a_long_first_paragraph_gives_its_first_sentence_cut_at_a_word():
    assert extract_title("A short sentence opens it. " + "Then many words follow " * 20, "f.txt") == ("A short sentence opens it.")
    title = extract_title("word " * 100 + "end.", "f.txt")
    assert title.endswith("…") and len(title) <= 81 and not title[:-1].endswith(" ")


def test_seed_titles_are_sentences_not_file_names():
    documents = {d.doc_id: d for d in read_documents(SEEDS, 10_000_000).documents}
    assert documents["002_af525910a62c27f0.txt"].title == ("We’ve covered secret negotiations between Washington and Moscow at least a…")
    for document in documents.values():
        assert not document.title.endswith(".txt")


def test_reader_titles_win_over_the_text(tmp_path):
    from tests.conftest import write
    from tests.test_readers import HTML_PAGE, make_docx

    write(tmp_path, "page.html", HTML_PAGE)
    write(tmp_path, "report.docx", make_docx())
    titles = {d.doc_id: d.title for d in read_documents(tmp_path, 10_000_000).documents}
    assert titles == {"page.html": "Talks resume", "report.docx": "Annual report"}


@pytest.mark.parametrize(
    "value",
    [
        "r.html",
        "index.htm",
        "scan_0012.jpg",
        "reports/q1/final.pdf",
        "https://example.org/talks",
        "file:///tmp/r.html",
        "C:\\Users\\ana\\notes",
        "~/notes",
        "Untitled",
        "untitled document",
        "Untitled-1",
        "Document1",
        "Microsoft Word - report.docx",
        "Microsoft PowerPoint - deck",
        "",
        "  ",
        None,
        "2024-01-01",
        "x" * 201,
    ],
)
def test_metadata_titles_that_no_author_wrote_are_refused(value):
    assert plausible_title(value) is None


@pytest.mark.parametrize("value", ["Ceasefire terms", "Quarterly report 2.0", "TCP/IP explained", "A history of the .html format"])
def test_metadata_titles_that_read_as_titles_are_kept(value):
    assert plausible_title(f"  {value}\n") == value
