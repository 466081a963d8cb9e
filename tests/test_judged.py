"""The workbench's measures over judgments so far: hand-worked values, then ir_measures on written files."""

from __future__ import annotations

import math
import random

import ir_measures
import pytest
from ir_measures import RR, P, nDCG

from explorer.pipeline.judged import ideal_order, judged_measures


def test_hand_worked_case():
    # a=3 at rank 1, c=2 at rank 4; b judged 0; x and y unjudged; d=1 judged but not ranked.
    grades = {"a": 3, "b": 0, "c": 2, "d": 1}
    result = judged_measures(["a", "x", "b", "c", "y"], grades)
    ideal = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert result.ndcg == pytest.approx((3 + 2 / math.log2(5)) / ideal)
    assert result.precision == pytest.approx(2 / 10)
    assert result.rr == pytest.approx(1.0)
    # Condensed: a, b, c.
    assert result.ndcg_condensed == pytest.approx((3 + 2 / math.log2(4)) / ideal)
    assert result.precision_condensed == pytest.approx(2 / 10)
    assert result.unjudged == ["x", "y"]
    assert result.judged == 3


def test_condensed_reciprocal_rank_moves_up():
    grades = {"b": 0, "c": 1}
    result = judged_measures(["x", "b", "y", "c"], grades)
    assert result.rr == pytest.approx(1 / 4)
    assert result.rr_condensed == pytest.approx(1 / 2)
    assert result.ndcg == pytest.approx(1 / math.log2(5))
    assert result.ndcg_condensed == pytest.approx(1 / math.log2(3))
    labels = dict(result.labels())
    assert labels["RR@10 condensed"] == result.rr_condensed and labels["nDCG@10"] == result.ndcg


def test_cutoff_counts_only_the_top_k():
    grades = {"r": 2}
    result = judged_measures(["u1", "u2", "u3", "r"], grades, k=3)
    assert (result.ndcg, result.precision, result.rr) == (0.0, 0.0, 0.0)
    assert result.unjudged == ["u1", "u2", "u3"]
    assert result.ndcg_condensed == pytest.approx(1.0) and result.precision_condensed == pytest.approx(1 / 3)


def test_no_judgment_gives_none_and_every_id_unjudged():
    result = judged_measures(["a", "b"], {})
    assert all(value is None for _, value in result.labels())
    assert result.unjudged == ["a", "b"] and result.judged == 0


def test_ideal_order_by_grade_then_id():
    assert ideal_order({"b": 1, "a": 1, "z": 3, "m": 0}) == [("z", 3), ("a", 1), ("b", 1), ("m", 0)]


def test_against_ir_measures_on_written_files(tmp_path):
    """Random rankings with holes: each value equals ir_measures reading TREC qrels and run files; the condensed
    nDCG and P equal trec_eval's judged-only variants (-J), the condensed RR a hand count."""
    rng = random.Random(24)
    for case in range(30):
        docs = [f"d{i}" for i in range(25)]
        ranking = rng.sample(docs, rng.randint(1, 15))
        grades = {doc: rng.randint(0, 3) for doc in rng.sample(docs, rng.randint(1, 12))}
        qrels_path, run_path = tmp_path / f"qrels{case}.txt", tmp_path / f"run{case}.txt"
        qrels_path.write_text("".join(f"q 0 {doc} {grade}\n" for doc, grade in grades.items()))
        run_path.write_text("".join(f"q Q0 {doc} {rank} {100 - rank} tag\n" for rank, doc in enumerate(ranking, 1)))
        measures = [nDCG @ 10, P @ 10, RR @ 10, nDCG(judged_only=True) @ 10, P(judged_only=True) @ 10]
        expected = ir_measures.calc_aggregate(
            measures, list(ir_measures.read_trec_qrels(str(qrels_path))), list(ir_measures.read_trec_run(str(run_path))))
        result = judged_measures(ranking, grades)
        assert result.ndcg == pytest.approx(expected[nDCG @ 10])
        assert result.precision == pytest.approx(expected[P @ 10])
        assert result.rr == pytest.approx(expected[RR @ 10])
        assert result.ndcg_condensed == pytest.approx(expected[nDCG(judged_only=True) @ 10])
        assert result.precision_condensed == pytest.approx(expected[P(judged_only=True) @ 10])
        condensed = [doc for doc in ranking if doc in grades][:10]
        first = next((place for place, doc in enumerate(condensed, 1) if grades[doc] >= 1), None)
        assert result.rr_condensed == pytest.approx(1 / first if first else 0.0)
        assert result.unjudged == [doc for doc in ranking[:10] if doc not in grades]
