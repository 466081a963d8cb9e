"""Evaluation: measures against hand-worked numbers, the run construction, and the CLI contract."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.pipeline.measures import mean_metrics, measure_names, rerank_order, score_rankings

ROOT = Path(__file__).resolve().parent.parent

QRELS = {
    "q1": {"a": 2, "c": 1, "x": 0},
    "q2": {"b": 1},
    "q3": {"z": 2},  # never retrieved
    "q4": {"k": 1},  # retrieved at place 11: outside every cutoff used here
}
RANKINGS = {
    "q1": ["b", "a", "c", "d"],
    "q2": ["b", "a"],
    "q3": ["a", "b", "c"],
    "q4": [f"n{i}" for i in range(10)] + ["k", "n10"],
}


def test_measures_match_hand_worked_numbers():
    per_query = score_rankings(RANKINGS, QRELS, top_k=2)
    # q1: grades 0, 2, 1 at places 1, 2, 3; the ideal order is 2, 1. Gain = grade (trec_eval).
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert per_query["q1"]["nDCG@10"] == pytest.approx(dcg / ideal, abs=1e-9)
    assert per_query["q1"]["nDCG@10"] == pytest.approx(0.669672, abs=1e-6)
    assert per_query["q1"]["RR@10"] == pytest.approx(1 / 2)
    assert per_query["q1"]["R@2"] == pytest.approx(1 / 2)  # a is in the top 2, c is not
    assert per_query["q2"] == pytest.approx({"nDCG@10": 1.0, "RR@10": 1.0, "R@2": 1.0})
    assert per_query["q3"] == pytest.approx({"nDCG@10": 0.0, "RR@10": 0.0, "R@2": 0.0})
    # Plain reciprocal rank would be 1/11 here: the cutoff at ten must apply.
    assert per_query["q4"] == pytest.approx({"nDCG@10": 0.0, "RR@10": 0.0, "R@2": 0.0})
    means = mean_metrics(per_query, measure_names(2))
    assert means["nDCG@10"] == pytest.approx((dcg / ideal + 1.0) / 4)
    assert means["RR@10"] == pytest.approx((0.5 + 1.0) / 4)
    assert means["R@2"] == pytest.approx((0.5 + 1.0) / 4)


def test_recall_at_larger_cutoff_and_order_matters():
    deeper = score_rankings(RANKINGS, QRELS, top_k=12)
    assert deeper["q1"]["R@12"] == 1.0 and deeper["q4"]["R@12"] == 1.0
    swapped = score_rankings({"q1": ["a", "c", "b"]}, QRELS, top_k=2)
    assert swapped["q1"]["nDCG@10"] == pytest.approx(1.0)


def test_rerank_order_reorders_only_the_top_k():
    bi_order = [5, 3, 9, 1, 7]
    assert rerank_order(bi_order, [0.1, 2.0, -1.0], top_k=3) == [3, 5, 9, 1, 7]
    # Ties keep the bi-encoder's order.
    assert rerank_order(bi_order, [1.0, 1.0, 1.0], top_k=3) == bi_order


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "explorer", "eval", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def cli_report():
    folder = ROOT / "corpora" / "topic_vs_answer"
    result = _run_cli(
        "--corpus", str(folder / "corpus.jsonl"), "--queries", str(folder / "queries.jsonl"),
        "--qrels", str(folder / "qrels.jsonl"), "--top-k", "3", "--json",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cli_json_contract(cli_report):
    names = ["nDCG@10", "RR@10", "R@3"]
    assert set(cli_report["metrics"]) == {"bi_encoder", "rerank", "cross_encoder_full"}
    for stage, values in cli_report["metrics"].items():
        assert set(names) <= set(values), stage
        assert all(0.0 <= v <= 1.0 for v in values.values())
    rows = cli_report["per_query"]
    queries = [json.loads(line)["id"] for line in (ROOT / "corpora/topic_vs_answer/queries.jsonl").open()]
    assert [row["query_id"] for row in rows] == queries
    for stage in ("bi_encoder", "rerank", "cross_encoder_full"):
        for name in names:
            mean = np.mean([row[stage][name] for row in rows])
            assert cli_report["metrics"][stage][name] == pytest.approx(mean)
    for row in rows:
        # Re-ranking permutes the top-k only, so recall at k cannot change.
        assert row["rerank"]["R@3"] == row["bi_encoder"]["R@3"]
        assert row["change"]["nDCG@10"] == pytest.approx(row["rerank"]["nDCG@10"] - row["bi_encoder"]["nDCG@10"])


def test_cli_skip_full_drops_only_the_whole_corpus_stage(cli_report):
    """`eval --skip-full`: stage (c) is not run and says so; (a) and (b) are exactly the full run's."""
    folder = ROOT / "corpora" / "topic_vs_answer"
    result = _run_cli(
        "--corpus", str(folder / "corpus.jsonl"), "--queries", str(folder / "queries.jsonl"),
        "--qrels", str(folder / "qrels.jsonl"), "--top-k", "3", "--json", "--skip-full",
    )
    assert result.returncode == 0, result.stderr
    skipped = json.loads(result.stdout)
    assert skipped["metrics"]["cross_encoder_full"] is None
    assert any("stage c skipped" in note for note in skipped["notes"])
    for stage in ("bi_encoder", "rerank"):
        assert skipped["metrics"][stage] == pytest.approx(cli_report["metrics"][stage]), stage
    assert all(row["cross_encoder_full"] is None for row in skipped["per_query"])
    assert [row["top_ids"]["rerank"] for row in skipped["per_query"]] == \
        [row["top_ids"]["rerank"] for row in cli_report["per_query"]]


