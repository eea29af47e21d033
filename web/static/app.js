// The search page. The URL is the only state: `/?q=...` shows results (`&group_by=document`:
// one passage per document; `&type=pdf&folder=notes&year=2024`: the filters the facet chips set) and `/?doc=...&passage=start-end&q=...` shows a document (for a PDF
// also `&passage_id=...&page=N`: the printed page with the answer marked), so every view can be
// shared, reloaded and reached with Back/Forward. Everything that comes from the
// server or the URL is put on the page as text nodes, never parsed as HTML.
"use strict";

const RESULTS_PER_PAGE = 10;
const MAX_K = 100; // search.rules.MAX_K; /search/rules says so too, but expanding must not wait for it
const TOKEN_KEY = "semsearch-search-token";

const els = {
  form: document.getElementById("search-form"),
  input: document.getElementById("q"),
  group: document.getElementById("group"),
  status: document.getElementById("status"),
  intro: document.getElementById("intro"),
  resultsView: document.getElementById("results-view"),
  corrected: document.getElementById("corrected"),
  summary: document.getElementById("summary"),
  facets: document.getElementById("facets"),
  notices: document.getElementById("notices"),
  results: document.getElementById("results"),
  documentView: document.getElementById("document"),
  backLink: document.getElementById("back-link"),
  documentTitle: document.getElementById("document-title"),
  documentMeta: document.getElementById("document-meta"),
  documentText: document.getElementById("document-text"),
  pageView: document.getElementById("page-view"),
  pageImage: document.getElementById("page-image"),
  pageCaption: document.getElementById("page-caption"),
};

let inFlight = null;

class RequestError extends Error {}

// ---------------------------------------------------------------- navigation

function navigate(url, state = {}) {
  // Remember where the reader was, so Back lands on the same result.
  history.replaceState({ ...history.state, scrollY: window.scrollY }, "");
  const target = new URL(url, location.href);
  if (target.href === location.href) {
    history.replaceState(state, "", target.href);
  } else {
    history.pushState(state, "", target.href);
  }
  render();
}

function searchHref(query, grouped, filters = NO_FILTERS) {
  if (!query) return "/";
  const params = new URLSearchParams({ q: query });
  if (grouped) params.set("group_by", "document");
  writeFilters(params, filters);
  return `/?${params}`;
}

// ---------------------------------------------------------------- filters (facet chips)

const NO_FILTERS = { types: [], folder: "", year: "" };
const FACET_LABELS = { type: "Type", folder: "Folder", year: "Year" };

function readFilters(params) {
  const year = params.get("year") || "";
  return {
    types: params.getAll("type").filter(Boolean),
    folder: params.get("folder") || "",
    year: /^\d{4}$/.test(year) ? year : "",
  };
}

function writeFilters(params, filters) {
  for (const type of filters.types) params.append("type", type);
  if (filters.folder) params.set("folder", filters.folder);
  if (filters.year) params.set("year", filters.year);
}

function apiFilters(params, filters) {
  // A year is the date filters' whole year; types and folder go as they are.
  for (const type of filters.types) params.append("type", type);
  if (filters.folder) params.set("folder", filters.folder);
  if (filters.year) {
    params.set("date_from", `${filters.year}-01-01`);
    params.set("date_to", `${filters.year}-12-31`);
  }
}

function toggled(filters, facet, value) {
  // Types combine (any of them); a folder or a year replaces the one chosen. Choosing the chosen one clears it.
  if (facet === "type") {
    const types = filters.types.includes(value) ? filters.types.filter((type) => type !== value) : [...filters.types, value];
    return { ...filters, types };
  }
  if (facet === "folder") return { ...filters, folder: filters.folder === value ? parentFolder(value) : value };
  return { ...filters, year: filters.year === value ? "" : value };
}

function parentFolder(folder) {
  const cut = folder.lastIndexOf("/");
  return cut > 0 ? folder.slice(0, cut) : "";
}

function isChosen(filters, facet, value) {
  if (facet === "type") return filters.types.includes(value);
  return (facet === "folder" ? filters.folder : filters.year) === value;
}

