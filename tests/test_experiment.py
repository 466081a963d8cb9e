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
from explorer.pipeline.measures import score_rankings
from explorer.pipeline.experiment import (
    WHOLE_CORPUS, CachedScorer, kendall_tau_union, most_pairs, parse_pipelines, pipeline_name,
)
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


def exact_sign_flip_p(d) -> float:
    """Written out here, independently of scipy: all 2^n sign vectors, equally likely under the
    null, and the share whose |mean| reaches the observed |mean| (two-sided, no correction)."""
    d = np.asarray(d, dtype=np.float64)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=len(d))))
    flipped = np.abs(signs @ d) / len(d)
    return float(np.mean(flipped >= abs(d.mean()) - 1e-12))


def test_sign_flip_p_on_a_hand_worked_example():
    # d = (1, 2, 3): the 8 sums of +-1 +-2 +-3 are 6, 4, 2, 0, 0, -2, -4, -6. The observed sum is 6,
    # matched in |sum| only by +6 and -6: p = 2 / 8.
    assert permutation_p([1.0, 2.0, 3.0]) == pytest.approx(0.25, abs=1e-12)
    assert exact_sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(0.25, abs=1e-12)
    # One query: either sign gives the same |mean|, p = 1 (scipy refuses one observation).
    assert permutation_p([0.3]) == 1.0
    assert permutation_p([0.0] * 5) == 1.0  # no difference at all


@pytest.mark.parametrize("n", [5, 12, 16])
def test_sign_flip_p_is_exact_up_to_16_queries(n):
    """Exactly the enumeration's p (no +1 correction, no sampling), whatever the seed."""
    d = (A - B)[:n] if n <= len(A) else np.random.default_rng(n).normal(0.05, 0.2, n)
    expected = exact_sign_flip_p(d)
    assert permutation_p(d, seed=1) == pytest.approx(expected, abs=1e-12)
    assert permutation_p(d, seed=2) == pytest.approx(expected, abs=1e-12)


def test_sign_flip_p_above_16_queries_samples_the_same_distribution():
    d = np.random.default_rng(4).normal(0.06, 0.25, 20)
    expected = exact_sign_flip_p(d)  # 2^20 sign vectors: the distribution sampled below
    assert 0.01 < expected < 0.5  # a p in the range where sampling error matters
    # 10,000 random sign vectors: the standard error of p is at most sqrt(0.25 / 10,000) = 0.005;
    # 0.02 is four of them (a correct sampler misses it about once in 16,000 seeds).
    assert permutation_p(d, 10_000, seed=1) == pytest.approx(expected, abs=0.02)
    assert permutation_p(d, 10_000, seed=1) == permutation_p(d, 10_000, seed=1)  # seeded
    # The +1 correction: a difference no random flip matches (exact p = 2 / 2^20) is never given 0.
    ones = permutation_p([1.0] * 20, 500, seed=3)
    assert 1 / 501 <= ones <= 2 / 501


def test_bootstrap_interval_against_the_exact_bootstrap_distribution():
    """d = (0, 1, 3, 9): the 4^4 = 256 equally likely resamples, enumerated. Their means' lowest
    atoms: 0 (1/256), 0.25 (4/256), 0.5 (6/256), so the 2.5% point is 0.5 (cumulative 5/256 below
    it, 11/256 up to it); highest: 9 (1/256), 7.5 (4/256), 7.0 (4/256), so the 97.5% point is 7.0.
    10,000 resamples put 195 +- 14 means below 0.5 and above 7.0, far from the 250 that would
    move either end."""
    d = [0.0, 1.0, 3.0, 9.0]
    means = np.array([np.mean(r) for r in itertools.product(d, repeat=4)])
    assert np.mean(means < 0.5) == 5 / 256 and np.mean(means <= 0.5) == 11 / 256
    assert np.mean(means > 7.0) == 5 / 256 and np.mean(means >= 7.0) == 9 / 256
    for seed in (1, 2, 3):
        assert bootstrap_ci(d, 10_000, seed=seed) == (0.5, 7.0)
    assert bootstrap_ci([0.4], seed=1) == (0.4, 0.4)  # one query: nothing to resample


def test_bootstrap_is_scipys_percentile_interval():
    d = A - B
    first, again, other = bootstrap_ci(d, 5000, seed=11), bootstrap_ci(d, 5000, seed=11), bootstrap_ci(d, 5000, seed=12)
    assert first == again and first != other
    assert first[0] < d.mean() < first[1]
    reference = stats.bootstrap((d,), np.mean, n_resamples=5000, method="percentile", confidence_level=0.95,
                                rng=np.random.default_rng(11)).confidence_interval
    assert first == pytest.approx((reference.low, reference.high), abs=1e-12)


