"""Every pipeline in one run: statistics against independent references, TREC runs checked by
ir_measures, bring-your-own labels refused clearly, and the `eval --pipelines` JSON contract."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import ir_measures
import numpy as np
import pytest
from ir_measures import RR, R, nDCG
from scipy import stats

from explorer.data.corpus import parse_qrels
from explorer.data.labels import read_labels
from explorer.data.trec_runs import format_run, parse_run, run_rankings
from explorer.errors import ExplorerError
from explorer.pipeline.evaluate import score_rankings
from explorer.pipeline.experiment import CachedScorer, kendall_tau_top, parse_pipelines
from explorer.pipeline.significance import bootstrap_ci, compare_to_baseline, holm, paired_t_p, permutation_p
from explorer.rankers.base import PairScorer, PairScores, RankerInfo

ROOT = Path(__file__).resolve().parent.parent
NEGATION = ROOT / "corpora" / "negation"

A = np.array([0.9, 0.5, 0.7, 1.0, 0.2, 0.6, 0.8, 0.4, 0.3, 0.75, 0.55, 0.65])
B = np.array([0.7, 0.5, 0.4, 0.9, 0.3, 0.1, 0.8, 0.2, 0.35, 0.5, 0.45, 0.6])


# ---- statistics ---------------------------------------------------------------------------


def test_paired_t_equals_scipy():
    assert paired_t_p(A, B) == pytest.approx(stats.ttest_rel(A, B).pvalue, rel=1e-12)
    assert paired_t_p(A, A) == 1.0  # no difference at all: scipy's nan becomes 1


def _reference_permutation_p(d, permutations, seed):
    """One permutation at a time: flip query j's sign where a uniform draw is below 0.5."""
    rng = np.random.default_rng(seed)
    observed = abs(sum(d) / len(d))
    count = 0
    for _ in range(permutations):
        u = rng.random(len(d))
        flipped = [(-x if ui < 0.5 else x) for x, ui in zip(d, u)]
        if abs(sum(flipped) / len(flipped)) >= observed - 1e-12:
            count += 1
    return (count + 1) / (permutations + 1)


def test_permutation_test_equals_reference_and_exact_enumeration():
    d = A - B
    assert permutation_p(d, 2000, seed=7) == _reference_permutation_p(list(d), 2000, seed=7)
    # Against the exact sign-flip distribution (all 2^12 sign vectors): Monte Carlo within 0.015.
    observed = abs(d.mean())
    signs = np.array(list(itertools.product([-1, 1], repeat=len(d))))
    exact = np.mean(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12)
    assert permutation_p(d, 10_000, seed=1) == pytest.approx(exact, abs=0.015)
    # The +1 correction: never zero, even for a difference no flip can match.
    assert permutation_p([1.0] * 12, 500, seed=3) >= 1 / 501


def test_bootstrap_is_seeded_and_holds_the_mean():
    d = A - B
    first, again, other = bootstrap_ci(d, 5000, seed=11), bootstrap_ci(d, 5000, seed=11), bootstrap_ci(d, 5000, seed=12)
    assert first == again and first != other
    assert first[0] < d.mean() < first[1]
    # Reference: the same resampling, written out.
    rng = np.random.default_rng(11)
    idx = rng.integers(0, len(d), size=(5000, len(d)))
    assert first == pytest.approx(tuple(np.percentile(d[idx].mean(axis=1), [2.5, 97.5])))


def test_holm_equals_hand_worked_example():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_compare_to_baseline_rows_and_notes():
    queries = [f"q{i}" for i in range(len(A))]
    per_query = {
        "base": {q: {"m": float(b)} for q, b in zip(queries, B)},
        "new": {q: {"m": float(a)} for q, a in zip(queries, A)},
        "same": {q: {"m": float(b)} for q, b in zip(queries, B)},
    }
    rows, notes = compare_to_baseline(per_query, "base", ["m"], resamples=2000, permutations=2000, seed=5)
    new, same = rows
    assert (new.pipeline, new.baseline, new.measure) == ("new", "base", "m")
    assert new.mean_diff == pytest.approx((A - B).mean())
    assert (new.wins, new.ties, new.losses) == (int(np.sum(A > B)), int(np.sum(A == B)), int(np.sum(A < B)))
    assert new.p_t == pytest.approx(stats.ttest_rel(A, B).pvalue)
    assert new.p_perm == permutation_p(A - B, 2000, seed=5)
    assert [new.p_holm, same.p_holm] == pytest.approx(holm([new.p_perm, same.p_perm]))
    assert (same.ties, same.mean_diff, same.p_t) == (len(A), 0.0, 1.0)
    assert not any("Only" in n for n in notes)
    few = {name: dict(list(values.items())[:5]) for name, values in per_query.items()}
    _, notes = compare_to_baseline(few, "base", ["m"], resamples=100, permutations=100)
    assert any("Only 5 labelled queries" in n for n in notes)
    with pytest.raises(ExplorerError, match="baseline"):
        compare_to_baseline(per_query, "nope", ["m"])


