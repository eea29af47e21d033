import functools
import io
import operator
import time
import zipfile

import docx
import pypdfium2 as pdfium
import pytest
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfgen import canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

from indexer.chunking import ChunkingParams, chunk_text
from indexer.documents import Document, FileEntry, load_document
from indexer.readers import UnreadableDocument, extract, reader_for
from indexer.readers.html import HtmlReader
from indexer.structure import locate
from tests.conftest import write


def make_pdf(pages: int, **options) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, **options)
    for number in range(1, pages + 1):
        pdf.drawString(72, 720, f"page {number} marker")
        pdf.drawString(72, 700, "The negotiations continued through the night.")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Annual report", 1)
    document.add_paragraph("Opening words.")
    document.add_heading("Figures", 2)
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, [("region", "sales"), ("north", "42")]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    document.add_paragraph("After the table.")
    document.add_heading("Outlook", 1)
    document.add_paragraph("Closing words.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def unreadable_reason(data: bytes, name: str) -> str:
    with pytest.raises(UnreadableDocument) as caught:
        extract(data, name)
    return str(caught.value)


def test_pdf_pages_are_located_for_offsets_on_every_page():
    extracted = extract(make_pdf(5), "five.pdf")
    assert len(extracted.pages) == 5 and extracted.pages[0] == 0
    for number in range(1, 6):
        start = extracted.text.index(f"page {number} marker")
        assert locate(extracted, start, start + 5).page == number
    last = extracted.text.index("page 5 marker")
    assert locate(extracted, extracted.text.index("page 2 marker"), last + 3) == locate(extracted, 0, 1).__class__(2, 5, None)


def test_a_300_page_pdf_extracts_quickly():
    data = make_pdf(300)
    started = time.perf_counter()
    extracted = extract(data, "long.pdf")
    elapsed = time.perf_counter() - started
    print(f"300-page PDF: {elapsed:.2f} s")
    assert len(extracted.pages) == 300 and elapsed < 30


@pytest.mark.slow
def test_a_3000_page_pdf_is_read_in_bounded_time():
    data = make_pdf(3000)
    started = time.perf_counter()
    extracted = extract(data, "huge.pdf")
    print(f"3000-page PDF: {time.perf_counter() - started:.2f} s")
    assert len(extracted.pages) == 3000 and "page 3000 marker" in extracted.text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (make_pdf(2, encrypt="secret"), "encrypted PDF"),
        (make_pdf(40)[: len(make_pdf(40)) // 2], "damaged PDF"),
        (b"%PDF-1.4\n" + b"garbage " * 100, "damaged PDF"),
    ],
    ids=["encrypted", "truncated", "garbage"],
)
def test_bad_pdfs_have_a_short_reason(data, reason):
    assert reason in unreadable_reason(data, "bad.pdf")


def test_an_image_only_pdf_has_no_text_layer():
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.rect(72, 72, 200, 200, fill=1)
    pdf.showPage()
    pdf.save()
    assert unreadable_reason(buffer.getvalue(), "scan.pdf") == "no text layer (scanned or image-only PDF)"


def titled_pdf(title: str) -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.setTitle(title)
    pdf.drawString(72, 720, "Ceasefire talks in Geneva")
    pdf.drawString(72, 690, "The delegations met on Monday.")
    pdf.save()
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("metadata_title", "title"),
    [
        ("r.html", "Ceasefire talks in Geneva"),
        ("Untitled", "Ceasefire talks in Geneva"),
        ("Microsoft Word - report.docx", "Ceasefire talks in Geneva"),
        ("C:\\Users\\ana\\Desktop\\notes.pdf", "Ceasefire talks in Geneva"),
        ("   ", "Ceasefire talks in Geneva"),
        ("Ceasefire terms", "Ceasefire terms"),
    ],
)
def test_a_pdf_metadata_title_counts_only_when_it_is_not_a_file_name_or_placeholder(tmp_path, metadata_title, title):
    path = write(tmp_path, "r.pdf", titled_pdf(metadata_title))
    info = path.stat()
    document = load_document(FileEntry("r.pdf", path, info.st_size, info.st_mtime_ns), 10_000_000, [])
    assert isinstance(document, Document) and document.title == title


SOFT_HYPHENATED = "Mediators described the extra\xadordinarily compli\xadcated nego\xadtiations in Geneva. " * 8
WRAPPED_PAGES = [
    ["Ceasefire talks in Geneva", SOFT_HYPHENATED, "Anglo-Saxon and COVID-19 terms were read out. " * 16],
    ["The second day opened with the exchange of prisoners and the return of displaced families. " * 6, "A short closing line."],
    ["On the third page the delegations agreed to meet again within a month, in the same building. " * 5],
]