function showFacets(facets, query, grouped, filters) {
  // One row of chips per facet: the counts of the current results, plus the chosen values (so a filter
  // that leaves nothing can still be taken off).
  const groups = [];
  for (const facet of Object.keys(FACET_LABELS)) {
    const counts = { ...(facets && typeof facets[facet] === "object" ? facets[facet] : {}) };
    const chosen = facet === "type" ? filters.types : [facet === "folder" ? filters.folder : filters.year].filter(Boolean);
    for (const value of chosen) if (!(value in counts)) counts[value] = 0;
    const values = Object.keys(counts);
    if (values.length === 0) continue;
    const group = element("div", "facet-group");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", FACET_LABELS[facet]);
    group.append(element("span", "facet-name", FACET_LABELS[facet]));
    for (const value of values) {
      const chip = element("a", "facet-chip");
      chip.dataset.facet = facet;
      chip.dataset.value = value;
      if (isChosen(filters, facet, value)) chip.setAttribute("aria-current", "true");
      chip.title = isChosen(filters, facet, value) ? "Chosen: click to take this filter off" : `Only ${FACET_LABELS[facet].toLowerCase()} ${value}`;
      chip.href = searchHref(query, grouped, toggled(filters, facet, value));
      chip.append(element("span", "facet-value", value), element("span", "facet-count", String(counts[value])));
      group.append(chip);
    }
    groups.push(group);
  }
  els.facets.replaceChildren(...groups);
  els.facets.hidden = groups.length === 0;
}

function documentHref(hit, query, grouped) {
  const params = new URLSearchParams({ doc: hit.doc_id, passage: `${hit.start}-${hit.end}` });
  const page = answerPage(hit);
  if (Number.isInteger(page) && typeof hit.passage_id === "string") {
    params.set("passage_id", hit.passage_id);
    params.set("page", String(page));
  }
  if (query) params.set("q", query);
  if (grouped) params.set("group_by", "document");
  // The results' filters travel along, so going back lands on the same narrowed results.
  writeFilters(params, currentFilters());
  return `/?${params}`;
}

function currentFilters() {
  return readFilters(new URLSearchParams(location.search));
}

function documentApiPath(docId) {
  // doc_id is a relative path such as `news/2024/a.md`; its slashes are real path separators.
  return "/documents/" + docId.split("/").map(encodeURIComponent).join("/");
}

function parsePassage(value) {
  const match = /^(\d+)-(\d+)$/.exec(value || "");
  return match ? { start: Number(match[1]), end: Number(match[2]) } : null;
}

async function render() {
  if (inFlight) inFlight.abort();
  inFlight = new AbortController();
  const { signal } = inFlight;
  const params = new URLSearchParams(location.search);
  const query = params.get("q") || "";
  const grouped = params.get("group_by") === "document";
  const filters = readFilters(params);
  els.input.value = query;
  els.group.checked = grouped;
  try {
    if (params.has("doc")) {
      const printed = { passageId: params.get("passage_id"), page: Number(params.get("page")) };
      await showDocument(params.get("doc"), parsePassage(params.get("passage")), printed, query, grouped, signal);
    } else {
      await showResults(query.trim(), grouped, filters, signal);
    }
  } catch (error) {
    if (error.name !== "AbortError") throw error;
  }
}

function restoreScroll() {
  const saved = history.state && history.state.scrollY;
  if (typeof saved !== "number") return false;
  window.scrollTo(0, saved);
  return true;
}

// ---------------------------------------------------------------- requests

async function fetchJSON(url, signal) {
  let response = await send(url, signal);
  // A server with SEMSEARCH_SEARCH_TOKEN answers 401 (no token) or 403 (another one): ask once, then retry.
  if ((response.status === 401 || response.status === 403) && askForToken(response.status)) {
    response = await send(url, signal);
  }
  return readJSON(response);
}

async function send(url, signal, accept = "application/json") {
  const headers = { Accept: accept };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(url, { signal, headers });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new RequestError("Could not reach the server. Check that semsearch is running, then try again.");
  }
}

function askForToken(status) {
  // Kept for this tab only (sessionStorage), so closing it forgets the token.
  const question = status === 401 ? "This server needs a search token:" : "That search token was not accepted. Search token:";
  const token = (window.prompt(question) || "").trim();
  if (!token) return false;
  sessionStorage.setItem(TOKEN_KEY, token);
  return true;
}

async function readJSON(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    if (error.name === "AbortError") throw error;
  }
  if (!response.ok) {
    const detail = errorDetail(body);
    throw new RequestError(`${detail || response.statusText || "the server returned an error"} (HTTP ${response.status})`);
  }
  if (body === null) throw new RequestError("The server sent a response that is not JSON.");
  return body;
}

