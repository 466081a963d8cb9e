"""The Inspect tab's head importance in a real browser: for the seed's "python snake" pair the
page's layers x heads grid and its top-heads list are the numbers `head_importance` computes, and
patching the snake passage (A) into the programming-language one (B) shows `head_patching`'s."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from browser_support import browser_page, inspect_pair

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
QUERY = "python snake"


def _seed_documents() -> tuple[str, str]:
    """The snake sense of "python" (line 2 of the app's first teaching example) and the language (line 1)."""
    from explorer.data.teaching_examples import EXAMPLES

    query, corpus, _ = EXAMPLES[0]
    assert query == QUERY
    return corpus.splitlines()[1], corpus.splitlines()[0]


def _plot_z(page, elem_id: str) -> list:
    return page.evaluate(f"() => document.querySelector('#{elem_id} .js-plotly-plot').data[0].z")


def test_head_grid_and_top_heads_in_the_page(app_url, cross_model):
    from explorer.interpret.heads import head_importance, head_patching
    from explorer.interpret.pair import encode_pair
    from explorer.rankers.cross_encoder import CrossEncoder

    document, versus = _seed_documents()
    scorer = CrossEncoder(cross_model, "fp32")
    expected = head_importance(scorer, encode_pair(scorer, QUERY, document), "zero")
    patched = head_patching(scorer, encode_pair(scorer, QUERY, document), encode_pair(scorer, QUERY, versus))
    with browser_page(offline=True, viewport=(1440, 1100)) as page:
        inspect_pair(page, app_url, QUERY, document)
        page.get_by_text("sigmoid(logit)").first.wait_for(state="visible", timeout=600_000)
        page.get_by_role("tab", name="Head importance").click()
        page.locator("#heads-run").click()
        page.locator("#heads-summary ol.top-heads li").first.wait_for(state="visible", timeout=600_000)
        page.locator("#heads-grid .js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        page.locator("#heads-attention-grid .js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        items = page.locator("#heads-summary ol.top-heads li")
        top = [(int(items.nth(i).get_attribute("data-layer")), int(items.nth(i).get_attribute("data-head")),
                float(items.nth(i).get_attribute("data-change"))) for i in range(items.count())]
        texts = items.all_text_contents()
        grid = _plot_z(page, "heads-grid")
        attention = _plot_z(page, "heads-attention-grid")
        shown_logit = float(page.locator("#heads-summary .head-importance").get_attribute("data-logit"))
        page.locator("#heads-versus textarea").fill(versus)
        page.locator("#heads-patch-run").click()
        patch_items = page.locator("#heads-patch-summary ol.top-patched-heads li")
        patch_items.first.wait_for(state="visible", timeout=600_000)
        patch_top = [(int(patch_items.nth(i).get_attribute("data-layer")), int(patch_items.nth(i).get_attribute("data-head")))
                     for i in range(patch_items.count())]
        shown_gap = float(page.locator("#heads-patch-summary .head-patching").get_attribute("data-gap"))
        page.locator("#heads-patch-grid .js-plotly-plot .main-svg").first.wait_for(timeout=60_000)
        patch_grid = _plot_z(page, "heads-patch-grid")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "inspect-head-importance.png"), full_page=True)
    assert shown_logit == pytest.approx(expected.logit, abs=1e-4)
    np.testing.assert_allclose(np.array(grid), np.array(expected.heads), atol=1e-4)
    assert np.array(attention).shape == (12, 12)
    wanted = expected.top_heads(5)
    assert [(layer, head) for layer, head, _ in top] == [(t["layer"], t["head"]) for t in wanted]
    np.testing.assert_allclose([change for _, _, change in top], [t["change"] for t in wanted], atol=1e-4)
    assert shown_gap == pytest.approx(patched.gap, abs=1e-4)
    assert patch_top == [(t["layer"], t["head"]) for t in patched.top_heads(5)]
    np.testing.assert_allclose(np.array(patch_grid), np.array(patched.heads), atol=1e-4)
    layer, head, change = top[0]
    assert texts[0].startswith(f"layer {layer}, head {head}: {change:+.3f} logit")