def wrapped_pdf() -> bytes:
    """Pages of paragraphs that reportlab wraps, breaking "nego-tiations" and "Anglo-Saxon" at line ends."""
    body = ParagraphStyle("body", fontName="Helvetica", fontSize=10, leading=12, spaceAfter=6, embeddedHyphenation=1, uriWasteReduce=0.3)
    heading = ParagraphStyle("heading", parent=body, fontName="Helvetica-Bold", fontSize=16, leading=20)
    story = []
    for number, paragraphs in enumerate(WRAPPED_PAGES):
        story += [PageBreak()] if number else []
        story += [Paragraph(text, heading if text == "Ceasefire talks in Geneva" else body) for text in paragraphs]
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer).build(story)
    return buffer.getvalue()


def test_pdf_lines_are_joined_into_paragraphs_with_pages_and_offsets_exact(embedder):
    data = wrapped_pdf()
    raw_page = pdfium.PdfDocument(data)[0].get_textpage().get_text_bounded()
    assert raw_page.count("\r\n") > 8 and "nego\x02tiations" in raw_page and "Anglo\x02Saxon" in raw_page
    extracted = extract(data, "wrapped.pdf")
    expected = [[" ".join(text.replace("\xad", "").split()) for text in page] for page in WRAPPED_PAGES]
    assert extracted.text.split("\n\n") == ["\n".join(page) for page in expected]
    for number, page in enumerate(expected, start=1):
        start = extracted.pages[number - 1]
        assert extracted.text[start:].startswith(page[0]) and locate(extracted, start, start + 1).page == number
    breaks = {offset for offset, char in enumerate(extracted.text) if char == "\n"}
    chunks = chunk_text(extracted.text, embedder.count_tokens, ChunkingParams(max_tokens=48, overlap_sentences=1))
    assert len(chunks) > 10
    for chunk in chunks:
        passage = extracted.text[chunk.start : chunk.end]
        inside = {chunk.start + offset for offset, char in enumerate(passage) if char == "\n"}
        assert inside <= breaks and all(line in "\n".join(functools.reduce(operator.iadd, expected, [])) for line in passage.split("\n"))
        on_page = locate(extracted, chunk.start, chunk.end).page
        assert on_page is not None and passage.split("\n")[0] in "\n".join(expected[on_page - 1])


@pytest.mark.parametrize(
    "layout",
    [{"leading": 12, "spaceAfter": 6}, {"leading": 24}, {"leading": 12, "firstLineIndent": 18}, {"leading": 12, "alignment": 4}],
    ids=["spaced", "double-spaced", "indented", "justified"],
)
def test_pdf_paragraphs_are_told_apart_by_their_spacing_or_their_short_last_line(layout):
    paragraphs = [f"Paragraph {n} says the delegations met in Geneva and restated their positions. " * 4 for n in range(3)]
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer).build([Paragraph(text, ParagraphStyle("body", fontSize=10, **layout)) for text in paragraphs])
    assert extract(buffer.getvalue(), "layout.pdf").text.split("\n") == [text.strip() for text in paragraphs]


def test_pdf_line_end_hyphens_are_dropped_only_before_a_lower_case_letter():
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for number, line in enumerate(["The extra-", "ordinary Anglo-", "Saxon rules of COVID-", "19 times."]):
        pdf.drawString(72, 720 - 14 * number, line)
    pdf.save()
    assert extract(buffer.getvalue(), "hyphens.pdf").text == "The extraordinary Anglo-Saxon rules of COVID-19 times."


HTML_PAGE = b"""<!doctype html><html><head><title>Talks resume</title><style>p {color: red}</style></head>
<body><header>Site name</header><nav><a href="/">Home</a> <a href="/about">About</a></nav>
<main><h1>Talks resume in Geneva</h1><p>The delegations met <b>on Monday</b>.</p>
<h2>Positions</h2><p>Both sides restated\n their positions.</p>
<table><tr><th>Side</th><th>Demand</th></tr><tr><td>North</td><td>Ceasefire</td></tr></table>
<h1>Next steps</h1><p>Another round is planned.</p></main>
<script>track()</script><footer>Copyright footer</footer></body></html>"""