function errorDetail(body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  // FastAPI validation errors: a list of {loc, msg, type}.
  if (Array.isArray(detail)) {
    return detail.map((item) => (item && typeof item.msg === "string" ? item.msg : String(item))).join("; ");
  }
  return "";
}

// ---------------------------------------------------------------- status line

function setStatus(kind, message) {
  els.status.hidden = !message;
  els.status.dataset.kind = kind;
  els.status.textContent = message;
}

// ---------------------------------------------------------------- results view

async function showResults(query, grouped, filters, signal) {
  els.documentView.hidden = true;
  els.resultsView.hidden = false;
  els.results.replaceChildren();
  els.summary.hidden = true;
  els.corrected.hidden = true;
  els.facets.replaceChildren();
  els.facets.hidden = true;
  els.notices.replaceChildren();
  els.notices.hidden = true;
  document.title = query ? `${query} – semsearch` : "semsearch";
  els.intro.hidden = Boolean(query);
  if (!query) {
    setStatus("idle", "");
    return;
  }
  setStatus("loading", "Searching…");
  els.results.setAttribute("aria-busy", "true");
  let data;
  try {
    const fields = new URLSearchParams({ q: query, k: RESULTS_PER_PAGE, facets: Object.keys(FACET_LABELS).join(",") });
    if (grouped) fields.set("group_by", "document");
    apiFilters(fields, filters);
    data = await fetchJSON(searchApiPath(fields), signal);
  } catch (error) {
    if (error instanceof RequestError) setStatus("error", `Search failed: ${error.message}`);
    else throw error;
    return;
  } finally {
    els.results.removeAttribute("aria-busy");
  }
  const hits = Array.isArray(data.results) ? data.results : [];
  showCorrected(data);
  showFacets(data.facets, query, grouped, filters);
  if (hits.length === 0) {
    setStatus("empty", `No results for “${query}”.`);
    return;
  }
  setStatus("idle", "");
  els.summary.textContent = summaryText(data, query, hits.length);
  els.summary.hidden = false;
  // Notes from the engine about how it answered (a fallback mode, a filter it ignored).
  const notices = Array.isArray(data.notices) ? data.notices.filter((notice) => typeof notice === "string") : [];
  els.notices.replaceChildren(...notices.map((notice) => element("li", "", notice)));
  els.notices.hidden = notices.length === 0;
  // Scores differ in scale between modes (cosine, fused, BM25): bars are relative to the best shown.
  const best = Math.max(...hits.map((hit) => (typeof hit.score === "number" ? hit.score : 0)));
  const items = hits.map((hit) => resultItem(hit, query, grouped, best));
  els.results.replaceChildren(...items);
  restoreScroll();
  if (grouped) await Promise.all(hits.map((hit, i) => offerMore(items[i], hit, query, best, signal)));
}

function showCorrected(data) {
  // Misspelled words the engine corrected: say what was searched, the corrected words in bold.
  const corrections = Array.isArray(data.corrections) ? data.corrections.filter((c) => c && typeof c.to === "string") : [];
  if (corrections.length === 0 || typeof data.searched !== "string") return;
  const corrected = new Set(corrections.map((c) => c.to.toLowerCase()));
  els.corrected.replaceChildren(document.createTextNode("Showing results for "));
  for (const part of data.searched.split(/(\s+)/)) {
    const bare = part.replace(/^\W+|\W+$/g, "").toLowerCase();
    els.corrected.append(corrected.has(bare) ? element("strong", "", part) : document.createTextNode(part));
  }
  els.corrected.hidden = false;
}

function searchApiPath(fields) {
  return `/search?${new URLSearchParams(fields)}`;
}

// ---------------------------------------------------------------- more from one document

async function offerMore(item, hit, query, best, signal) {
  // One small search per grouped result counts the document's other passages for this query.
  let data;
  try {
    data = await fetchJSON(searchApiPath({ q: query, doc_id: hit.doc_id, k: 1 }), signal);
  } catch (error) {
    if (error instanceof RequestError) return; // the result itself is shown; only the offer is missing
    throw error;
  }
  const more = Number.isInteger(data.total) ? data.total - 1 : 0;
  if (more <= 0) return;
  const button = element("button", "more-button", `${more} more from this document`);
  button.type = "button";
  button.setAttribute("aria-expanded", "false");
  button.addEventListener("click", () => expandMore(item, button, hit, query, more, best));
  item.append(button);
}