# ---- pipelines, the pair cache, disagreement ------------------------------------------------


def test_parse_pipelines():
    assert parse_pipelines("bi, bm25+cross,hybrid+late+cross") == [
        ("bi", ()), ("bm25", ("cross",)), ("hybrid", ("late", "cross"))]
    for bad in ("cross", "bi+bm25", "bi+cross+cross", "bi,bi", ""):
        with pytest.raises(ExplorerError):
            parse_pipelines(bad)


class _Counting(PairScorer):
    info = RankerInfo("fake", "fake", "cross", "logit", "fp32")
    max_length = 512

    def __init__(self):
        self.seen = []

    def score(self, queries, documents, progress=None):
        self.seen += list(zip(queries, documents))
        scores = np.array([len(q) * 10 + len(d) for q, d in zip(queries, documents)], dtype=np.float32)
        return PairScores(scores, scores / 100, 0)


def test_cached_scorer_scores_each_pair_once():
    inner = _Counting()
    cached = CachedScorer(inner)
    first = cached.score(["q", "q", "qq"], ["a", "bb", "a"])
    second = cached.score(["qq", "q", "q"], ["a", "ccc", "a"])
    direct = _Counting().score(["qq", "q", "q"], ["a", "ccc", "a"])
    assert second.scores.tolist() == direct.scores.tolist()
    assert second.probabilities.tolist() == pytest.approx(direct.probabilities.tolist())
    assert first.scores.tolist() == [11, 12, 21]
    assert sorted(inner.seen) == sorted([("q", "a"), ("q", "bb"), ("qq", "a"), ("q", "ccc")])
    assert (cached.computed, cached.reused) == (4, 2)


def test_kendall_tau_of_top_lists_against_scipy():
    a = ["d1", "d2", "d3", "d4"]
    b = ["d2", "d1", "d3", "d5"]
    # Union d1..d5; ranks in a: 1,2,3,4,5 (d5 absent -> 5); in b: 2,1,3,5 (d4 absent),4.
    expected = stats.kendalltau([1, 2, 3, 4, 5], [2, 1, 3, 5, 4]).statistic
    assert kendall_tau_top(a, b) == pytest.approx(expected)
    assert kendall_tau_top(a, a) == pytest.approx(1.0)
    assert kendall_tau_top(a, list(reversed(a))) == pytest.approx(-1.0)


# ---- TREC runs ----------------------------------------------------------------------------


QRELS = {"q1": {"a": 2, "c": 1}, "q2": {"b": 1}}


def test_run_order_matches_trec_eval_including_ties():
    # Ties in score: trec_eval orders them by document id, highest first.
    run = {"q1": {"a": 1.0, "c": 1.0, "b": 1.0, "d": 2.0}, "q2": {"a": 0.5, "b": 0.5}}
    ours = score_rankings(run_rankings(run), QRELS, top_k=2)
    theirs = {(m.query_id, str(m.measure)): m.value for m in ir_measures.iter_calc([nDCG @ 10, R @ 2, RR], QRELS, run)}
    for qid in QRELS:
        assert ours[qid]["nDCG@10"] == pytest.approx(theirs[(qid, "nDCG@10")])
        assert ours[qid]["R@2"] == pytest.approx(theirs[(qid, "R@2")])
        assert ours[qid]["RR@10"] == pytest.approx(theirs[(qid, "RR")])
    assert run_rankings(run)["q1"] == ["d", "c", "b", "a"]


def test_run_round_trips_and_bad_lines_are_named():
    rankings = {"q1": ["c", "a", "x"], "q2": ["b"]}
    assert run_rankings(parse_run(format_run(rankings, "mine"), "mine.run")) == rankings
    for text, message in (
        ("q1 Q0 a 1 1.0\n", r"mine\.run, line 1: expected six columns"),
        ("q1 Q0 a 1 1.0 t\nq1 Q0 b one 2.0 t\n", r"mine\.run, line 2: the rank"),
        ("q1 Q0 a 1 high t\n", r"line 1: the score 'high' is not a number"),
        ("q1 Q0 a 1 nan t\n", r"line 1: .*not a finite"),
        ("q1 Q0 a 1 1 t\n\nq1 Q0 a 2 0 t\n", r"line 3: document 'a' appears twice"),
        ("\n\n", r"no run lines"),
    ):
        with pytest.raises(ExplorerError, match=message):
            parse_run(text, "mine.run")