def test_html_keeps_the_main_text_headings_and_tables_and_drops_boilerplate():
    extracted = extract(HTML_PAGE, "page.html")
    assert extracted.title == "Talks resume"
    assert extracted.text.splitlines() == [
        "Talks resume in Geneva",
        "The delegations met on Monday.",
        "Positions",
        "Both sides restated their positions.",
        "Side | Demand",
        "North | Ceasefire",
        "Next steps",
        "Another round is planned.",
    ]
    assert [s.path for s in extracted.sections] == [("Talks resume in Geneva",), ("Talks resume in Geneva", "Positions"), ("Next steps",)]
    for section in extracted.sections:
        assert extracted.text[section.start :].startswith(section.path[-1])
    offset = extracted.text.index("North")
    assert locate(extracted, offset, offset + 5).section == "Talks resume in Geneva > Positions"


@pytest.mark.slow
def test_a_50_mb_html_page_is_read_in_bounded_time():
    block = b"<div><h2>Part</h2><p>Some paragraph text with <a href='#'>a link</a> and more words.</p></div>"
    data = b"<html><body>" + block * (50_000_000 // len(block)) + b"</body></html>"
    started = time.perf_counter()
    extracted = HtmlReader().read(data, "big.html")
    print(f"50 MB HTML: {time.perf_counter() - started:.1f} s")
    assert extracted.text.startswith("Part\nSome paragraph text with a link and more words.")


def test_100000_nested_tags_are_refused_quickly_not_parsed_for_minutes():
    data = b"<div>" * 100_000 + b"deep text" + b"</div>" * 100_000
    started = time.perf_counter()
    assert "nested deeper than" in unreadable_reason(data, "deep.html")
    assert time.perf_counter() - started < 10


def test_moderately_nested_and_sloppy_html_is_read():
    data = b"<div>" * 500 + b"<p>deep text" * 3000 + b"<span>unclosed" * 50
    assert "deep text" in extract(data, "sloppy.htm").text


def test_docx_paragraphs_tables_and_headings_in_document_order():
    extracted = extract(make_docx(), "report.docx")
    assert extracted.text.splitlines() == [
        "Annual report",
        "Opening words.",
        "Figures",
        "region | sales",
        "north | 42",
        "After the table.",
        "Outlook",
        "Closing words.",
    ]
    assert extracted.title == "Annual report"
    assert [s.path for s in extracted.sections] == [("Annual report",), ("Annual report", "Figures"), ("Outlook",)]
    offset = extracted.text.index("north")
    assert locate(extracted, offset, offset + 3).section == "Annual report > Figures"


def test_a_docx_zip_bomb_is_refused_before_it_is_inflated():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as entry:
            for _ in range(300):
                entry.write(b" " * 1_000_000)
    assert len(buffer.getvalue()) < 1_000_000
    assert unreadable_reason(buffer.getvalue(), "bomb.docx") == "DOCX expands past the size limit"


def test_files_named_for_the_wrong_format():
    assert unreadable_reason(b"just some text", "notes.docx") == "not a DOCX (not a zip file)"
    assert "not a PDF" in unreadable_reason(b"<html><p>hello</p></html>", "page.pdf")
    assert "not a PDF" in unreadable_reason(b"plain text really", "notes.pdf")
    sniffed = extract(make_pdf(1), "really-a-pdf.docx")
    assert "page 1 marker" in sniffed.text and any("content is PDF" in note for note in sniffed.notes)


def test_the_table_picks_by_content_type_before_extension():
    assert reader_for("x.txt", "text/html; charset=utf-8") is reader_for("x.html")
    assert reader_for("x.pdf", "application/octet-stream") is reader_for("y.pdf")
    with pytest.raises(UnreadableDocument, match="unknown type"):
        reader_for("sheet.xlsx")
    assert reader_for("guide.rst") is reader_for("notes.txt") and reader_for("notes.markdown") is reader_for("notes.md")


def test_markdown_headings_outside_code_fences_become_sections():
    source = "# Guide\n\nIntro.\n\n```\n# not a heading\n```\n\n## Install\n\nSteps.\n\nUsage\n-----\n\n# Appendix\n"
    extracted = extract(source.encode(), "guide.md")
    assert extracted.text == source
    assert extracted.title == "Guide"
    assert [(source[s.start :].split("\n")[0], s.path) for s in extracted.sections] == [
        ("# Guide", ("Guide",)),
        ("## Install", ("Guide", "Install")),
        ("Usage", ("Guide", "Usage")),
        ("# Appendix", ("Appendix",)),
    ]


def test_text_with_a_bom_and_binary_text():
    assert extract("\ufeffhello".encode(), "a.txt").text == "hello"
    assert unreadable_reason(b"abc\x00def", "a.txt") == "binary content"