def test_holm_equals_hand_worked_examples():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-12)
    # Tied p: 0.02*3 = 0.06, then 0.02*2 = 0.04 lifted to 0.06 by the running max; 0.5*1 = 0.5.
    assert holm([0.02, 0.5, 0.02]) == pytest.approx([0.06, 0.5, 0.06], abs=1e-12)
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0], abs=1e-12)  # 0.5*2 = 1.0, capped at 1
    assert holm([0.04]) == pytest.approx([0.04], abs=1e-12)  # one comparison: unchanged
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
    assert new.p_perm == pytest.approx(exact_sign_flip_p(A - B), abs=1e-12)  # 12 queries: exact
    reference = stats.bootstrap((A - B,), np.mean, n_resamples=2000, method="percentile",
                                rng=np.random.default_rng(5)).confidence_interval
    assert (new.ci_low, new.ci_high) == pytest.approx((reference.low, reference.high), abs=1e-12)
    # Holm over two comparisons, by hand: `same` has p 1; `new`'s p doubles (capped at 1).
    assert same.p_perm == 1.0
    assert [new.p_holm, same.p_holm] == pytest.approx([min(1.0, 2 * new.p_perm), 1.0], abs=1e-12)
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
    # A re-ranker alone is that re-ranker over every document (stage c of plain eval).
    assert parse_pipelines("cross,bi+cross") == [(WHOLE_CORPUS, ("cross",)), ("bi", ("cross",))]
    assert [pipeline_name(*spec) for spec in parse_pipelines("late,bm25+late")] == ["late", "bm25+late"]
    for bad in ("cross+late", "bi+bm25", "bi+cross+cross", "bi,bi", "cross,cross", "", "rerank"):
        with pytest.raises(ExplorerError):
            parse_pipelines(bad)
    # Pairs: 3 queries x top-5 per (first stage, re-ranker) chain, 3 x 40 documents for a whole-corpus one.
    assert most_pairs("bi,bi+cross,bi+late+cross,bm25+cross,cross", 3, 5, 40) == 3 * 5 * 3 + 3 * 40


class _Counting(PairScorer):
    info = RankerInfo("fake", "fake", "cross", "logit", "fp32")
    max_length = 512

    def __init__(self):
        self.seen = []

    def check_query(self, query):
        pass  # no tokenizer: every query fits

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


def test_whole_corpus_pipeline_and_its_reranking_share_each_pair(tmp_path, monkeypatch):
    """`cross` (the re-ranker over every document) and `bm25+cross` in one run: each pair is scored
    once, `cross` ranks by the scorer's own scores (ties in corpus order), and `bm25+cross` re-orders
    BM25's top-k by those scores with BM25's order beneath: both checked against a plain sort."""
    from labelled_zip import write_labelled_zip

    from explorer.pipeline import experiment
    from explorer.rankers.bm25 import BM25

    data = read_labels(write_labelled_zip(tmp_path / "set.zip"))
    fake = _Counting()
    monkeypatch.setattr(experiment, "reranker", lambda kind, *args: fake)
    report = experiment.run_experiment(data.corpus, data.queries, data.qrels, "cross,bm25+cross", top_k=3)
    ids, texts = [d.id for d in data.corpus.documents], data.corpus.texts
    queries = [q for q in data.queries if q.id in report.queries]
    assert sorted(fake.seen) == sorted({(q.text, t) for q in queries for t in texts})  # every pair, once
    assert report.reranker_pairs["cross"] == {"scored": len(queries) * len(texts), "reused": len(queries) * 3}
    score = {(q, t): len(q) * 10 + len(t) for q, t in fake.seen}
    bm25 = BM25()
    index, _ = bm25.index_corpus(texts, data.corpus.fingerprint)
    for query in queries:
        by_score = sorted(range(len(texts)), key=lambda i: (-score[query.text, texts[i]], i))
        assert report.rankings["cross"][query.id] == [ids[i] for i in by_score][:10]
        _, positions = bm25.search(index, bm25.encode_queries([query.text]), 10)
        first = [int(p) for p in positions[0]]
        head = sorted(first[:3], key=lambda i: (-score[query.text, texts[i]], first.index(i)))
        assert report.rankings["bm25+cross"][query.id] == [ids[i] for i in head + first[3:]]
    assert report.ms_per_query["cross"] >= 0 and report.models["cross"] == "fake"
    assert set(report.first_relevant_rank) == {"cross", "bm25+cross"}


def test_kendall_tau_of_top_lists_against_scipy():
    a = ["d1", "d2", "d3", "d4"]
    b = ["d2", "d1", "d3", "d5"]
    # Union d1..d5; ranks in a: 1,2,3,4,5 (d5 absent -> 5); in b: 2,1,3,5 (d4 absent),4.
    expected = stats.kendalltau([1, 2, 3, 4, 5], [2, 1, 3, 5, 4]).statistic
    assert kendall_tau_union(a, b) == pytest.approx(expected)
    assert kendall_tau_union(a, a) == pytest.approx(1.0)
    assert kendall_tau_union(a, list(reversed(a))) == pytest.approx(-1.0)


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
        ((*FILES, "--pipelines", "bm25,cross+late"), "first stage"),
        ((*FILES, "--pipelines", "bm25,bi+bm25"), "'bm25'"),
        ((*FILES, "--pipelines", "bm25", "--baseline", "bi"), "baseline 'bi'"),
        (("--corpus", str(tmp_path / "nothing.zip")), "nothing.zip"),
    ):
        result = _run_cli(*args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