# ---- bring your own labels -----------------------------------------------------------------


def _beir_zip(path: Path, qrels: str, prefix: str = "myset/", corpus: str | None = None) -> Path:
    corpus = corpus or "\n".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"document {i}"}) for i in range(3))
    queries = "\n".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) for i in range(2))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(prefix + "corpus.jsonl", corpus)
        archive.writestr(prefix + "queries.jsonl", queries)
        archive.writestr(prefix + "qrels/test.tsv", qrels)
    return path


def test_beir_zip_loads(tmp_path):
    data = read_labels(_beir_zip(tmp_path / "set.zip", "query-id\tcorpus-id\tscore\nq0\td1\t1\nq0\td2\t0\n"))
    assert [d.id for d in data.corpus.documents] == ["d0", "d1", "d2"]
    assert [q.id for q in data.queries] == ["q0"]  # q1 has no judgments
    assert data.qrels == {"q0": {"d1": 1, "d2": 0}}
    assert data.notes == ["1 query(ies) in set.zip:myset/queries.jsonl have no judgments and were left out: 'q1'."]


def test_broken_zip_bad_grade_and_unknown_documents_are_refused(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ExplorerError, match=r"broken\.zip is not a readable zip file"):
        read_labels(broken)
    # A damaged member: flip bytes inside the compressed data.
    good = _beir_zip(tmp_path / "good.zip", "q0\td1\t1\n")
    raw = bytearray(good.read_bytes())
    damaged = tmp_path / "damaged.zip"
    start = raw.index(b"document 0")
    raw[start:start + 5] = b"XXXXX"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(ExplorerError, match=r"damaged\.zip"):
        read_labels(damaged)
    missing = tmp_path / "missing.zip"
    with zipfile.ZipFile(missing, "w") as archive:
        archive.writestr("corpus.jsonl", '{"_id": "d0", "text": "x"}\n')
    with pytest.raises(ExplorerError, match="lacks queries.jsonl, qrels/test.tsv"):
        read_labels(missing)

    with pytest.raises(ExplorerError, match=r"test\.tsv, line 3: the grade 'high' is not a whole number"):
        read_labels(_beir_zip(tmp_path / "grade.zip", "query-id\tcorpus-id\tscore\nq0\td1\t1\nq0\td2\thigh\n"))
    with pytest.raises(ExplorerError, match=r"line 1: the grade -1 is outside"):
        parse_qrels("q0 0 d1 -1\n", "labels.trec")
    with pytest.raises(ExplorerError, match=r"test\.tsv: no judged query is in q\.zip:myset/queries\.jsonl "
                                            r"\(line 1 names query 'q9'\)"):
        read_labels(_beir_zip(tmp_path / "q.zip", "q9\td1\t1\n"))
    with pytest.raises(ExplorerError, match=r"line 2: .*labelled twice"):
        parse_qrels("q0 0 d1 1\nq0 0 d1 2\n", "labels.trec")


def test_three_files_with_unknown_document_load(tmp_path):
    qrels = tmp_path / "qrels.trec"
    qrels.write_text("neg-pasta-no-cheese 0 pasta-no-cheese 2\nneg-pasta-no-cheese 0 ghost-doc 1\n")
    data = read_labels(NEGATION / "corpus.jsonl", NEGATION / "queries.jsonl", qrels)
    assert data.qrels == {"neg-pasta-no-cheese": {"pasta-no-cheese": 2, "ghost-doc": 1}}  # kept for the measures
    assert [q.id for q in data.queries] == ["neg-pasta-no-cheese"]
    data = read_labels(NEGATION / "corpus.jsonl", NEGATION / "queries.jsonl", NEGATION / "qrels.jsonl")
    assert len(data.queries) == 8


# ---- the command line ----------------------------------------------------------------------


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "explorer", "eval", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


