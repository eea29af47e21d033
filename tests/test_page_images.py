"""``GET /documents/{doc_id}/pages/{n}.png``: a PDF page rendered with the passage and its answer marked."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

from benchmarks.page_render import TARGET_MS, run_page_render
from indexer.build import build_index
from indexer.readers import extract
from indexer.readers.pdf_layout import ADDED, page_text
from indexer.readers.pdf_pages import ANSWER, PASSAGE, Mark, render_page
from search.errors import DocumentChanged
from search.records import DocumentRecord
from search.settings import DEFAULT_MODEL, Settings
from tests.conftest import PARAMS, write
from tests.test_readers import make_pdf
from web.app import create_app
from web.page_images import PageImages

QUESTION = "When was the comet at its brightest?"
PARAGRAPHS = [
    "The lighthouse keeper climbed the spiral stairs every evening to light the great lamp. Ships far out at sea "
    "watched for its beam. The keeper wrote the weather in a log book, and the autumn storms were the worst of the year.",
    "The orchard behind the farm gave apples for cider and pears for the market. Pickers came from the village with "
    "ladders and baskets, and the cider press ran for three weeks after the harvest.",
    "Astronomers on the hill followed the comet across the sky with a telescope. Its tail pointed away from the sun. "
    "The comet was brightest in March, when it passed closest to the earth. Newspapers printed its photograph.",
]


def make_report_pdf() -> bytes:
    """Two pages of wrapped paragraphs, the comet on the second."""
    buffer = io.BytesIO()
    style = getSampleStyleSheet()["BodyText"]
    story = [Paragraph(PARAGRAPHS[0], style), Paragraph(PARAGRAPHS[1], style), PageBreak(), Paragraph(PARAGRAPHS[2], style)]
    SimpleDocTemplate(buffer).build(story)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, embedder) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("page-images")
    docs = root / "docs"
    write(docs, "report.pdf", make_report_pdf())
    write(docs, "notes.md", "# Notes\n\nThe bakery oven baked bread every morning.\n")
    write(root / "elsewhere", "secret.pdf", make_pdf(1))
    (docs / "linked.pdf").symlink_to(root / "elsewhere" / "secret.pdf")
    build_index(docs, root / "index", DEFAULT_MODEL, PARAMS, embedder=embedder)
    return docs, root / "index"


@pytest.fixture(scope="module")
def client(folder: tuple[Path, Path]) -> Iterator[TestClient]:
    docs, index = folder
    with TestClient(create_app(Settings(docs=docs, index=str(index)))) as http:
        yield http


def _comet_hit(client: TestClient) -> dict:
    hit = client.get("/search", params={"q": QUESTION, "k": 1}).json()["results"][0]
    assert hit["doc_id"] == "report.pdf" and hit["page"] == 2
    return hit


def _text_in_box(pdf: Path, number: int, width: int, box: tuple[int, int, int, int]) -> str:
    """The PDF's own text inside a box of pixels of the page rendered ``width`` wide."""
    document = pdfium.PdfDocument(pdf)
    page = document[number - 1]
    scale, height = width / page.get_width(), page.get_height()
    left, top, right, bottom = box
    text = page.get_textpage().get_text_bounded(left / scale, height - bottom / scale, right / scale, height - top / scale)
    document.close()
    return " ".join(text.split())