async function expandMore(item, button, hit, query, more, best) {
  button.disabled = true;
  let data;
  try {
    data = await fetchJSON(searchApiPath({ q: query, doc_id: hit.doc_id, k: Math.min(more + 1, MAX_K) }));
  } catch (error) {
    if (!(error instanceof RequestError)) throw error;
    button.disabled = false;
    button.textContent = `Could not load more: ${error.message}`;
    return;
  }
  const others = (Array.isArray(data.results) ? data.results : []).filter((other) => other.passage_id !== hit.passage_id);
  const list = element("ol", "more-results");
  list.setAttribute("aria-label", `More from ${hit.title || hit.doc_id}`);
  list.append(...others.slice(0, more).map((other) => resultItem(other, query, true, best)));
  button.replaceWith(list);
}

function summaryText(data, query, shown) {
  const parts = [`${shown} ${shown === 1 ? "passage" : "passages"} for “${query}”, best first`];
  if (typeof data.mode === "string" && data.mode) parts.push(data.mode);
  if (typeof data.took_ms === "number") parts.push(`${Math.round(data.took_ms)} ms`);
  return parts.join(" · ");
}

function resultItem(hit, query, grouped, best) {
  const item = element("li", "result");

  const heading = element("h2", "result-title");
  const link = element("a", "result-link", hit.title || hit.doc_id);
  link.href = documentHref(hit, query, grouped);
  heading.append(link);

  const meta = element("p", "meta result-meta");
  const date = dateElement(hit.date);
  if (date) meta.append(date);
  if (hit.title && hit.title !== hit.doc_id) meta.append(element("span", "result-source", hit.doc_id));
  const where = pagesShown(hit);
  if (where) meta.append(element("span", "result-page", where));
  if (typeof hit.section === "string" && hit.section) meta.append(element("span", "result-section", hit.section));
  const score = scoreElement(hit.score, best);
  if (score) meta.append(score);

  const passage = element("p", "result-passage");
  appendHighlighted(passage, String(hit.text || ""), hit.highlights);

  item.append(heading, meta, passage);
  return item;
}

function answerPage(hit) {
  // The answer's page: its first highlight's, else where the passage starts.
  const highlighted = (Array.isArray(hit.highlights) ? hit.highlights : []).find((span) => span && Number.isInteger(span.page));
  return highlighted ? highlighted.page : hit.page;
}

function pagesShown(hit) {
  // The answer's page, then the passage's range where that says more:
  // a passage that starts with the last sentence of page 2 answers on page 3.
  const answer = answerPage(hit);
  if (!Number.isInteger(answer)) return "";
  const single = `p. ${answer}`;
  const range = pagesText(hit.page, hit.page_end);
  return range && range !== single ? `${single} (passage ${range})` : single;
}

function pagesText(page, pageEnd) {
  if (!Number.isInteger(page)) return "";
  return Number.isInteger(pageEnd) && pageEnd > page ? `pp. ${page}–${pageEnd}` : `p. ${page}`;
}

function scoreElement(score, best) {
  if (typeof score !== "number" || !Number.isFinite(score)) return null;
  const wrapper = element("span", "score");
  wrapper.title = `Score ${score.toFixed(4)} (bar relative to the best result shown)`;
  const bar = element("span", "score-bar");
  bar.setAttribute("aria-hidden", "true");
  const fill = element("span", "score-fill");
  const share = best > 0 ? score / best : 0;
  fill.style.width = `${Math.round(Math.min(Math.max(share, 0), 1) * 100)}%`;
  bar.append(fill);
  wrapper.append(bar, element("span", "score-value", score.toFixed(2)));
  return wrapper;
}

function appendHighlighted(parent, text, spans) {
  // Passages are cut mid-paragraph; trimming keeps a snippet from opening on a blank line.
  const first = text.length - text.trimStart().length;
  const last = text.trimEnd().length;
  let cursor = first;
  for (const span of normalizeSpans(spans, first, last)) {
    if (span.start > cursor) parent.append(snippetText(text.slice(cursor, span.start)));
    const mark = element("mark");
    mark.append(snippetText(text.slice(span.start, span.end)));
    parent.append(mark);
    cursor = span.end;
  }
  if (cursor < last) parent.append(snippetText(text.slice(cursor, last)));
}

