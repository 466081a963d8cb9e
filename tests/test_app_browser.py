"""The Compare tab in Debian's Chromium (Playwright), against `python app.py` on loopback.

The page is driven like a person would; the order of both lists on screen must equal
`compare()` run here on the same input. Requests leaving loopback are refused, so the
page must work offline. Time to each result is printed (no timed assertions).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser_support import browser_page, open_app

from explorer.pipeline.compare import compare
from explorer.data.corpus import corpus_from_text
from explorer.data.teaching_examples import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
QUERY, CORPUS, TOP_K = EXAMPLES[0]  # "python snake": ten documents, two senses
SECOND_QUERY = "python programming language"


# The board's columns: the first stage's, and the (one) re-ranker's.
COLUMNS = {"bi-list": "#board .board-column[data-role=first]", "cross-list": "#board .board-column[data-role=rerank]"}


def _shown_ids(page, list_id: str) -> list[str]:
    return page.locator(f"{COLUMNS[list_id]} li.hit").evaluate_all("rows => rows.map(r => r.dataset.docId)")


def _run_and_wait(page, query: str, expect_cached: bool) -> float:
    """Type the query, click Compare, and return seconds until both lists show this query's result."""
    page.locator("#query textarea, #query input").first.fill(query)
    # Mark what is shown now: the wait below is for a board and a summary drawn after the click.
    page.evaluate("() => document.querySelectorAll('#board .board-column, #summary .summary')"
                  ".forEach(e => e.classList.add('before-click'))")
    start = time.perf_counter()
    page.locator("#run-compare").click()
    state = "corpus embeddings cached" if expect_cached else "corpus encoded now"
    page.wait_for_function(
        "([state, k]) => { const s = document.querySelector('#summary');"
        " return s && s.innerText.includes(state) && !document.querySelector('.before-click')"
        " && document.querySelectorAll('#board .board-column[data-role=rerank] li.hit').length === k; }",
        arg=[state, TOP_K],
        timeout=180_000,
    )
    return time.perf_counter() - start


