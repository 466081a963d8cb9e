"""Snapshots: every query's rankings as the page's pipeline gives them, and current vs. several snapshots."""

from __future__ import annotations

import math

import pytest

from explorer.data.corpus import corpus_from_text
from explorer.pipeline.compare import compare
from explorer.pipeline.results import Stage
from explorer.pipeline.snapshots import column_names, compare_snapshots, rank_moves, snapshot_rankings
from explorer.store.cases import Case, Judgment, Snapshot

from cli_support import SNAKE_CORPUS

QUERIES = ["python snake", "programming language", "comedy group"]


def test_one_snapshot_column_per_stage_as_compare_ranks():
    corpus = corpus_from_text("\n".join(SNAKE_CORPUS))
    settings = {"first_stage": "bm25", "rerankers": ["cross"], "top_k": 4, "precision": "fp32"}
    snapshot = snapshot_rankings(corpus, QUERIES, settings, name="baseline")
    assert snapshot.name == "baseline" and list(snapshot.rankings) == QUERIES
    for query in QUERIES:
        result = compare(query, corpus, top_k=4, first_stage="bm25", rerankers=["cross"], precision="fp32")
        assert list(snapshot.rankings[query]) == [stage.name for stage in result.stages]
        for stage in result.stages:
            assert snapshot.rankings[query][stage.name] == [hit.id for hit in stage.ranking]
            assert snapshot.scores[query][stage.name] == pytest.approx([hit.score for hit in stage.ranking])


def stage(name, runs_on="fp32 on cpu"):
    return Stage(name=name, kind="cross", model="m", score_name="logit", runs_on=runs_on, ms=0.0, ranking=[])


def test_column_names_tell_equal_stages_apart():
    names = column_names([stage("BM25"), stage("MiniLM", "fp32 on cpu"), stage("MiniLM", "bf16 on cpu"),
                          stage("MiniLM", "bf16 on cpu")])
    assert names[0] == "BM25" and names[1] == "MiniLM [fp32 on cpu]"
    assert len(set(names)) == 4


def test_rank_moves_by_hand():
    moves = rank_moves(["a", "b", "c", "d"], ["c", "a", "e", "b"])
    by_id = {row["id"]: row for row in moves}
    assert by_id["c"]["move"] == 2 and by_id["a"]["move"] == -1 and by_id["b"]["move"] == -2
    assert by_id["e"]["rank_before"] is None and by_id["e"]["move"] is None
    assert by_id["d"]["rank_after"] is None
    assert [row["id"] for row in moves][:2] in (["c", "b"], ["b", "c"])


def snap(name, by_query):
    return Snapshot(name, "", {q: {"BM25": r[0], "Cross": r[1]} for q, r in by_query.items()},
                    {q: {"BM25": [0.0] * len(r[0]), "Cross": [0.0] * len(r[1])} for q, r in by_query.items()})


def test_current_against_two_snapshots_on_three_queries():
    judgments = {"q1": {"a": 3, "b": 0}, "q2": {"x": 1}, "q3": {}}
    case = Case("c", "lesson", {}, {}, ["q1", "q2", "q3"],
                {q: {d: Judgment(q, d, g, "") for d, g in grades.items()} for q, grades in judgments.items() if grades}, [])
    current = snap("current", {"q1": (["b", "a"], ["a", "b"]), "q2": (["y", "x"], ["x", "y"]), "q3": (["z"], ["z"])})
    old = snap("old", {"q1": (["b", "a"], ["b", "u", "a"]), "q2": (["x"], ["y", "x"])})
    older = snap("older", {"q1": (["a"], ["u", "v"])})
    rows = compare_snapshots(case, current, [old, older])
    assert [row["query"] for row in rows] == ["q1", "q2", "q3"]
    q1 = rows[0]
    assert q1["current"]["nDCG@10"] == pytest.approx(1.0) and q1["judged"] == 2
    first, second = q1["snapshots"]
    # old, column Cross: b u a -> a at rank 3 (u unjudged); condensed b a -> a at rank 2.
    assert first["measures"]["nDCG@10"] == pytest.approx(3 / math.log2(4) / 3)
    assert first["measures"]["nDCG@10 condensed"] == pytest.approx(3 / math.log2(3) / 3)
    assert first["measures"]["RR@10"] == pytest.approx(1 / 3)
    assert first["change"]["nDCG@10"] == pytest.approx(1.0 - 0.5)
    assert {m["id"]: m["move"] for m in first["moves"]} == {"a": 2, "b": -1, "u": None}
    # older: u v, neither judged: every plain measure 0, condensed list empty.
    assert second["measures"]["nDCG@10"] == 0.0 and second["measures"]["nDCG@10 condensed"] == 0.0
    assert second["change"]["RR@10"] == pytest.approx(1.0)
    # q2: older has no ranking for it; q3: nothing judged, so every measure is None.
    assert rows[1]["snapshots"][1] == {"name": "older", "measures": None, "change": None, "moves": []}
    assert rows[1]["snapshots"][0]["measures"]["RR@10"] == pytest.approx(1 / 2)
    assert all(value is None for value in rows[2]["current"].values())
    assert rows[2]["snapshots"][0]["measures"] is None
    # A named column instead of the last.
    by_bm25 = compare_snapshots(case, current, [old], column="BM25")
    assert by_bm25[0]["snapshots"][0]["change"]["nDCG@10"] == pytest.approx(0.0)
