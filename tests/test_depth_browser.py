"""The Evaluate tab's depth panel in Debian's Chromium (Playwright), against `python app.py` on loopback:
the depth chart's plotted points and the threshold panel must equal `eval --depths ... --json` on the
same shipped set (the chart read from plotly's own data on the page, the panel from its text)."""

from __future__ import annotations

import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from browser_support import browser_page

from explorer.cli import main

SHOTS = Path(os.environ.get("EXPLORER_SHOTS", Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"))
SET, PIPELINE, DEPTHS = "numbers_entities", "bi+cross", "2,5,10,20"


@pytest.fixture(scope="module")
def cli_sweep() -> dict:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["eval", "--corpus", f"builtin:{SET}", "--pipelines", PIPELINE, "--depths", DEPTHS, "--json"]) == 0
    return json.loads(buffer.getvalue())


def test_depth_chart_and_threshold_panel_equal_the_cli(app_url, cli_sweep):
    SHOTS.mkdir(parents=True, exist_ok=True)
    with browser_page(offline=True, viewport=(1440, 1000)) as page:
        page.goto(app_url)
        page.get_by_role("tab", name="Evaluate").click()
        page.get_by_role("tab", name="How deep to re-rank, where to cut").click()
        page.locator("#run-depth").wait_for(state="visible", timeout=120_000)
        page.locator("#depth-builtin input").click()
        page.get_by_role("option", name=f"({SET})").click()
        page.locator("#depth-pipelines").get_by_text("hybrid+cross", exact=True).click()  # leave bi+cross alone
        page.locator("#depth-depths textarea, #depth-depths input").first.fill(DEPTHS)
        page.locator("#run-depth").click()
        page.locator("#depth-chart .js-plotly-plot").wait_for(timeout=300_000)
        page.locator("#threshold-chart .js-plotly-plot").wait_for(timeout=60_000)
        traces = page.locator("#depth-chart .js-plotly-plot").evaluate(
            "el => el.data.map(t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}))")
        words = page.locator("#threshold-summary").inner_text()
        f1_trace = page.locator("#threshold-chart .js-plotly-plot").evaluate(
            "el => el.data.filter(t => t.name.endsWith(' f1')).map(t => Array.from(t.y))")
        reliability = page.locator("#reliability-chart .js-plotly-plot").evaluate("el => el.data.map(t => t.name)")
        summary = page.locator("#depth-summary").inner_text()
        page.locator("#depth-chart").screenshot(path=str(SHOTS / "depth-chart.png"))
        page.locator("#threshold-chart").screenshot(path=str(SHOTS / "threshold-chart.png"))
        page.screenshot(path=str(SHOTS / "depth-panel.png"), full_page=True)

    curve = cli_sweep["depth"]["curves"][PIPELINE]
    by_name = {t["name"]: t for t in traces}
    ndcg = by_name[f"{PIPELINE} nDCG@10"]
    assert ndcg["x"] == [p["k"] for p in curve] == [2, 5, 10, 20]
    assert ndcg["y"] == pytest.approx([p["ndcg10"] for p in curve], abs=1e-9)
    assert by_name[f"{PIPELINE} R@k (first stage)"]["y"] == pytest.approx([p["recall_k"] for p in curve], abs=1e-9)
    chosen = cli_sweep["depth"]["chosen"][PIPELINE]["k"]
    assert by_name[f"{PIPELINE} chosen k = {chosen}"]["x"] == [chosen]
    assert f"re-rank the top {chosen}." in summary
    threshold = cli_sweep["thresholds"]["cross"]
    best = threshold["best_f1"]
    assert f"keeping scores ≥ {best['threshold']:.3f} maximises F1 at {best['f1']:.3f}" in words
    assert f"over {threshold['pairs']} pairs" in words
    assert max(f1_trace[0]) == pytest.approx(best["f1"], abs=1e-9)
    ece = threshold["calibration"]["ece"]
    assert f"expected calibration error {ece:.3f}" in words
    assert any(name.endswith(f"sigmoid(logit): ECE {ece:.3f}") for name in reliability)


@pytest.fixture(scope="module")
def cli_pipelines() -> dict:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(["eval", "--corpus", f"builtin:{SET}", "--pipelines", "bm25,bi,bi+cross", "--top-k", "10",
                     "--baseline", "bi", "--json"]) == 0
    return json.loads(buffer.getvalue())


def test_which_moves_paid_beside_the_disagreement_table(app_url, cli_pipelines):
    """The sentence under the disagreement table splits bi+cross's mean nDCG@10 change over bi (trec_eval's,
    from the CLI) over the moves; the clicked query's moves add up to its own change."""
    metrics, per_query = cli_pipelines["metrics"], cli_pipelines["per_query"]
    with browser_page(offline=True, viewport=(1440, 1000)) as page:
        page.goto(app_url)
        page.get_by_role("tab", name="Evaluate").click()
        page.locator("#run-pipelines").wait_for(state="visible", timeout=120_000)
        page.locator("#run-pipelines").click()
        page.locator("#pipe-moves-summary").get_by_text("Which moves paid").wait_for(timeout=300_000)
        sentence = page.locator("#pipe-moves-summary").inner_text()
        header = page.locator("#pipe-disagreements thead, #pipe-disagreements [role=columnheader]").all_inner_texts()
        first = page.locator("#pipe-disagreements .virtual-body [role=row]").first
        query_id = first.locator("[role=gridcell]").first.inner_text().strip()
        first.locator("[role=gridcell]").nth(1).click()
        # The click also opens the query in Compare (the app shell's chain): let that finish (its board carries the
        # query's grade badges; the landing board has none), then come back.
        page.wait_for_function(
            "() => { const rows = document.querySelectorAll('#board .board-column[data-role=rerank] li.hit');"
            " return rows.length > 0 && [...rows].every(r => r.querySelector('.grade')); }",
            timeout=300_000,
        )
        page.get_by_role("tab", name="Evaluate").click()
        page.locator("#moves-panel").wait_for(timeout=120_000)
        panel = page.locator("#moves-panel").inner_text()
        page.locator("#pipe-disagreements").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "moves-panel.png"), full_page=False)
    mean_change = metrics["bi+cross"]["nDCG@10"] - metrics["bi"]["nDCG@10"]
    assert f"mean nDCG@10 change {mean_change:+.4f}" in sentence
    assert any("moves that paid" in h for h in header)
    change = per_query["bi+cross"][query_id]["nDCG@10"] - per_query["bi"][query_id]["nDCG@10"]
    assert f"the contributions below add up to {change:+.4f}" in panel
