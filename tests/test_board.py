"""The board (views/board.py) and the workbench's plain data (views/workbench.py), checked against the
comparison they draw, ir_measures and hand counts."""

from __future__ import annotations

import json
import re
from html import unescape

import ir_measures
import pytest
from board_support import columns
from ir_measures import RR, P, nDCG

from explorer.data.corpus import corpus_from_text
from explorer.data.teaching_examples import PYTHON_SNAKE
from explorer.errors import ExplorerError
from explorer.pipeline.compare import compare
from explorer.views.board import board_html, board_texts, column_rankings
from explorer.views.workbench import judged_queries, parse_grade, with_grade

HOSTILE = "<img src=x onerror=alert(1)>"
GRADES = {"2": 3, "9": 2, "4": 0, "7": 1}


@pytest.fixture(scope="module")
def result():
    corpus = corpus_from_text(PYTHON_SNAKE)
    return compare("python snake", corpus, top_k=5, first_stage="hybrid", rerankers=["late", "cross"], score_all=True,
                   precision="fp32"), corpus


def _ids(fragment: str) -> list[str]:
    return [unescape(i) for i in re.findall(r"data-doc-id='([^']*)'", fragment)]


def _shown(fragment: str) -> dict[str, float]:
    return {unescape(label): float(value) for label, value in
            re.findall(r"<td class='measure' data-measure='([^']*)'>([0-9.]+)</td>", fragment)}


def test_one_column_per_ranking_in_the_pipelines_order(result):
    comparison, corpus = result
    drawn = columns(board_html(comparison, board_texts(comparison, corpus)))
    # A hybrid's two parts, the hybrid, late interaction, the cross-encoder, the cross-encoder over the whole corpus.
    assert [role for role, _ in drawn] == ["part", "part", "first", "rerank", "rerank", "full"]
    expected = [[hit.id for hit in stage.ranking] for _, stage in comparison.labelled_columns()]
    expected.append([hit.id for hit in comparison.reranked_full[:5]])
    assert [_ids(html) for _, html in drawn] == expected == list(column_rankings(comparison).values())
    # Every row shows its document's text (the parts rank documents outside the hybrid's top-k too).
    texts = corpus.by_id()
    for _, html in drawn:
        for doc_id in _ids(html):
            assert texts[doc_id].text.replace("'", "&#39;") in html


def test_each_columns_measures_equal_ir_measures_plain_and_condensed(result):
    comparison, corpus = result
    drawn = columns(board_html(comparison, board_texts(comparison, corpus), GRADES))
    qrels = [ir_measures.Qrel("q", doc, grade) for doc, grade in GRADES.items()]
    measures = [nDCG @ 10, P(rel=1) @ 10, RR(rel=1) @ 10]
    for (role, html), ranking in zip(drawn, column_rankings(comparison).values()):
        run = [ir_measures.ScoredDoc("q", doc, float(-rank)) for rank, doc in enumerate(ranking)]
        condensed = [ir_measures.ScoredDoc("q", doc, float(-rank)) for rank, doc in enumerate(
            [d for d in ranking if d in GRADES])]
        plain, cut = (ir_measures.calc_aggregate(measures, qrels, r) for r in (run, condensed))
        shown = _shown(html)
        for label, measure in zip(("nDCG@10", "P@10", "RR@10"), measures):
            assert shown[label] == pytest.approx(plain[measure], abs=5e-4), (role, label)
            assert shown[f"{label} condensed"] == pytest.approx(cut[measure], abs=5e-4), (role, label)
        holes = sum(doc not in GRADES for doc in ranking)  # a hand count of the unjudged shown
        assert f"data-unjudged='{holes}'" in html
        assert len(re.findall(r"<li class='hit[^']*\bunjudged\b", html)) == holes


def test_the_ideal_column_lists_the_judged_by_grade_and_nothing_judged_draws_no_measures(result):
    comparison, corpus = result
    drawn = dict(columns(board_html(comparison, board_texts(comparison, corpus), GRADES,
                                    {"2": f"snake {HOSTILE}"})))
    assert _ids(drawn["ideal"]) == ["2", "9", "7", "4"]  # grades 3, 2, 1, 0
    assert HOSTILE not in drawn["ideal"] and "snake &lt;img src=x onerror=alert(1)&gt;" in drawn["ideal"]
    bare = board_html(comparison, board_texts(comparison, corpus))
    assert "data-role='ideal'" not in bare and "class='measure'" not in bare and "data-grade='" not in bare
    assert "grade-button" in bare and "grade-button" not in board_html(comparison, editable=False)


def test_a_grade_from_the_page_is_checked_like_any_input():
    shown = {"1", "2", HOSTILE}
    payload = json.dumps({"doc_id": HOSTILE, "grade": 2, "reason": " why ", "n": 4})
    assert parse_grade(payload, shown) == (HOSTILE, 2, "why")
    for bad in ("not json", json.dumps({"doc_id": "3", "grade": 1}), json.dumps({"doc_id": "1", "grade": 4}),
                json.dumps({"doc_id": "1", "grade": "2"}), json.dumps({"grade": 1})):
        with pytest.raises(ExplorerError):
            parse_grade(bad, shown)
    judged = with_grade(None, "q", "1", 2, "")
    assert with_grade(judged, "q", "1", None, "") == {"q": {}} and judged == {"q": {"1": {"grade": 2, "reason": ""}}}


def test_a_query_counts_as_judged_when_every_column_is_fully_graded():
    rankings = {"a": {"first": ["1", "2"], "cross": ["2", "3"]}, "b": {"first": ["1"]}}
    judgments = {"a": {d: {"grade": 1, "reason": ""} for d in ("1", "2")}, "b": {"1": {"grade": 0, "reason": ""}},
                 "c": {"1": {"grade": 3, "reason": ""}}}
    # a misses 3 in its second column; b is complete; c was never compared here.
    assert judged_queries(["a", "b", "c"], judgments, rankings) == ["b"]