def test_cli_bi_encoder_ranks_agree_with_plain_cosines(cli_report, bi_model):
    from explorer.data.corpus import read_corpus, read_qrels, read_queries
    from explorer.engine.precision import resolve_precision
    from explorer.rankers.bi_encoder import BiEncoder

    folder = ROOT / "corpora" / "topic_vs_answer"
    corpus = read_corpus(folder / "corpus.jsonl")
    queries = read_queries(folder / "queries.jsonl")
    qrels = read_qrels(folder / "qrels.jsonl")
    precision = resolve_precision("auto")
    docs = BiEncoder(bi_model, precision).encode(corpus.texts)
    for row, query in zip(cli_report["per_query"], queries):
        cosines = docs @ BiEncoder(bi_model, precision).encode([query.text])[0]
        order = np.argsort(-cosines, kind="stable")
        relevant = {doc for doc, grade in qrels[query.id].items() if grade > 0}
        first = next(place for place, i in enumerate(order, 1) if corpus.documents[i].id in relevant)
        assert row["first_relevant_rank"]["bi_encoder"] == first, query.id


def test_cli_reports_unusable_labels_as_a_user_error(tmp_path):
    folder = ROOT / "corpora" / "topic_vs_answer"
    qrels = tmp_path / "qrels.trec"
    qrels.write_text("nobody 0 honey-answer 2\n")
    result = _run_cli(
        "--corpus", str(folder / "corpus.jsonl"), "--queries", str(folder / "queries.jsonl"),
        "--qrels", str(qrels), "--json",
    )
    assert result.returncode == 2
    assert "query ids" in result.stderr


def test_eval_tab_functions_show_the_report_and_pick_a_query():
    import gradio as gr

    from explorer.ui import eval_tab as ui_eval

    summary, metrics, figure, per_query, report = ui_eval.run_evaluation(
        "topic_vs_answer", 3, False, progress=lambda *args, **kwargs: None
    )
    assert report["metrics"]["cross_encoder_full"] is None
    rows = {row[0]: row[1:] for row in metrics["value"]}
    assert len(rows) == 3 and rows[next(k for k in rows if k.startswith("(b)"))] == [
        round(report["metrics"]["rerank"][name], 4) for name in ("nDCG@10", "RR@10", "R@3")
    ]
    changes = [row[4] for row in per_query["value"]]
    assert changes == sorted(changes, reverse=True)
    by_id = {row["query_id"]: row for row in report["per_query"]}
    bars = figure.data[0]
    assert [by_id[qid]["change"]["nDCG@10"] for qid in bars.y] == pytest.approx(list(bars.x))
    assert "topic_vs_answer" in summary

    picked = per_query["value"][-1]
    event = gr.SelectData(None, {"index": [len(per_query["value"]) - 1, 1], "value": picked[1], "row_value": picked})
    selection, message = ui_eval.select_query(report, event)
    row = by_id[picked[0]]
    texts = {json.loads(line)["id"]: json.loads(line)["text"] for line in (ROOT / "corpora/topic_vs_answer/corpus.jsonl").open()}
    assert selection["query"] == row["query"] and selection["corpus"] == "topic_vs_answer"
    assert selection["top_document"] == texts[row["top_ids"]["rerank"][0]]
    assert picked[0] in message


def test_eval_tab_refuses_unknown_corpora_and_oversized_jobs():
    import gradio as gr

    from explorer.ui import eval_tab as ui_eval

    with pytest.raises(gr.Error, match="Unknown corpus"):
        ui_eval.run_evaluation("../../etc", 5, False, progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match="pairs"):
        ui_eval.run_evaluation("python_docs", 20, True, progress=lambda *a, **k: None)
