"""The Inspect tab in a real browser: a long document's cut is marked where the tokenizer cuts,
the heatmap arrives before occlusion, and passage-level scoring shows the best window."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser_support import browser_page, inspect_pair

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
QUERY = "capital of France"
FILLER = ("The committee met on Tuesday to discuss the annual budget, the parking arrangements and "
          "the Eyjafjallajokull excursion of the summer festival, without reaching any decision. ")
LONG_DOC = FILLER * 20 + "Paris is the capital of France and its largest city. " + FILLER * 6


def test_long_document_cut_mark_and_best_window_in_the_page(app_url, cross_model):
    from explorer.interpret.passages import passage_scores, truncation_point
    from explorer.rankers.cross_encoder import CrossEncoder

    scorer = CrossEncoder(cross_model, "fp32")
    cut = truncation_point(scorer, QUERY, LONG_DOC)
    with browser_page(offline=True, viewport=(1440, 1000)) as page:
        inspect_pair(page, app_url, QUERY, LONG_DOC)
        page.get_by_role("tab", name="What moved the score").click()
        page.locator("#inspect-attribution .cut-mark").wait_for(state="visible", timeout=600_000)
        mark = page.locator("#inspect-attribution .cut-mark")
        shown_cut = int(mark.get_attribute("data-cut-char"))
        unread = page.locator("#inspect-attribution .unread").text_content()
        page.get_by_role("tab", name="Long document").click()
        page.locator("#inspect-passages-run").click()
        page.locator("#inspect-passages .passages").wait_for(state="visible", timeout=600_000)
        best_score = float(page.locator("#inspect-passages .passages").get_attribute("data-best-score"))
        highlighted = page.locator("#inspect-passages mark.best-window").all_text_contents()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "inspect-long-document.png"), full_page=True)
    assert shown_cut == cut
    assert unread == LONG_DOC[cut:]
    result = passage_scores(scorer, QUERY, LONG_DOC)
    best = result.windows[result.best]
    alone = float(scorer.score_query(QUERY, [LONG_DOC[best.start:best.end]]).logits[0])
    assert best_score == pytest.approx(alone, abs=1e-3)
    assert "".join(highlighted) == LONG_DOC[best.start:best.end]