def test_compare_tab_shows_both_rankings_and_plots(app_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page(offline=True, viewport=(1440, 900)) as page:
        open_app(page, app_url)
        page.locator("#corpus-text textarea").fill(CORPUS)
        page.locator("#top-k input[type=number]").fill(str(TOP_K))
        page.locator("#top-k input[type=number]").press("Enter")
        # The landing page compared this corpus already (its example), so its embeddings are cached.
        first_s = _run_and_wait(page, QUERY, expect_cached=True)
        first_bi, first_cross = _shown_ids(page, "bi-list"), _shown_ids(page, "cross-list")

        # Both plots rendered by plotly.js: the timing bars and one scatter point per scored pair.
        page.locator("#timing-plot .js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        assert page.locator("#timing-plot .barlayer .point").count() >= 5  # load, encode, query, search, rerank
        page.get_by_role("tab", name="Plots").click()
        page.locator("#scatter-plot .js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        assert page.locator("#scatter-plot .scatterlayer .point").count() == TOP_K
        page.screenshot(path=str(SCREENSHOTS / "compare.png"), full_page=True)

        second_s = _run_and_wait(page, SECOND_QUERY, expect_cached=True)
        second_bi, second_cross = _shown_ids(page, "bi-list"), _shown_ids(page, "cross-list")
        moved_up = page.locator(f"{COLUMNS['cross-list']} li.moved-up .move-up").count()
        page.screenshot(path=str(SCREENSHOTS / "compare-second.png"), full_page=False)

        # "Inspect this pair" hands the query and the picked (top) document to the Inspect tab.
        page.get_by_role("button", name="Inspect this pair →").click()
        inspect_query = page.locator("#inspect-query textarea, #inspect-query input").first
        inspect_query.wait_for(state="visible", timeout=60_000)
        page.wait_for_function(
            "q => { const e = document.querySelector('#inspect-query textarea, #inspect-query input');"
            " return e && e.value === q; }",
            arg=SECOND_QUERY,
            timeout=60_000,
        )
        inspected_document = page.locator("#inspect-document textarea").input_value()
        # The prefilled pair runs the whole Inspect chain, bertviz views included (they stayed empty once).
        page.get_by_role("tab", name="bertviz").click()
        page.locator("iframe.bertviz-frame").first.wait_for(state="attached", timeout=180_000)
        bertviz_frames = page.locator("iframe.bertviz-frame").count()
        page.screenshot(path=str(SCREENSHOTS / "inspect-from-compare.png"), full_page=True)
    print(f"\nfirst comparison after page ready: {first_s:.2f} s; second on the same corpus (cached): {second_s:.2f} s")

    corpus = corpus_from_text(CORPUS)
    for query, bi_ids, cross_ids in ((QUERY, first_bi, first_cross), (SECOND_QUERY, second_bi, second_cross)):
        reference = compare(query, corpus, top_k=TOP_K)
        assert bi_ids == [hit.id for hit in reference.first_stage]
        assert cross_ids == [hit.id for hit in reference.reranked]
    assert inspected_document == corpus.by_id()[second_cross[0]].text
    assert bertviz_frames == 2  # head view and model view
    # The page marks as "moved up" exactly the documents the cross-encoder promoted.
    assert moved_up == sum(1 for hit in reference.reranked if hit.move > 0)
    # The snake sense wins the ambiguous query once the cross-encoder reads query and document together.
    assert first_cross[:2] != first_bi[:2] and "2" in first_cross[:2]


def test_teachers_preset_shows_every_stage_in_the_order_the_cli_gives(app_url, tmp_path):
    """BM25 and the bi-encoder alone, their hybrid, late interaction, cross-encoder: one column each,
    each column's order equal to `compare --first-stage hybrid --rerankers late,cross --json`."""
    import io
    import json
    from contextlib import redirect_stdout

    from explorer.cli import main

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page(offline=True, viewport=(1440, 1000)) as page:
        open_app(page, app_url)
        page.locator("#pipeline").click()
        page.locator("#preset-all").click()
        page.locator("#corpus-text textarea").fill(CORPUS)
        page.locator("#top-k input[type=number]").fill(str(TOP_K))
        page.locator("#top-k input[type=number]").press("Enter")
        page.locator("#query textarea, #query input").first.fill(QUERY)
        page.locator("#run-compare").click()
        page.wait_for_function("() => document.querySelectorAll('#board .board-column[data-kind=hybrid]').length === 1"
                               " && document.querySelectorAll('#board .board-column').length === 5", timeout=300_000)
        columns = page.locator("#board .board-column").evaluate_all(
            "cols => cols.map(c => [c.dataset.kind, [...c.querySelectorAll('li.hit')].map(r => r.dataset.docId)])"
        )
        page.screenshot(path=str(SCREENSHOTS / "compare-all-stages.png"), full_page=True)

    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text(CORPUS + "\n")
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["compare", "--query", QUERY, "--corpus", str(corpus_file), "--top-k", str(TOP_K),
                     "--first-stage", "hybrid", "--rerankers", "late,cross", "--json"]) == 0
    data = json.loads(buffer.getvalue())
    # BM25 and the bi-encoder alone (the hybrid's parts), then the hybrid, late interaction, cross-encoder.
    expected = data["first_stage_components"] + data["stages"]
    assert [kind for kind, _ in columns] == [stage["kind"] for stage in expected] == [
        "lexical", "bi", "hybrid", "late", "cross"]
    for (_, shown), stage in zip(columns, expected):
        assert shown == [hit["id"] for hit in stage["ranking"]]


def test_click_two_rows_explains_the_gap_and_an_edit_rescores_as_the_cli_does(app_url):
    """Click two re-ranked rows: the contrast shows both; edit A and rescore: the page's new logit
    equals `explain --doc EDITED --versus B --json`'s score_a (both fp32)."""
    import io
    import json
    from contextlib import redirect_stdout

    from explorer.cli import main

    corpus = corpus_from_text(CORPUS)
    with browser_page(offline=True, viewport=(1440, 1000)) as page:
        open_app(page, app_url)
        page.locator("#corpus-text textarea").fill(CORPUS)
        page.locator("#query textarea, #query input").first.fill(QUERY)
        page.locator("#run-compare").click()
        page.wait_for_function("() => document.querySelectorAll('#board .board-column[data-role=rerank] li.hit').length > 3", timeout=180_000)
        rows = page.locator("#board .board-column[data-role=rerank] li.hit")
        lower, upper = rows.nth(3).get_attribute("data-doc-id"), rows.nth(0).get_attribute("data-doc-id")
        rows.nth(3).locator(".rank").click()  # a click on a re-ranked row picks it (the buttons grade)
        rows.nth(0).locator(".rank").click()
        page.wait_for_function("() => document.querySelectorAll('#contrast-view .contrast-doc').length === 2",
                               timeout=180_000)
        shown = page.locator("#contrast-view .contrast-doc").evaluate_all("docs => docs.map(d => d.dataset.docId)")
        box = page.locator("#contrast-edit textarea")
        original = box.input_value()
        edited = original + " It is a snake."
        box.fill(edited)
        page.locator("#contrast-rescore").click()
        page.wait_for_function("() => document.querySelectorAll('#contrast-edits tr.edit-row').length === 1",
                               timeout=180_000)
        page_score = float(page.locator("#contrast-edits .edit-score").first.inner_text())
        page.screenshot(path=str(SCREENSHOTS / "compare-contrast.png"), full_page=True)
    assert shown == [upper, lower]  # A is the one the cross-encoder put higher
    assert original == corpus.by_id()[upper].text
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["explain", "--query", QUERY, "--doc", edited, "--versus", corpus.by_id()[lower].text, "--json"]) == 0
    assert page_score == pytest.approx(json.loads(buffer.getvalue())["score_a"], abs=1e-3)  # the page shows 3 decimals
