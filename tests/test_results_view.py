"""What the Compare tab draws, checked against the `Comparison` it was drawn from."""

from __future__ import annotations

import csv
import json
import re
from html import unescape

import pytest

from explorer.pipeline.compare import compare
from explorer.data.corpus import corpus_from_text
from explorer.views.export import write_downloads
from explorer.pipeline.costs import projection_rows, unit_costs
from explorer.views.comparison_plots import format_duration, scatter_figure, slope_figure, timings_figure
from board_support import first_column as bi_encoder_list, shown_column as cross_encoder_list

from explorer.views.results_html import summary_html

HOSTILE = "<img src=x onerror=alert(1)> cats & <b>dogs</b> ${7*7} %{x}"
DOCUMENTS = [
    "Cats purr when they are content, and sometimes when they are stressed.",
    HOSTILE,
    "Dogs wag their tails to show excitement.",
    "The domestic cat is a small carnivorous mammal.",
    "Purring is produced by the muscles of a cat's larynx.",
    "Lions roar but cannot purr.",
]


@pytest.fixture(scope="module")
def result():
    return compare("why do cats purr?", corpus_from_text("\n".join(DOCUMENTS)), top_k=3, score_all=True, precision="fp32")


def _row_ids(fragment: str) -> list[str]:
    return [unescape(i) for i in re.findall(r"data-doc-id='([^']*)'", fragment)]


def test_lists_show_each_model_order_and_escape_user_text(result):
    bi, cross = bi_encoder_list(result), cross_encoder_list(result)
    assert _row_ids(bi) == [hit.id for hit in result.first_stage]
    assert _row_ids(cross) == [hit.id for hit in result.reranked_full[:3]]
    for fragment in (bi, cross, summary_html(result)):
        assert "<img" not in fragment and "<b>dogs" not in fragment
    everything = compare("why do cats purr?", corpus_from_text("\n".join(DOCUMENTS)), top_k=len(DOCUMENTS))
    for fragment in (bi_encoder_list(everything), cross_encoder_list(everything)):
        assert "<img" not in fragment
        assert "&lt;img src=x onerror=alert(1)&gt; cats &amp; &lt;b&gt;dogs&lt;/b&gt; ${7*7} %{x}" in fragment


def test_move_badges_match_rank_moves(result):
    cross = cross_encoder_list(result)
    shown = result.reranked_full[:3]
    assert cross.count("move-new'") == sum(not h.in_candidates for h in shown)
    assert cross.count("move-up'") == sum(h.in_candidates and h.move > 0 for h in shown)
    for hit in shown:
        if hit.in_candidates and hit.move > 0:
            assert f"▲ up {hit.move}<" in cross


def test_figures_carry_the_comparison_numbers_and_escaped_hover_text(result):
    scatter = scatter_figure(result)
    points = {(round(x, 6), round(y, 6)) for trace in scatter.data for x, y in zip(trace.x, trace.y)}
    assert points == {(round(h.first_score, 6), round(h.score, 6)) for h in result.reranked_full}
    hover = json.dumps([trace.customdata for trace in scatter.data], default=str)
    assert "<img" not in hover and "&lt;img" in hover
    slope = slope_figure(result)
    assert all("%{x}" not in str(trace.hovertemplate) for trace in slope.data)
    timings = timings_figure(result)
    assert list(timings.data[0].x) == [result.timings_ms[name] for name in result.timings_ms if name != "total"]
    full_rate = len(DOCUMENTS) / (result.timings_ms["rerank_full_corpus"] / 1000)
    assert f"{full_rate:,.0f} pairs/s" in timings.data[0].text[-1]


def test_cost_projection_scales_with_measured_unit_costs(result):
    costs = unit_costs(result)
    assert costs.pair_ms == pytest.approx(result.timings_ms["rerank_full_corpus"] / len(DOCUMENTS))
    rows = {task: (work, seconds) for task, work, seconds in projection_rows(costs, 10_000)}
    work, seconds = rows["Cluster N sentences: cross-encoder on every pair"]
    assert work == "49,995,000 pairs" and seconds == pytest.approx(49_995_000 * costs.pair_ms / 1000)
    assert format_duration(90) == "1.5 min" and format_duration(0.0123) == "12.3 ms"


def test_downloads_hold_every_ranked_document(result, tmp_path):
    csv_path, json_path = write_downloads(result)
    with open(csv_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["doc_id"] for row in rows} == {h.id for h in result.reranked_full}
    by_id = {row["doc_id"]: row for row in rows}
    for hit in result.reranked_full:
        assert int(by_id[hit.id]["cross_rank"]) == hit.rank and int(by_id[hit.id]["rank_move"]) == hit.move
        assert by_id[hit.id]["text"] == hit.text
    assert json.loads(open(json_path, encoding="utf-8").read()) == json.loads(json.dumps(result.to_dict()))