function snippetText(text) {
  // Line breaks carry meaning (headings, list items), blank lines between them only cost space.
  return document.createTextNode(text.replace(/[ \t]*\n\s*/g, "\n"));
}

function normalizeSpans(spans, min, max) {
  // Sorted, clamped to the text and merged, so a bad span can never duplicate or drop text.
  const clean = (Array.isArray(spans) ? spans : [])
    .filter((span) => span && Number.isInteger(span.start) && Number.isInteger(span.end))
    .map((span) => ({ start: Math.max(min, span.start), end: Math.min(max, span.end) }))
    .filter((span) => span.start < span.end)
    .sort((a, b) => a.start - b.start);
  const merged = [];
  for (const span of clean) {
    const last = merged[merged.length - 1];
    if (last && span.start <= last.end) last.end = Math.max(last.end, span.end);
    else merged.push(span);
  }
  return merged;
}

// ---------------------------------------------------------------- document view

async function showDocument(docId, passage, printed, query, grouped, signal) {
  els.resultsView.hidden = true;
  els.intro.hidden = true;
  els.documentView.hidden = false;
  els.backLink.href = searchHref(query.trim(), grouped, currentFilters());
  // A shared document link has no search behind it, so offer a fresh one instead.
  els.backLink.textContent = query.trim() ? "← Back to results" : "← New search";
  els.documentTitle.textContent = "";
  els.documentMeta.replaceChildren();
  els.documentText.replaceChildren();
  hidePageImage();
  document.title = "semsearch";
  setStatus("loading", "Loading document…");
  let doc;
  try {
    doc = await fetchJSON(documentApiPath(docId), signal);
  } catch (error) {
    if (error instanceof RequestError) setStatus("error", `Could not open the document: ${error.message}`);
    else throw error;
    return;
  }
  setStatus("idle", "");
  const title = doc.title || doc.doc_id || docId;
  document.title = `${title} – semsearch`;
  els.documentTitle.textContent = title;

  const date = dateElement(doc.date);
  if (date) els.documentMeta.append(date);
  if (doc.title && doc.title !== doc.doc_id) els.documentMeta.append(element("span", "result-source", doc.doc_id));

  const text = String(doc.text || "");
  const pages = Array.isArray(doc.pages) ? doc.pages.filter((start) => Number.isInteger(start)) : [];
  const mark = appendPassage(els.documentText, text, passage, pages);
  const shown = pages.length > 0 && Number.isInteger(printed.page) && printed.page >= 1;
  if (!restoreScroll()) {
    if (mark && !shown) mark.scrollIntoView({ block: "center" });
    else window.scrollTo(0, 0);
  }
  if (shown) await showPageImage(docId, printed, query, signal);
}

// ---------------------------------------------------------------- the printed page

async function showPageImage(docId, printed, query, signal) {
  // The PDF page as the server renders it, with the passage and its answer marked; the image is
  // fetched (not an <img src>) so the search token goes with it and the mark's place can be read.
  const params = new URLSearchParams();
  if (printed.passageId) params.set("passage", printed.passageId);
  if (printed.passageId && query.trim()) params.set("q", query.trim());
  const url = `${documentApiPath(docId)}/pages/${printed.page}.png?${params}`;
  let response;
  try {
    response = await send(url, signal, "image/png");
  } catch (error) {
    if (error instanceof RequestError) return; // the text view is already there
    throw error;
  }
  if (!response.ok || !(response.headers.get("content-type") || "").startsWith("image/png")) return;
  const box = parseBox(response.headers.get("x-mark-box"));
  const blob = await response.blob();
  hidePageImage();
  els.pageImage.src = URL.createObjectURL(blob);
  els.pageImage.alt = `Page ${printed.page}${box ? ", with the answer marked" : ""}`;
  els.pageCaption.textContent = `p. ${printed.page}`;
  els.pageView.hidden = false;
  await els.pageImage.decode().catch(() => {});
  if (box) {
    // The panel scrolls inside itself: the mark a third of the way down, as a reader's eye expects.
    const scale = els.pageImage.clientWidth / els.pageImage.naturalWidth;
    els.pageView.scrollTop = Math.max(0, box.top * scale - els.pageView.clientHeight / 3);
    els.pageView.dataset.markTop = String(Math.round(box.top * scale));
  }
}