def test_the_answer_is_marked_where_it_stands_on_the_page(client, folder):
    hit = _comet_hit(client)
    response = client.get(f"/documents/report.pdf/pages/{hit['page']}.png", params={"passage": hit["passage_id"], "q": QUESTION})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content)).convert("RGB")
    assert image.width == 1200
    left, top, right, bottom = (int(value) for value in response.headers["x-mark-box"].split(","))
    box = (left, top, right, bottom)
    assert "brightest in March" in _text_in_box(folder[0] / "report.pdf", 2, 1200, box)
    assert "lighthouse" not in _text_in_box(folder[0] / "report.pdf", 2, 1200, box)
    inside = image.crop(box).getcolors(1 << 16) or []
    # Paper under the answer: white through the passage's colour, then through the answer's, as pens stack.
    paper = tuple(passage * answer // 255 for passage, answer in zip(PASSAGE, ANSWER))
    assert max(inside)[1] == paper, "the answer's paper is the commonest colour in its box"

    plain = client.get("/documents/report.pdf/pages/2.png")
    assert plain.status_code == 200 and "x-mark-box" not in plain.headers
    assert client.get("/documents/report.pdf/pages/2.png", params={"q": QUESTION}).content == plain.content, "q alone marks nothing"
    colors = {color for _, color in Image.open(io.BytesIO(plain.content)).convert("RGB").getcolors(1 << 16) or []}
    assert ANSWER not in colors and PASSAGE not in colors and paper not in colors


def test_widths_and_json_errors(client, folder):
    hit = _comet_hit(client)
    narrow = client.get("/documents/report.pdf/pages/1.png", params={"width": 600})
    assert Image.open(io.BytesIO(narrow.content)).width == 600
    for path, params, status, says in [
        ("/documents/report.pdf/pages/1.png", {"width": 2001}, 422, "less than or equal to 2000"),
        ("/documents/report.pdf/pages/3.png", {}, 404, "page 3 is past the end"),
        ("/documents/report.pdf/pages/0.png", {}, 404, "page 0 is past the end"),
        ("/documents/notes.md/pages/1.png", {}, 404, "only PDF documents"),
        ("/documents/missing.pdf/pages/1.png", {}, 404, "no document"),
        ("/documents/report.pdf/pages/1.png", {"passage": "notes.md#0"}, 404, "is not in 'report.pdf'"),
        ("/documents/report.pdf/pages/1.png", {"passage": "report.pdf#999"}, 404, "no passage"),
        ("/documents/linked.pdf/pages/1.png", {}, 404, "not a file in the documents folder"),
    ]:
        response = client.get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        assert response.headers["content-type"] == "application/json" and says in str(response.json()["detail"]), response.text
    assert hit["passage_id"].startswith("report.pdf#")


def test_the_read_token_applies(folder):
    docs, index = folder
    with TestClient(create_app(Settings(docs=docs, index=str(index), search_token=SecretStr("page-secret")))) as http:
        assert http.get("/documents/report.pdf/pages/1.png").status_code == 401
        assert http.get("/documents/report.pdf/pages/1.png", headers={"Authorization": "Bearer wrong"}).status_code == 403
        allowed = http.get("/documents/report.pdf/pages/1.png", headers={"Authorization": "Bearer page-secret"})
        assert allowed.status_code == 200 and allowed.content.startswith(b"\x89PNG")


def test_each_character_of_the_page_text_keeps_its_text_page_index():
    for data in (make_report_pdf(), make_pdf(2)):
        document = pdfium.PdfDocument(data)
        for page in document:
            textpage = page.get_textpage()
            text = page_text(textpage)
            assert len(text.chars) == len(text.text)
            for char, index in zip(text.text, text.chars):
                if index == ADDED:
                    assert char in " \n"
                else:
                    source = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, index))
                    assert source == char or (source == "\x02" and char == "-"), (char, source)
        document.close()


def test_a_changed_file_is_not_marked(tmp_path):
    path = write(tmp_path, "report.pdf", make_report_pdf())
    indexed = extract(path.read_bytes(), "report.pdf")
    first_page = indexed.text[: indexed.pages[1] - 2]
    assert render_page(path, 1, 400, first_page, [Mark(0, 20, PASSAGE)]).marked is not None
    with pytest.raises(DocumentChanged, match="index it again"):
        render_page(path, 1, 400, first_page.replace("lighthouse", "beacon"), [Mark(0, 20, PASSAGE)])
    assert render_page(path, 1, 400, "anything", []).marked is None, "an unmarked page needs no text to agree"


def test_rendered_pages_are_cached_within_the_budget(tmp_path):
    path = write(tmp_path, "report.pdf", make_report_pdf())
    extracted = extract(path.read_bytes(), "report.pdf")
    document = DocumentRecord("report.pdf", "Report", None, extracted.text, "", extracted.pages)
    roomy = PageImages(tmp_path)
    assert roomy.render(document, 1, 300) is roomy.render(document, 1, 300)
    assert roomy.render(document, 1, 300) is not roomy.render(document, 1, 301), "a width is a render of its own"
    tight = PageImages(tmp_path, budget=100)
    assert tight.render(document, 1, 300) is not tight.render(document, 1, 300), "a render over the budget is not kept"


def test_the_benchmark_renders_the_test_pdfs_within_the_target(tmp_path):
    pdfs = [write(tmp_path, "report.pdf", make_report_pdf()), write(tmp_path, "pages.pdf", make_pdf(5))]
    report = run_page_render(pdfs, 1200)
    assert report["pages"] == 7 and report["width"] == 1200
    assert report["median_ms"] <= TARGET_MS, report
