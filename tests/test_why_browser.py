"""The "Why not this document?" panel in Debian's Chromium (Playwright), against `python app.py`:
type words of a document the first stage misses into the finder, open it, read which stage lost it;
the page's data equals `python -m explorer why --json` run here on the same input."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

from browser_support import browser_page, open_app
from engine_bounds import FP32_ATOL

from explorer.cli import main
from explorer.data.builtin_corpora import load_set
from explorer.pipeline.compare import compare

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
SET, TOP_K = "topic_vs_answer", 3


def _missed_document():
    """A query of the set and a document its bi-encoder first stage ranks past top-k, with words to find it by."""
    labelled = load_set(SET)
    query = labelled.queries[1].text
    full = compare(query, labelled.corpus, top_k=len(labelled.corpus), rerankers=["cross"])
    doc_id = full.stages[0].ranking[TOP_K + 3].id
    text = labelled.corpus.by_id()[doc_id].text
    words = " ".join(w.strip(".,:;!?") for w in text.split()[:4])
    return query, doc_id, words


def _cli_json(query, doc_id) -> dict:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["why", "--query", query, "--corpus", f"builtin:{SET}", "--doc", doc_id, "--top-k", str(TOP_K),
                     "--first-stage", "bi", "--rerankers", "cross", "--precision", "fp32", "--json"]) == 0
    return json.loads(buffer.getvalue())


def test_find_a_missed_document_and_read_which_stage_lost_it(app_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    query, doc_id, words = _missed_document()
    with browser_page(offline=True, viewport=(1440, 1000)) as page:
        open_app(page, app_url)  # the landing comparison is on the board before anything is typed
        page.locator("#corpus-source label", has_text="Built-in").click()
        builtin = page.locator("#corpus-builtin input")
        builtin.wait_for(state="visible", timeout=30_000)
        builtin.click()
        builtin.fill(SET)
        page.locator("ul[role=listbox] li", has_text=f"({SET})").first.click()
        page.locator("#top-k input[type=number]").fill(str(TOP_K))
        page.locator("#top-k input[type=number]").press("Enter")
        page.locator("#query textarea, #query input").first.fill(query)
        # fp32: the page and the command line batch pairs differently, and only fp32 holds FP32_ATOL across batchings
        # on every CPU (under "auto", bf16 on AVX-512 BF16 / AMX, a near-tie could swap a rank).
        page.locator("#precision label", has_text="exact fp32").click()
        page.locator("#run-compare").click()
        # This comparison's board: top-3 re-ranked rows (the landing board shows the example's top-5).
        page.wait_for_function(
            "k => document.querySelectorAll('#board .board-column[data-role=rerank] li.hit').length === k",
            arg=TOP_K, timeout=180_000)
        shown = page.locator("#board li.hit").evaluate_all("rows => rows.map(r => r.dataset.docId)")
        assert doc_id not in shown  # the first stage missed it: no column shows it

        page.locator("#why-panel button, #why-panel .label-wrap").first.click()
        # A click on a row of a list picks that document.
        row = page.locator("#board .board-column[data-role=first] li.hit").nth(1)
        row_id = row.get_attribute("data-doc-id")
        row.click()
        page.wait_for_function("id => (document.querySelector('#why-status') || {}).innerText?.includes(`[${id}]`)",
                               arg=row_id, timeout=60_000)
        page.locator("#why-find textarea, #why-find input").first.fill(words)
        page.locator("#why-find-go").click()
        page.wait_for_function("() => (document.querySelector('#why-status') || {}).innerText?.includes('found')",
                               timeout=60_000)
        page.locator("#why-pick input").click()
        page.locator("ul[role=listbox] li", has_text=f"[{doc_id}]").first.click()
        page.locator("#why-go").click()
        # The quick answer comes first; the full one adds what top-k at its first-stage rank would give.
        page.wait_for_function("id => { const d = document.querySelector('#why-html .why-doc');"
                               " return d && d.dataset.docId === id && d.querySelector('.would-rank'); }",
                               arg=doc_id, timeout=180_000)
        verdict = page.locator("#why-html .why-verdict").first
        assert verdict.get_attribute("data-lost-at") == "first stage"
        text = verdict.inner_text()
        assert "the first stage lost it" in text and f"top-k {TOP_K}" in text
        page.locator("#why-html").screenshot(path=str(SCREENSHOTS / "why-panel.png"))
        page_data = json.loads(page.locator("#why-html .why-data").first.text_content())

    assert page_data["standing"]["doc_id"] == doc_id
    _assert_same(page_data, _cli_json(query, doc_id))


def test_the_why_endpoint_answers_as_the_command_line(app_url):
    from gradio_client import Client

    query, doc_id, _ = _missed_document()
    client = Client(app_url, verbose=False)
    _, data = client.predict(doc_id=doc_id, versus=None, view="first", query=query, corpus_source="Built-in",
                             builtin_corpus=SET, top_k=TOP_K, first_stage="bi", rerankers=["cross"], precision="fp32",
                             api_name="/why")
    _assert_same(data, _cli_json(query, doc_id))


def _assert_same(page, cli, where="why"):
    """Equal, numbers within FP32_ATOL (engine_bounds: fp32 scores of one pair batched differently; the page's
    comparison and the CLI batch pairs differently)."""
    if isinstance(page, dict):
        assert page.keys() == cli.keys(), where
        for key in page:
            _assert_same(page[key], cli[key], f"{where}.{key}")
    elif isinstance(page, list):
        assert len(page) == len(cli), where
        for i, (a, b) in enumerate(zip(page, cli)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(page, float) and isinstance(cli, float):
        assert abs(page - cli) <= FP32_ATOL * max(1.0, abs(cli)), (where, page, cli)
    else:
        assert page == cli, (where, page, cli)
