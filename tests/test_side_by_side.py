"""The whole spectrum side by side: agreement between stages, the sanity probe, the int8 ONNX
original as a re-ranker (cross@int8), and the onnxruntime benchmark peer."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from cli_support import run_cli, write_corpus
from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
from explorer.engine.loading import _offline_bi_encoder_dir, load_model
from explorer.errors import ExplorerError
from explorer.pipeline.agreement import kendall_tau_shared, largest_disagreements, overlap_at_k, rbo
from explorer.pipeline.compare import parse_rerankers
from explorer.rankers.bi_encoder import BiEncoder
from explorer.rankers.cross_encoder import CrossEncoder
from explorer.rankers.onnx_cross_encoder import NAME as INT8_NAME
from explorer.rankers.onnx_cross_encoder import load_onnx_cross_encoder, onnx_path
from explorer.rankers.probe import run_probe, verdict_of
from engine_bounds import INT8_LOGIT_ERROR

# --- agreement ---------------------------------------------------------------------------------


def test_overlap_at_k_obvious_cases():
    a = ["a", "b", "c", "d"]
    assert overlap_at_k(a, a, 4) == 1.0
    assert overlap_at_k(a, ["w", "x", "y", "z"], 4) == 0.0
    assert overlap_at_k(a, ["d", "c", "b", "a"], 4) == 1.0  # order inside the top-k does not count
    assert overlap_at_k(a, ["a", "x", "b", "y"], 2) == 0.5  # top-2: {a, b} vs {a, x}
    assert overlap_at_k(a, ["a", "x", "b", "y"], 4) == 0.5


def brute_force_tau(x, y):
    """(concordant - discordant) / number of pairs, for rankings without ties."""
    pairs = list(itertools.combinations(range(len(x)), 2))
    sign = [np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) for i, j in pairs]
    return sum(sign) / len(pairs)


def test_kendall_tau_is_scipys_over_the_shared_documents():
    rng = random.Random(3)
    docs = [f"d{i}" for i in range(12)]
    for _ in range(20):
        a = rng.sample(docs, 10)
        b = rng.sample(docs, 10)  # shares 8 to 10 documents with a
        shared = [d for d in a if d in b]
        tau, count = kendall_tau_shared(a, b)
        assert count == len(shared)
        ranks_a = [a.index(d) for d in shared]
        ranks_b = [b.index(d) for d in shared]
        assert tau == pytest.approx(kendalltau(ranks_a, ranks_b).statistic, abs=1e-12)
        assert tau == pytest.approx(brute_force_tau(ranks_a, ranks_b), abs=1e-12)
    assert kendall_tau_shared(["a", "b", "c"], ["a", "b", "c"])[0] == pytest.approx(1.0)
    assert kendall_tau_shared(["a", "b", "c"], ["c", "b", "a"])[0] == pytest.approx(-1.0)
    assert kendall_tau_shared(["a", "b"], ["a", "x"]) == (None, 1)  # one shared document: no tau


def test_rbo_equals_hand_worked_examples():
    # Extrapolated RBO, p = 0.9, depth k = 3:
    #   RBO_ext = (X_k / k) p^k + (1 - p) / p * sum_d (X_d / d) p^d
    # A = [a, b, c], B = [b, a, c]: X_1 = 0, X_2 = 2, X_3 = 3, so the agreements X_d/d are 0, 1, 1.
    #   = 1 * 0.729 + (0.1 / 0.9) * (0 * 0.9 + 1 * 0.81 + 1 * 0.729)
    #   = 0.729 + 1.539 / 9 = 0.729 + 0.171 = 0.9
    assert rbo(list("abc"), list("bac"), p=0.9) == pytest.approx(0.9, abs=1e-12)
    # A = [a, b, c], B = [a, c, d]: X_1 = 1, X_2 = 1 ({a}), X_3 = 2 ({a, c}); agreements 1, 1/2, 2/3.
    #   = (2/3) * 0.729 + (1/9) * (1 * 0.9 + 0.5 * 0.81 + (2/3) * 0.729)
    #   = 0.486 + (0.9 + 0.405 + 0.486) / 9 = 0.486 + 0.199 = 0.685
    assert rbo(list("abc"), list("acd"), p=0.9) == pytest.approx(0.685, abs=1e-12)
    # Identical lists score 1 (extrapolated, not the lower bound 1 - p^k); disjoint lists 0.
    assert rbo(list("abcdef"), list("abcdef")) == pytest.approx(1.0, abs=1e-12)
    assert rbo(list("abc"), list("xyz")) == 0.0
    # Swapping the top two costs more than swapping the bottom two (top-weighted).
    assert rbo(list("abcde"), list("bacde")) < rbo(list("abcde"), list("abced"))


def test_largest_disagreements():
    a = ["a", "b", "c", "d", "e"]
    b = ["e", "b", "c", "d", "a"]
    rows = largest_disagreements(a, b)
    assert [(r["id"], r["rank_a"], r["rank_b"]) for r in rows] == [("a", 1, 5), ("e", 5, 1)]
    assert largest_disagreements(a, a) == []


# --- the command line: agreement and cross@precision ------------------------------------------

@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("side_by_side"))


def test_parse_rerankers_with_precisions():
    assert parse_rerankers("cross@fp32, cross@bf16,cross@int8") == ("cross@fp32", "cross@bf16", "cross@int8")
    assert parse_rerankers("late,cross") == ("late", "cross")
    for bad in ("late@int8", "cross@fp16", "cross@int8,cross@int8", "bm25"):
        with pytest.raises(ExplorerError):
            parse_rerankers(bad)


def test_our_int8_engine_and_onnxruntimes_file_are_two_columns_with_their_own_keys(corpus_file):
    """cross@int8-packed (our engine) beside cross@int8 (onnxruntime's file): each names its engine and
    gets its own key in models, precision and timings; "auto" says why it chose what it chose."""
    from explorer.engine.precision import cpu_kind

    assert parse_rerankers("cross@int8-packed,late@int8-packed") == ("cross@int8-packed", "late@int8-packed")
    data = run_cli("compare", "--query", "python snake", "--corpus", corpus_file, "--top-k", "5",
                   "--rerankers", "cross,cross@int8-packed,cross@int8", "--json")
    stages = data["stages"]
    assert [s["engine"] for s in stages[2:]] == ["packed int8 (oneDNN)", "onnxruntime"]
    assert stages[2]["runs_on"] == "int8 on cpu" and stages[3]["runs_on"] == "int8 on cpu"
    assert f"auto on {cpu_kind()}" in stages[1]["runs_on"]  # the comparison's own precision, auto's choice
    assert set(data["models"]) == {"bi_encoder", "cross_encoder", "cross_encoder_int8_packed", "cross_encoder_int8"}
    assert {"rerank", "rerank_int8_packed", "rerank_int8"} <= set(data["timings_ms"])


def test_cli_same_reranker_at_three_precisions_with_agreement(corpus_file):
    data = run_cli("compare", "--query", "python snake", "--corpus", corpus_file, "--top-k", "5",
                   "--rerankers", "cross@fp32,cross@bf16,cross@int8", "--precision", "fp32", "--json")
    stages = data["stages"]
    assert [s["runs_on"] for s in stages] == ["fp32 on cpu", "fp32 on cpu", "bf16 on cpu", "int8 on cpu"]
    assert stages[3]["name"] == INT8_NAME and stages[3]["kind"] == "cross"
    assert set(data["models"]) == {"bi_encoder", "cross_encoder", "cross_encoder_bf16", "cross_encoder_int8"}
    timings = data["timings_ms"]
    assert {"rerank", "rerank_bf16", "rerank_int8"} <= set(timings)
    assert [s["ms"] for s in stages[1:]] == [timings["rerank"], timings["rerank_bf16"], timings["rerank_int8"]]
    # One agreement per pair of stages, recomputed here from the stages' own rankings.
    pairs = data["agreement"]
    assert len(pairs) == 6
    ids = [[h["id"] for h in s["ranking"]] for s in stages]
    for entry, (i, j) in zip(pairs, itertools.combinations(range(4), 2)):
        assert entry["a"] == f"{i}:{stages[i]['kind']}" and entry["b"] == f"{j}:{stages[j]['kind']}"
        assert entry["overlap_at_k"] == 1.0 and entry["k"] == 5 and entry["shared"] == 5  # same top-k
        tau = kendalltau([ids[i].index(d) for d in ids[i]], [ids[j].index(d) for d in ids[i]]).statistic
        assert entry["kendall_tau_shared"] == pytest.approx(tau)
        assert entry["rbo"] == pytest.approx(rbo(ids[i], ids[j], 0.9)) and entry["rbo_p"] == 0.9
    # The default call keeps its keys and adds only the agreement list (one pair: bi, cross).
    default = run_cli("compare", "--query", "python snake", "--corpus", corpus_file, "--top-k", "3",
                      "--precision", "fp32", "--json")
    assert len(default["agreement"]) == 1 and default["agreement"][0]["b"] == "1:cross"
    assert not any("Sanity probe" in note for note in default["notes"])  # the real models pass


# --- the sanity probe --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cross():
    return load_model(DEFAULT_CROSS_ENCODER, "cross")


def bi_encoder_as_cross_encoder(folder) -> CrossEncoder:
    """MiniLM's bi-encoder weights in a BertForSequenceClassification: its relevance head is random.
    Saved as a model folder and loaded the way any cross-encoder folder is."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    source = str(_offline_bi_encoder_dir())
    torch.manual_seed(0)
    BertForSequenceClassification.from_pretrained(source, num_labels=1).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return CrossEncoder(load_model(str(folder), "cross", allow_local_path=True), "fp32")


def test_probe_flags_a_bi_encoder_loaded_as_a_cross_encoder(cross, tmp_path):
    wrong = run_probe(bi_encoder_as_cross_encoder(tmp_path / "minilm-as-cross"))
    assert wrong.verdict in ("flat", "inverted"), wrong
    assert "Sanity probe" in wrong.note() and wrong.verdict in wrong.note()
    right = run_probe(CrossEncoder(cross, "fp32"))
    assert right.verdict == "ok" and right.above == right.triples == 10
    assert min(right.relevant) > max(right.irrelevant)  # the real cross-encoder separates them cleanly
    bi = run_probe(BiEncoder(load_model("sentence-transformers/all-MiniLM-L6-v2", "bi"), "fp32"))
    assert bi.verdict == "ok"


def test_probe_verdicts_on_made_up_scores():
    assert verdict_of([5.0] * 10, [0.0] * 10).verdict == "ok"
    assert verdict_of([0.0] * 10, [5.0] * 10).verdict == "inverted"
    assert verdict_of([1.0] * 10, [1.0] * 10).verdict == "flat"  # no spread at all
    assert verdict_of([1, 0] * 5, [0, 1] * 5).verdict == "flat"  # half right, half wrong


# --- the int8 ONNX original --------------------------------------------------------------------

PAIRS = [
    ("what is the capital of France?", "Paris is the capital of France."),
    ("what is the capital of France?", "London is the capital of England."),
    ("what is the capital of France?", "The Eiffel Tower is in Paris."),
    ("python snake", "Ball pythons are popular pet snakes, native to west and central Africa."),
    ("python snake", "Python is a programming language."),
]


def test_int8_scorer_equals_onnxruntime_called_directly():
    import onnxruntime
    from tokenizers import Tokenizer

    ranker = load_onnx_cross_encoder()
    assert ranker.info.name == INT8_NAME
    assert (ranker.info.kind, ranker.info.precision, ranker.info.engine) == ("cross", "int8", "onnxruntime")
    ours = ranker.score([q for q, _ in PAIRS], [d for _, d in PAIRS]).scores
    # Independently: the file's own tokenizer.json (the `tokenizers` library) and a fresh session, one pair each.
    tokenizer = Tokenizer.from_file(str(onnx_path().parent / "tokenizer.json"))
    assert tokenizer.padding["length"] == 512  # the file's tokenizer pads every pair to 512 ...
    tokenizer.no_padding()  # ... which moves int8 scores; the ranker scores pairs unpadded
    session = onnxruntime.InferenceSession(str(onnx_path()), providers=["CPUExecutionProvider"])
    for (query, document), score in zip(PAIRS, ours):
        encoding = tokenizer.encode(query, document)
        feeds = {"input_ids": np.array([encoding.ids], dtype=np.int64),
                 "attention_mask": np.array([encoding.attention_mask], dtype=np.int64),
                 "token_type_ids": np.array([encoding.type_ids], dtype=np.int64)}
        assert score == pytest.approx(float(session.run(None, feeds)[0][0, 0]), abs=1e-5)
    # Scored alone or in a list: the same numbers (each pair runs unpadded, by itself).
    alone = [ranker.score([q], [d]).scores[0] for q, d in PAIRS]
    np.testing.assert_array_equal(alone, ours)


def test_int8_order_agrees_with_the_fp32_rebuild_wherever_the_gap_exceeds_its_error(cross):
    """The property protected: int8 ranks documents as fp32 does, except near-ties.

    Each score may move by up to INT8_LOGIT_ERROR, so two documents can only swap when their fp32
    scores are within twice that; every pair further apart must keep its order. Below the top
    few, most documents sit at the logit floor (about -11, gaps of 0.01), where swaps are allowed:
    on an AVX-512 VNNI EPYC documents 11 and 17 (both -11.17 for "hot drink without caffeine")
    trade places.
    """
    from explorer.data.builtin_corpora import load_set

    labelled = load_set("negation")
    fp32, int8 = CrossEncoder(cross, "fp32"), load_onnx_cross_encoder()
    texts = labelled.corpus.texts
    ordered_pairs = 0
    for query in labelled.queries:
        a = fp32.score_query(query.text, texts).scores
        b = int8.score_query(query.text, texts).scores
        assert np.abs(a - b).max() <= INT8_LOGIT_ERROR, query.text
        for i, j in itertools.permutations(range(len(texts)), 2):
            if a[i] - a[j] > 2 * INT8_LOGIT_ERROR:
                ordered_pairs += 1
                assert b[i] > b[j], (query.text, i, j, a[i], a[j], b[i], b[j])
        # The protected pairs include each query's best document against all others on six of
        # the eight queries; on "london to singapore" (6.37 vs 5.90) and "fruits that are not
        # sweet" (gap 1.84) the top two are closer than twice the bound.
    # Not vacuous: 325 of the 8 x 171 document pairs are far enough apart to be checked here (the
    # top two or three documents of each query against the 16 or so at the floor).
    assert ordered_pairs >= 300, ordered_pairs


# --- the benchmark peer ------------------------------------------------------------------------


def test_bench_engines_on_a_handful_of_pairs(cross):
    """The engines benchmark runs ours and the onnxruntime peer on the same pairs and reports agreement with
    fp32: fp32 against itself is perfect, and our int8 stays close to it."""
    from explorer.tools.int8_bench import bench_engines

    passages = [d for _, d in PAIRS] + ["Cats purr when they are content.", "The Berlin wall fell in 1989."]
    result = bench_engines(cross, passages, ["python snake", "capital of France"], repeats=3, count=6)
    assert result["pairs"] == 6
    rows = result["engines"]
    assert {"fp32", "int8", "onnxruntime int8"} <= set(rows)
    assert all(row["fastest_round_pairs_per_s"] >= row["pairs_per_s"] > 0 for row in rows.values())
    # Fastest round against fastest round is the two fastest rounds' own ratio.
    assert result["int8_vs_onnxruntime_fastest_rounds"] == pytest.approx(
        rows["int8"]["fastest_round_pairs_per_s"] / rows["onnxruntime int8"]["fastest_round_pairs_per_s"], rel=0.05)
    assert "onnxruntime" in rows["onnxruntime int8"]["engine"] and "packed int8" in rows["int8"]["engine"]
    assert rows["fp32"]["agreement_with_fp32"] == {"spearman": 1.0, "top10_overlap": 1.0, "max_abs_logit_diff": 0.0}
    assert rows["int8"]["agreement_with_fp32"]["spearman"] > 0.8
    assert result["auto"]["precision"] in rows
