"""The search page in a real browser: searching, the document view, history, hostile text, error states, phones."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.sync_api import Browser, Locator, Page, Route, expect, sync_playwright

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ACTION_TIMEOUT_MS = 5_000
SEED_QUESTION = "What happened to Russia's Black Sea fleet?"
HOSTILE_QUERY = "<img src=x onerror=window.__pwned=1>"
SEARCH_API = re.compile(r"/search\?")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:
    """A fresh tab on the live server that fails the test on any script error or CSP violation."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" and "Content Security Policy" in message.text else None
        ),
    )
    yield page
    context.close()
    assert not problems, problems


def search(page: Page, query: str) -> None:
    page.goto("/")
    page.fill("#q", query)
    page.press("#q", "Enter")


def fulfil_json(status: int, body: object):
    def handler(route: Route) -> None:
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    return handler


def text_of(locator: Locator) -> str:
    """The element's textContent; playwright types it optional (a document or doctype node has none)."""
    text = locator.text_content()
    assert text is not None
    return text


def assert_not_pwned(page: Page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("main script, main img:not(#page-image)").count() == 0, "the page image is the only image"


def test_search_shows_highlighted_results_and_keeps_the_query_in_the_url(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#q")).to_be_focused()
    page.fill("#q", SEED_QUESTION)
    page.press("#q", "Enter")

    expect(page.locator(".result").first).to_be_visible()
    expect(page.locator(".result-passage mark").first).to_be_visible()
    expect(page.locator("#results")).to_contain_text("Black Sea")
    expect(page.locator("#status")).to_be_hidden()
    assert "?q=" in page.url
    assert page.locator(".result").count() <= 10


def test_result_opens_the_document_at_its_passage_and_back_returns_to_results(page: Page) -> None:
    search(page, SEED_QUESTION)
    first = page.locator(".result").first
    passage = " ".join(text_of(first.locator(".result-passage")).split())
    results_url = page.url

    first.locator(".result-passage").click()

    mark = page.locator("#document-text mark.passage-mark")
    expect(page.locator("#document")).to_be_visible()
    expect(mark).to_be_visible()
    expect(mark).to_be_in_viewport()
    assert " ".join(text_of(mark).split()) == passage
    assert "doc=" in page.url
    expect(page.locator("#results-view")).to_be_hidden()

    page.go_back()
    expect(page).to_have_url(results_url)
    expect(page.locator(".result").first).to_be_visible()
    expect(page.locator("#document")).to_be_hidden()

    page.go_forward()
    expect(mark).to_be_visible()

    page.click("#back-link")
    expect(page).to_have_url(results_url)
    expect(page.locator(".result").first).to_be_visible()


def test_a_shared_search_url_runs_the_search_on_load(page: Page) -> None:
    page.goto(f"/?q={quote(SEED_QUESTION)}")

    expect(page.locator("#q")).to_have_value(SEED_QUESTION)
    expect(page.locator(".result").first).to_be_visible()

    page.reload()
    expect(page.locator(".result").first).to_be_visible()


def test_slash_focuses_the_search_box_unless_typing(page: Page) -> None:
    search(page, SEED_QUESTION)
    expect(page.locator(".result").first).to_be_visible()
    page.locator(".summary").click()
    expect(page.locator("#q")).not_to_be_focused()

    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("a/b")
    expect(page.locator("#q")).to_have_value("a/b")


def test_hostile_document_is_shown_as_text_in_results_and_document_view(page: Page) -> None:
    search(page, "hostile payload")
    hostile = page.locator(".result", has_text="hostile payload").first
    expect(hostile).to_be_visible()
    expect(hostile).to_contain_text("<script>window.__pwned=1</script>")
    expect(hostile).to_contain_text('<img src=x onerror="window.__pwned=1">')
    assert_not_pwned(page)

    hostile.locator(".result-link").click()
    expect(page.locator("#document-text")).to_contain_text("<script>window.__pwned=1</script>")
    expect(page.locator("#document-text")).to_contain_text('<img src=x onerror="window.__pwned=1">')
    assert_not_pwned(page)


def test_hostile_query_is_shown_as_text(page: Page) -> None:
    search(page, HOSTILE_QUERY)

    expect(page.locator("#summary")).to_contain_text(HOSTILE_QUERY)
    expect(page.locator("#q")).to_have_value(HOSTILE_QUERY)
    assert page.title().startswith(HOSTILE_QUERY)
    assert_not_pwned(page)


@pytest.mark.parametrize(
    ("status", "detail", "shown"),
    [
        (503, "no index loaded", "no index loaded"),
        (422, [{"loc": ["query", "q"], "msg": "String should have at most 10000 characters"}], "at most 10000 characters"),
    ],
)
def test_api_error_detail_is_shown(page: Page, status: int, detail: object, shown: str) -> None:
    page.route(SEARCH_API, fulfil_json(status, {"detail": detail}))
    search(page, SEED_QUESTION)

    expect(page.locator("#status")).to_contain_text(shown)
    expect(page.locator("#status")).to_contain_text(str(status))
    expect(page.locator(".result")).to_have_count(0)


def test_unreachable_server_is_reported(page: Page) -> None:
    page.route(SEARCH_API, lambda route: route.abort("connectionrefused"))
    search(page, SEED_QUESTION)

    expect(page.locator("#status")).to_contain_text("Could not reach the server")


def test_missing_document_is_reported(page: Page) -> None:
    page.goto("/?doc=no/such/document.txt&passage=0-10")

    expect(page.locator("#status")).to_contain_text("Could not open the document")
    expect(page.locator("#document-text mark")).to_have_count(0)


def test_loading_then_no_results(page: Page) -> None:
    pending: list[Route] = []
    page.route(SEARCH_API, lambda route: pending.append(route))
    search(page, "nothing matches this")
    expect(page.locator("#status")).to_contain_text("Searching")

    empty = {"query": "nothing matches this", "k": 10, "offset": 0, "total": 0, "took_ms": 1, "mode": "semantic", "results": []}
    pending[0].fulfill(status=200, content_type="application/json", body=json.dumps(empty))

    expect(page.locator("#status")).to_contain_text("No results")
    expect(page.locator(".result")).to_have_count(0)


def test_phone_sized_screen_has_no_horizontal_scroll(page: Page) -> None:
    page.set_viewport_size({"width": 375, "height": 667})
    search(page, SEED_QUESTION)
    expect(page.locator(".result").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.locator(".result-link").first.click()
    expect(page.locator("mark.passage-mark")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


@pytest.fixture(scope="module")
def structured_server(tmp_path_factory):
    """A real server over a generated three-page PDF and a Markdown file with sections."""
    from tests.conftest import start_server, stop_server, write
    from tests.test_readers import make_pdf

    docs = tmp_path_factory.mktemp("structured-docs")
    write(docs, "report.pdf", make_pdf(3))
    write(docs, "manual.pdf", make_low_answer_pdf())
    write(docs, "notes/diary.md", "# Diary\n\ndate 2023-03-01\n\nThe diary records the weather every morning.\n")
    write(docs, "guide.md", "# Guide\n\n## Installing\n\nRun the installer twice on Tuesdays.\n\n## Removing\n\nDelete the folder.\n")
    server = start_server(docs, tmp_path_factory.mktemp("structured-index") / "index")
    yield server
    stop_server(server)


def make_low_answer_pdf() -> bytes:
    """A page whose answer stands near its foot, so showing it means scrolling the page image."""
    import io

    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(72, 740, "Workshop manual for the time machine.")
    pdf.drawString(72, 90, "The flux capacitor must be calibrated at dawn before every journey.")
    pdf.showPage()
    pdf.drawString(72, 740, "Appendix: spare parts and suppliers.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def test_a_pdf_answer_shows_its_printed_page_scrolled_to_the_mark(browser: Browser, structured_server):
    context = browser.new_context(base_url=structured_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        search(page, "When must the flux capacitor be calibrated?")
        first = page.locator(".result").first
        expect(first.locator(".result-link")).to_have_text(re.compile("manual|Workshop"))
        first.locator(".result-link").click()
        expect(page.locator("#page-view")).to_be_visible()
        expect(page).to_have_url(re.compile(r"passage_id=manual\.pdf%23\d+&page=1"))
        image = page.locator("#page-image")
        expect(image).to_have_attribute("src", re.compile("^blob:"))
        page.wait_for_function("document.getElementById('page-view').dataset.markTop !== undefined")
        natural, top, scroll, height = page.evaluate(
            "() => { const v = document.getElementById('page-view'), i = document.getElementById('page-image');"
            " return [i.naturalWidth, Number(v.dataset.markTop), v.scrollTop, v.clientHeight]; }"
        )
        assert natural == 1200
        assert scroll > 0 and scroll <= top <= scroll + height, (top, scroll, height)
        expect(page.locator("#page-caption")).to_have_text("p. 1")
        page.goto(f"/?doc={quote('guide.md')}&q=installer")
        expect(page.locator("#document-text")).to_contain_text("installer")
        expect(page.locator("#page-view")).to_be_hidden()
    finally:
        context.close()


def test_results_show_the_page_and_the_section_and_the_document_marks_pages(browser: Browser, structured_server):
    context = browser.new_context(base_url=structured_server.url)
    page = context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        search(page, "page 2 marker")
        first = page.locator(".result").first
        expect(first.locator(".result-page")).to_have_text(re.compile(r"^pp?\. \d"))
        search(page, "When should the installer run?")
        expect(page.locator(".result").first.locator(".result-section")).to_have_text("Guide > Installing")
        page.goto(f"/?doc={quote('report.pdf')}&q=marker")
        expect(page.locator(".page-break")).to_have_count(3)
        expect(page.locator(".page-break").nth(1)).to_have_text("p. 2")
    finally:
        context.close()


def test_a_corrected_question_is_said_before_the_results(page: Page) -> None:
    search(page, "Istambul acords")
    expect(page.locator("#corrected")).to_have_text("Showing results for Istanbul accords")
    expect(page.locator("#corrected strong")).to_have_text(["Istanbul", "accords"])
    expect(page.locator("#results")).to_contain_text("Istanbul")
    search(page, "Istanbul accords")
    expect(page.locator(".result").first).to_be_visible()
    expect(page.locator("#corrected")).to_be_hidden()


# --- facets ---


def test_facet_chips_count_documents_filter_on_a_click_and_keep_it_in_the_url(browser: Browser, structured_server):
    context = browser.new_context(base_url=structured_server.url)
    page = context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    chip = lambda facet, value: page.locator(f'.facet-chip[data-facet="{facet}"][data-value="{value}"]')  # noqa: E731 - a local shorthand
    try:
        search(page, "When should the installer run?")
        expect(page.locator(".result").first).to_be_visible()
        expect(chip("type", "pdf")).to_contain_text("pdf2")
        expect(chip("type", "md")).to_contain_text("md2")
        expect(chip("folder", "notes")).to_contain_text("notes1")
        expect(chip("year", "2023")).to_contain_text("20231")

        chip("type", "md").click()
        expect(page).to_have_url(re.compile(r"[?&]type=md(&|$)"))
        expect(chip("type", "md")).to_have_attribute("aria-current", "true")
        expect(page.locator(".result").first).to_be_visible()
        assert sorted(set(_result_docs(page, "#results"))) == ["guide.md", "notes/diary.md"]
        expect(chip("type", "pdf")).to_have_count(0)

        page.reload()
        expect(chip("type", "md")).to_have_attribute("aria-current", "true")
        chip("folder", "notes").click()
        expect(page).to_have_url(re.compile(r"folder=notes"))
        expect(chip("folder", "notes")).to_have_attribute("aria-current", "true")
        assert set(_result_docs(page, "#results")) == {"notes/diary.md"}

        page.go_back()
        expect(chip("folder", "notes")).not_to_have_attribute("aria-current", "true")
        chip("type", "md").click()
        expect(page).not_to_have_url(re.compile(r"type="))
        chip("year", "2023").click()
        expect(page).to_have_url(re.compile(r"year=2023"))
        expect(chip("year", "2023")).to_have_attribute("aria-current", "true")
        assert set(_result_docs(page, "#results")) == {"notes/diary.md"}
    finally:
        context.close()


# --- group by document ---


def _result_docs(page: Page, selector: str) -> list[str]:
    hrefs = page.locator(f"{selector} > .result .result-link").evaluate_all("links => links.map(link => link.href)")
    return [parse_qs(urlsplit(href).query)["doc"][0] for href in hrefs]


def test_group_by_document_keeps_its_state_in_the_url_and_expands_in_place(page: Page) -> None:
    search(page, SEED_QUESTION)
    expect(page.locator("#results > .result").first).to_be_visible()
    ungrouped = _result_docs(page, "#results")
    assert len(set(ungrouped)) < len(ungrouped), "the seeds give several passages of one document"

    page.check("#group")
    expect(page).to_have_url(re.compile(r"group_by=document"))
    expect(page.locator(".more-button").first).to_have_text(re.compile(r"^\d+ more from this document$"))
    grouped = _result_docs(page, "#results")
    assert len(grouped) == len(set(grouped)) and set(ungrouped) <= set(grouped)

    # Each result's offer arrives by its own request, in any order: hold on to one result and its own
    # button, since the page's first button can change while the others land.
    index = page.locator("#results > .result").evaluate_all("items => items.findIndex(item => item.querySelector('.more-button'))")
    item, doc = page.locator("#results > .result").nth(index), grouped[index]
    more = item.locator(".more-button")
    count = int(text_of(more).split()[0])
    url = page.url
    more.click()
    expanded = item.locator(".more-results > .result")
    expect(expanded).to_have_count(count)
    assert set(_result_docs(page, "#results .more-results")) == {doc}
    expect(item.locator(".more-button")).to_have_count(0)
    assert page.url == url

    page.reload()
    expect(page.locator("#group")).to_be_checked()
    expect(page.locator(".more-button").first).to_be_visible()
    page.locator("#results > .result .result-passage").first.click()
    expect(page.locator("#document")).to_be_visible()
    assert "group_by=document" in page.url
    page.click("#back-link")
    expect(page.locator("#group")).to_be_checked()

    page.uncheck("#group")
    expect(page).not_to_have_url(re.compile(r"group_by"))
    expect(page.locator(".more-button")).to_have_count(0)
    page.go_back()
    expect(page.locator("#group")).to_be_checked()


def test_the_answers_page_is_shown_with_the_passage_range_where_it_differs(page: Page) -> None:
    hit = {
        "rank": 1,
        "score": 0.9,
        "doc_id": "report.pdf",
        "title": "Report",
        "date": None,
        "passage_id": "p1",
        "text": "End of page two. The answer on page three.",
        "start": 0,
        "end": 42,
        "page": 2,
        "page_end": 3,
        "section": None,
        "scores": {},
        "highlights": [{"start": 17, "end": 42, "page": 3}],
    }
    body = {"query": "answer", "k": 10, "offset": 0, "total": 1, "took_ms": 1, "mode": "hybrid", "notices": [], "results": [hit]}
    page.route(SEARCH_API, fulfil_json(200, body))
    search(page, "answer")
    expect(page.locator(".result-page")).to_have_text("p. 3 (passage pp. 2–3)")


# --- search token ---


@pytest.fixture(scope="module")
def token_server(live_server, tmp_path_factory):
    from tests.conftest import private_index_copy, start_server, stop_server

    server = start_server(
        live_server.docs,
        private_index_copy(live_server, tmp_path_factory.mktemp("page-token")),
        env={"SEMSEARCH_SEARCH_TOKEN": "page-secret"},
    )
    yield server
    stop_server(server)


def test_the_page_asks_for_the_search_token_once_and_sends_it(browser: Browser, token_server) -> None:
    context = browser.new_context(base_url=token_server.url)
    page = context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    asked: list[str] = []

    def answer(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept("wrong" if len(asked) == 1 else "page-secret")

    page.on("dialog", answer)
    try:
        search(page, SEED_QUESTION)
        expect(page.locator("#status")).to_contain_text("HTTP 403")
        search(page, SEED_QUESTION)
        expect(page.locator(".result").first).to_be_visible()
        page.check("#group")
        expect(page.locator(".more-button").first).to_be_visible()
        page.locator(".result-link").first.click()
        expect(page.locator("mark.passage-mark")).to_be_visible()
        assert asked == ["This server needs a search token:", "That search token was not accepted. Search token:"]
        assert page.evaluate("sessionStorage.getItem('semsearch-search-token')") == "page-secret"
    finally:
        context.close()