FILES = ("--corpus", str(NEGATION / "corpus.jsonl"), "--queries", str(NEGATION / "queries.jsonl"),
         "--qrels", str(NEGATION / "qrels.jsonl"))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = _run_cli(*FILES, "--top-k", "5", "--pipelines", "bm25,bi,bi+cross", "--baseline", "bi",
                      "--precision", "fp32", "--run-out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), out


def test_cli_json_contract(experiment):
    report, _ = experiment
    measures = ["nDCG@10", "RR@10", "R@5"]
    assert list(report["metrics"]) == ["bm25", "bi", "bi+cross"]
    for name, values in report["metrics"].items():
        assert list(values) == measures
        for m in measures:
            assert values[m] == pytest.approx(np.mean([q[m] for q in report["per_query"][name].values()]))
    rows = report["significance"]
    assert len(rows) == 2 * 3
    keys = {"pipeline", "baseline", "measure", "mean_diff", "ci_low", "ci_high", "p_t", "p_perm", "p_holm",
            "wins", "ties", "losses"}
    queries = list(report["per_query"]["bi"])
    for row in rows:
        assert set(row) == keys and row["baseline"] == "bi"
        a = [report["per_query"][row["pipeline"]][q][row["measure"]] for q in queries]
        b = [report["per_query"]["bi"][q][row["measure"]] for q in queries]
        assert row["mean_diff"] == pytest.approx(report["metrics"][row["pipeline"]][row["measure"]]
                                                 - report["metrics"]["bi"][row["measure"]])
        assert row["p_t"] == pytest.approx(paired_t_p(a, b))
        if not np.allclose(a, b):
            assert row["p_t"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
        assert row["wins"] + row["ties"] + row["losses"] == len(queries)
        assert row["ci_low"] <= row["mean_diff"] <= row["ci_high"]
        assert row["p_holm"] >= row["p_perm"]
    # Re-ranking permutes the top-k only: R@5 of bi+cross equals bi's on every query.
    for q in queries:
        assert report["per_query"]["bi+cross"][q]["R@5"] == report["per_query"]["bi"][q]["R@5"]
    assert report["reranker_pairs"]["cross"]["scored"] == 8 * 5
    assert any("Only 8 labelled queries" in n for n in report["notes"])


def test_exported_runs_scored_by_ir_measures_equal_ours(experiment):
    report, out = experiment
    qrels = {}
    for line in (NEGATION / "qrels.jsonl").open():
        record = json.loads(line)
        qrels.setdefault(record["query_id"], {})[record["doc_id"]] = int(record["relevance"])
    for name in ("bm25", "bi", "bi+cross"):
        path = out / f"{name}.run"
        assert path.exists()
        run = list(ir_measures.read_trec_run(str(path)))
        means = ir_measures.calc_aggregate([nDCG @ 10, R @ 5], qrels, run)
        assert report["metrics"][name]["nDCG@10"] == pytest.approx(means[nDCG @ 10])
        assert report["metrics"][name]["R@5"] == pytest.approx(means[R @ 5])
        cut = {}
        for row in run:
            if len(cut.setdefault(row.query_id, {})) < 10:  # trec_eval's recip_rank has no cutoff
                cut[row.query_id][row.doc_id] = row.score
        assert report["metrics"][name]["RR@10"] == pytest.approx(ir_measures.calc_aggregate([RR], qrels, cut)[RR])


def test_imported_run_round_trips_beside_bm25(experiment):
    report, out = experiment
    result = _run_cli(*FILES, "--top-k", "5", "--pipelines", "bm25", "--baseline", "bm25",
                      "--run", f"imported={out / 'bi+cross.run'}", "--json")
    assert result.returncode == 0, result.stderr
    again = json.loads(result.stdout)
    assert again["metrics"]["imported"] == pytest.approx(report["metrics"]["bi+cross"])
    assert again["metrics"]["bm25"] == pytest.approx(report["metrics"]["bm25"])
    assert again["ms_per_query"]["imported"] is None
    assert [r["pipeline"] for r in again["significance"]] == ["imported"] * 3


def test_cli_errors_are_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.run"
    bad.write_text("neg-pasta-no-cheese Q0 pasta-cheese 1 1.0 x\nbroken line\n")
    for args, message in (
        ((*FILES, "--pipelines", "bm25", "--run", f"ext={bad}"), "bad.run, line 2"),
        ((*FILES, "--pipelines", "bm25,cross"), "first stage"),
        ((*FILES, "--pipelines", "bm25,bi+bm25"), "'bm25'"),
        ((*FILES, "--pipelines", "bm25", "--baseline", "bi"), "baseline 'bi'"),
        (("--corpus", str(tmp_path / "nothing.zip")), "nothing.zip"),
    ):
        result = _run_cli(*args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