function hidePageImage() {
  if (els.pageImage.src.startsWith("blob:")) URL.revokeObjectURL(els.pageImage.src);
  els.pageImage.removeAttribute("src");
  els.pageView.hidden = true;
  delete els.pageView.dataset.markTop;
}

function parseBox(value) {
  const parts = String(value || "").split(",").map(Number);
  if (parts.length !== 4 || !parts.every(Number.isFinite)) return null;
  return { left: parts[0], top: parts[1], right: parts[2], bottom: parts[3] };
}

function appendPassage(parent, text, passage, pages) {
  // The text is cut at page starts (each marked "p. N") and at the passage's ends (marked, possibly
  // across a page boundary); every character is appended exactly once, as text.
  const start = passage ? Math.max(0, Math.min(passage.start, text.length)) : 0;
  const end = passage ? Math.max(start, Math.min(passage.end, text.length)) : 0;
  const pageStarts = new Map(pages.map((offset, index) => [Math.max(0, Math.min(offset, text.length)), index + 1]));
  const cuts = [...new Set([0, text.length, start, end, ...pageStarts.keys()])].sort((a, b) => a - b);
  let first = null;
  for (let i = 0; i < cuts.length; i += 1) {
    const from = cuts[i];
    if (pageStarts.has(from) && pages.length > 1) parent.append(element("span", "page-break", `p. ${pageStarts.get(from)}`));
    const to = i + 1 < cuts.length ? cuts[i + 1] : from;
    if (to <= from) continue;
    const slice = text.slice(from, to);
    if (from >= start && to <= end && start < end) {
      const mark = element("mark", "passage-mark", slice);
      if (!first) {
        mark.id = "passage-mark";
        first = mark;
      }
      parent.append(mark);
    } else {
      parent.append(document.createTextNode(slice));
    }
  }
  return first;
}

// ---------------------------------------------------------------- small helpers

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function dateElement(iso) {
  if (typeof iso !== "string" || !iso) return null;
  const time = element("time", "date", formatDate(iso));
  time.dateTime = iso;
  return time;
}

function formatDate(iso) {
  const day = /^\d{4}-\d{2}-\d{2}/.exec(iso);
  if (!day) return iso;
  const parsed = new Date(`${day[0]}T00:00:00Z`);
  if (Number.isNaN(parsed.getTime())) return iso;
  return parsed.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
}

function isPlainClick(event) {
  return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey;
}

function isTyping(target) {
  return target instanceof HTMLElement && (target.isContentEditable || target.closest("input, textarea, select") !== null);
}

// ---------------------------------------------------------------- wiring

els.form.addEventListener("submit", (event) => {
  event.preventDefault();
  navigate(searchHref(els.input.value.trim(), els.group.checked));
});

els.group.addEventListener("change", () => {
  const query = els.input.value.trim();
  if (query) navigate(searchHref(query, els.group.checked, currentFilters()));
});

els.facets.addEventListener("click", (event) => {
  const chip = event.target.closest(".facet-chip");
  if (!chip || !isPlainClick(event)) return;
  event.preventDefault();
  navigate(chip.href);
});

els.results.addEventListener("click", (event) => {
  const item = event.target.closest(".result");
  // The innermost result: one shown under "N more from this document" opens itself.
  if (!item || !isPlainClick(event) || event.target.closest("button")) return;
  // Dragging across a passage to copy it should not open the document.
  const onLink = event.target.closest("a") !== null;
  if (!onLink && String(window.getSelection()).length > 0) return;
  event.preventDefault();
  navigate(item.querySelector(".result-link").href, { fromResults: true });
});

els.backLink.addEventListener("click", (event) => {
  if (!isPlainClick(event)) return;
  event.preventDefault();
  if (history.state && history.state.fromResults) history.back();
  else navigate(els.backLink.href);
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
  event.preventDefault();
  els.input.focus();
  els.input.select();
});

window.addEventListener("popstate", render);

// Limits are the core's (search.rules), not copied here: the input takes its length from the API.
// Without asking for a token: the first search asks if one is needed.
send("/search/rules")
  .then(readJSON)
  .then((rules) => {
    if (rules && Number.isInteger(rules.max_query_chars)) els.input.maxLength = rules.max_query_chars;
  })
  .catch(() => {});

history.scrollRestoration = "manual";
els.input.focus({ preventScroll: true });
render();
