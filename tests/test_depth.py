"""How deep to re-rank, where to cut, how much fits a context, which moves paid: each against an
independent reference (a fresh `run_experiment` per depth, numpy counts, scikit-learn's
`calibration_curve`, hand counts, trec_eval's nDCG@10 through `score_rankings`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from explorer.errors import ExplorerError
from explorer.pipeline.context_budget import context_budget, fit_in_budget, parse_budgets, token_counts
from explorer.pipeline.depth import depths_for_corpus, parse_depths
from explorer.pipeline.measures import score_rankings
from explorer.pipeline.move_gains import ideal_dcg, move_contributions, summarise_moves
from explorer.pipeline.thresholds import calibration, score_distribution, threshold_curve
from explorer.rankers.base import PairScorer

ROOT = Path(__file__).resolve().parent.parent


# ---- score threshold and calibration ------------------------------------------------------


def test_threshold_precision_recall_equal_numpy_counts():
    rng = np.random.default_rng(7)
    grades = rng.integers(0, 3, 60)
    scores = np.round(rng.normal(grades.astype(float), 1.0), 1)  # rounded: many ties
    curve = threshold_curve(scores, grades)
    relevant = grades >= 1
    assert list(curve.thresholds) == sorted(set(scores.tolist()), reverse=True)
    for t, kept, p, r, f in zip(curve.thresholds, curve.kept, curve.precision, curve.recall, curve.f1):
        keep = scores >= t
        tp = np.count_nonzero(keep & relevant)
        assert kept == np.count_nonzero(keep)
        assert p == pytest.approx(tp / keep.sum(), abs=1e-12)
        assert r == pytest.approx(tp / relevant.sum(), abs=1e-12)
        assert f == pytest.approx(0.0 if tp == 0 else 2 * p * r / (p + r), abs=1e-12)
    best = curve.best()
    brute = max(((2 * np.count_nonzero((scores >= t) & relevant)
                  / (np.count_nonzero(scores >= t) + relevant.sum())), t) for t in set(scores.tolist()))
    assert best["f1"] == pytest.approx(brute[0], abs=1e-12)  # F1 = 2TP / (kept + relevant)
    with pytest.raises(ExplorerError):
        threshold_curve([1.0, 2.0], [0, 0])


def test_score_distribution_per_grade():
    dist = score_distribution([3.0, -1.0, 0.5, 2.0, -2.0, 4.0], [2, 0, 1, 2, 0, 0], [True] * 5 + [False])
    assert list(dist) == ["0", "1", "2", "unjudged"]
    assert dist["2"]["count"] == 2 and dist["2"]["mean"] == 2.5 and dist["0"]["max"] == -1.0
    assert dist["1"]["median"] == 0.5 and dist["unjudged"]["scores"] == [4.0]


def test_calibration_bins_and_ece_equal_sklearn_and_numpy():
    rng = np.random.default_rng(3)
    p = np.r_[rng.uniform(0, 1, 200), [0.0, 0.1, 0.5, 1.0]]  # values on the edges too
    grades = (rng.uniform(0, 1, len(p)) < p ** 2).astype(int) * 2
    cal = calibration(p, grades)
    prob_true, prob_pred = calibration_curve(grades >= 1, p, n_bins=10, strategy="uniform")
    filled = cal.count > 0
    assert cal.fraction_relevant[filled] == pytest.approx(prob_true, abs=1e-12)
    assert cal.mean_probability[filled] == pytest.approx(prob_pred, abs=1e-12)
    # ECE recomputed by a loop over the bins, edges as scikit-learn's: (lo, hi], the first bin also holds 0.
    ece = 0.0
    for i in range(10):
        lo, hi = i / 10, (i + 1) / 10
        inside = (p > lo) & (p <= hi) if i else (p <= hi)
        if inside.any():
            ece += inside.sum() / len(p) * abs((grades[inside] >= 1).mean() - p[inside].mean())
    assert cal.ece == pytest.approx(ece, abs=1e-12)
    with pytest.raises(ExplorerError):
        calibration([1.5], [1])


# ---- context budget ----------------------------------------------------------------------


def test_context_budget_equals_a_hand_count():
    counts = {"a": 300, "b": 500, "c": 400, "d": 900, "e": 100}
    qrels = {"q1": {"a": 2, "c": 1, "e": 2, "x": 1}, "q2": {"d": 1}}
    rankings = {"p": {"q1": ["a", "b", "c", "d", "e"], "q2": ["e", "d", "a"]}}
    result = context_budget(rankings, counts, qrels, [1000, 2000])
    # q1 at 1000: a (300) + b (800) fit, c would make 1200: 2 documents, grades 2, relevant {a} of {a, c, e, x}.
    assert result["p"][1000]["per_query"]["q1"] == {"documents": 2, "tokens": 800, "grade_sum": 2, "recall": 0.25}
    # q1 at 2000: a, b, c (1200); d would make 2100: grades 2 + 1, relevant {a, c} of 4.
    assert result["p"][2000]["per_query"]["q1"] == {"documents": 3, "tokens": 1200, "grade_sum": 3, "recall": 0.5}
    # q2 at 1000: e (100) + d (1000) fit exactly; a would make 1300.
    assert result["p"][1000]["per_query"]["q2"] == {"documents": 2, "tokens": 1000, "grade_sum": 1, "recall": 1.0}
    assert result["p"][1000]["documents"] == 2.0 and result["p"][1000]["recall"] == pytest.approx(0.625)
    assert fit_in_budget(["d", "e"], counts, 800) == []  # the first document alone is too long
    assert parse_budgets("4000, 1000,2000") == [1000, 2000, 4000]
    with pytest.raises(ExplorerError):
        parse_budgets("0")


def test_token_counts_use_the_cross_encoders_wordpiece(cross_model):
    from explorer.rankers.cross_encoder import load_cross_encoder

    tokenizer = load_cross_encoder("cross-encoder/ms-marco-MiniLM-L-12-v2").tokenizer
    # By hand, WordPiece of bert-base-uncased: paris / is / the / capital / of / france / . = 7;
    # "unaffable" splits into un / ##aff / ##able = 3.
    counts = token_counts(tokenizer, {"p": "Paris is the capital of France.", "u": "unaffable"})
    assert counts == {"p": 7, "u": 3}


# ---- which moves paid ----------------------------------------------------------------------


def test_move_contributions_sum_to_trec_evals_ndcg_change():
    rng = np.random.default_rng(11)
    docs = [f"d{i}" for i in range(30)]
    for trial in range(40):
        grades = {d: int(rng.integers(0, 3)) for d in rng.choice(docs, 12, replace=False)}
        grades["ghost"] = 2  # judged, not in any ranking (trec_eval counts it in the ideal)
        before = list(rng.permutation(docs)[:20])
        after = list(rng.permutation(before[:15])) + before[15:] if trial % 2 else list(rng.permutation(docs)[:20])
        qrels = {"q": grades}
        change = (score_rankings({"q": after}, qrels, 10)["q"]["nDCG@10"]
                  - score_rankings({"q": before}, qrels, 10)["q"]["nDCG@10"])
        moves = move_contributions(before, after, grades)
        assert sum(m["contribution"] for m in moves) == pytest.approx(change, abs=1e-9)
        for m in moves:
            assert m["judged"] == (m["doc_id"] in grades)
            if not m["judged"]:
                assert m["contribution"] == 0.0


def test_move_contributions_by_hand():
    grades = {"a": 2, "b": 0, "c": 1}
    ideal = 2 + 1 / np.log2(3)
    moves = {m["doc_id"]: m for m in move_contributions(["b", "a", "x"], ["a", "x", "b"], grades)}
    assert ideal_dcg(grades) == pytest.approx(ideal)
    assert moves["a"]["contribution"] == pytest.approx(2 * (1 - 1 / np.log2(3)) / ideal)
    assert moves["b"]["contribution"] == 0.0 and moves["x"]["unjudged_up"] and not moves["b"]["unjudged_up"]
    # A relevant document that falls out of the top 10 costs its whole old gain.
    before = ["c"] + [f"n{i}" for i in range(11)]
    after = [f"n{i}" for i in range(11)] + ["c"]
    fell = next(m for m in move_contributions(before, after, grades) if m["doc_id"] == "c")
    assert fell["new_rank"] == 12 and fell["contribution"] == pytest.approx(-1 / ideal)
    summary = summarise_moves({"q": list(moves.values())})
    assert summary["paying_moves"] == 1 and summary["carrying_moves"] == 1 and summary["unjudged_up"] == 1


# ---- depth sweep against real runs ---------------------------------------------------------


def test_depth_parsing_and_clipping():
    assert parse_depths("20, 5,10,5") == [5, 10, 20]
    with pytest.raises(ExplorerError):
        parse_depths("5,x")
    with pytest.raises(ExplorerError):
        parse_depths("0,5")
    assert depths_for_corpus([5, 10, 20, 50], 19)[0] == [5, 10, 19]


class _CountingWrapper(PairScorer):
    """The real cross-encoder, counting every pair its model is asked to score."""

    def __init__(self, inner: PairScorer, seen: list):
        self.inner, self.info, self.seen = inner, inner.info, seen
        self.tokenizer, self.max_length = inner.tokenizer, inner.max_length

    def score(self, queries, documents, progress=None):
        self.seen.extend(zip(queries, documents))
        return self.inner.score(queries, documents, progress=progress)


def test_depth_sweep_equals_fresh_runs_and_scores_each_pair_once():
    from explorer.data.builtin_corpora import load_set
    from explorer.pipeline.depth import depth_sweep
    from explorer.pipeline.experiment import run_experiment

    data = load_set("negation")
    seen: list = []
    options = {"precision": "fp32", "persist_embeddings": False}
    sweep = depth_sweep(data.corpus, data.queries, data.qrels, "bi+cross", [2, 5, 10, 50],
                        cross_encoder_runner=lambda s: _CountingWrapper(s, seen), **options)
    assert sweep.depths == [2, 5, 10, len(data.corpus)]
    queries = sweep.query_count
    assert len(seen) == len(set(seen)) <= queries * len(data.corpus)  # each pair once, at most queries x max depth
    assert len(seen) == sweep.pairs_scored["cross"]
    for point in sweep.curves["bi+cross"]:
        fresh = run_experiment(data.corpus, data.queries, data.qrels, "bi+cross", top_k=point.k, **options)
        assert point.ndcg10 == pytest.approx(fresh.metrics["bi+cross"]["nDCG@10"], abs=1e-12)
        assert point.rr10 == pytest.approx(fresh.metrics["bi+cross"]["RR@10"], abs=1e-12)
        assert point.recall_k == pytest.approx(fresh.metrics["bi+cross"][f"R@{point.k}"], abs=1e-12)
        assert sweep.reports[point.k].rankings["bi+cross"] == fresh.rankings["bi+cross"]
    pick, best = sweep.chosen("bi+cross")
    assert best.ndcg10 == max(p.ndcg10 for p in sweep.curves["bi+cross"])
    assert pick.ndcg10 >= best.ndcg10 - 0.005 - 1e-12
    assert all(p.ndcg10 < best.ndcg10 - 0.005 for p in sweep.curves["bi+cross"] if p.k < pick.k)
    with pytest.raises(ExplorerError):
        depth_sweep(data.corpus, data.queries, data.qrels, "cross", [5])


def test_cli_depths_json():
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-m", "explorer", "eval", "--corpus", "builtin:numbers_entities", "--pipelines", "bi+cross",
         "--depths", "2,5,10", "--budgets", "50,100", "--precision", "fp32", "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [p["k"] for p in data["depth"]["curves"]["bi+cross"]] == [2, 5, 10]
    assert data["depth"]["chosen"]["bi+cross"]["k"] in (2, 5, 10)
    assert set(data["context_budget"]["bi+cross"]) == {"50", "100"}
    threshold = data["thresholds"]["cross"]
    assert threshold["probability_name"] == "sigmoid(logit)" and threshold["calibration"]["ece"] >= 0
    assert sum(threshold["calibration"]["count"]) == threshold["pairs"]
