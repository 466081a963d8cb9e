"""Why is A above B: Integrated Gradients, the pair gap, agreement of methods, edit and rescore,
long documents, and the `explain` command line contract. References are computed here
independently: plain fp32 rescoring, the tokenizer's own offsets and word ids."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from explorer.errors import ExplorerError
from explorer.interpret.attribution import gradient_attribution, occlusion_attribution, remove_span
from explorer.interpret.contrast import explain_pair_gap, method_agreement
from explorer.interpret.integrated_gradients import integrated_gradients
from explorer.interpret.pair import encode_pair
from explorer.interpret.passages import passage_scores, truncation_point
from explorer.interpret.rescore import edit_and_rescore, rank_among, word_changes
from explorer.rankers.cross_encoder import CrossEncoder

QUERY = "what is the capital of France?"
DOC_A = "Paris is the capital of France; the Eiffel Tower stands on the Champ de Mars."
DOC_B = "Lyon is a large city in France, known for its food and its silk weavers."


@pytest.fixture(scope="module")
def scorer(attention_model):
    """As `inspection_model` binds it: the eager-attention copy, fp32."""
    return CrossEncoder(attention_model, "fp32")


@pytest.fixture(scope="module")
def reference(cross_model):
    """Independent scoring: the plain cross-encoder in fp32, as re-ranking runs it."""
    model = CrossEncoder(cross_model, "fp32")
    return lambda query, docs: [float(s) for s in model.score([query] * len(docs), docs).logits]


@pytest.fixture(scope="module")
def ig_a(scorer):
    return integrated_gradients(scorer, encode_pair(scorer, QUERY, DOC_A))


# --- Integrated Gradients -------------------------------------------------------------------


def test_ig_completeness_sum_equals_score_minus_baseline(ig_a, reference):
    assert ig_a.score == pytest.approx(reference(QUERY, [DOC_A])[0], abs=1e-4)
    total = ig_a.token_scores.sum()
    # captum's delta is exactly (sum of attributions) - (score - baseline) ...
    assert total - (ig_a.score - ig_a.baseline_logit) == pytest.approx(ig_a.convergence_delta, abs=1e-3)
    # ... and it is small: 50 Gauss-Legendre steps make the sum nearly the whole difference.
    assert abs(total - (ig_a.score - ig_a.baseline_logit)) <= abs(ig_a.convergence_delta) + 1e-3
    assert abs(ig_a.convergence_delta) < 0.05 * abs(ig_a.score - ig_a.baseline_logit)
    assert ig_a.scores.sum() == pytest.approx(total, abs=1e-4)  # every document token is in a word


def test_ig_baseline_is_the_pair_with_the_document_padded(ig_a, cross_model):
    """Recompute the baseline's logit from the tokenizer: document tokens -> [PAD], the rest kept."""
    tokenizer = cross_model.tokenizer
    features = tokenizer(QUERY, DOC_A, return_tensors="pt")
    ids = features["input_ids"].clone()
    document = [i for i, s in enumerate(features.sequence_ids(0)) if s == 1]
    assert tokenizer.convert_ids_to_tokens(ids[0, [0, document[0] - 1, -1]].tolist()) == ["[CLS]", "[SEP]", "[SEP]"]
    ids[0, document] = tokenizer.pad_token_id
    with torch.inference_mode():
        logit = cross_model.module(input_ids=ids, attention_mask=features["attention_mask"],
                                   token_type_ids=features["token_type_ids"]).logits[0, 0]
    assert ig_a.baseline_logit == pytest.approx(float(logit), abs=1e-4)
    # Query and special tokens are the same at both ends of the path: exactly no attribution.
    outside = [i for i, s in enumerate(features.sequence_ids(0)) if s != 1]
    assert np.all(ig_a.token_scores[outside] == 0)


def test_ig_words_sum_their_pieces(ig_a, cross_model):
    encoding = cross_model.tokenizer(QUERY, DOC_A)
    sequence, word_ids = encoding.sequence_ids(), encoding.word_ids()
    words = sorted({w for w, s in zip(word_ids, sequence) if s == 1})
    expected = [sum(ig_a.token_scores[i] for i, (w, s) in enumerate(zip(word_ids, sequence)) if s == 1 and w == word)
                for word in words]
    assert any(sum(1 for w, s in zip(word_ids, sequence) if s == 1 and w == word) > 1 for word in words)
    np.testing.assert_allclose(ig_a.scores, expected, atol=1e-6)
    assert ig_a.words[:4] == ["Paris", "is", "the", "capital"]
    assert max(ig_a.words, key=lambda w: ig_a.scores[ig_a.words.index(w)]) in ("capital", "France", "Paris")


# --- Why is A above B -----------------------------------------------------------------------


def test_occlusion_gap_and_sign_convention(scorer, reference):
    result = explain_pair_gap(scorer, QUERY, DOC_A, DOC_B, "occlusion")
    score_a, score_b = reference(QUERY, [DOC_A]) + reference(QUERY, [DOC_B])
    assert result.score_a == pytest.approx(score_a, abs=1e-4)
    assert result.score_b == pytest.approx(score_b, abs=1e-4)
    assert result.gap == pytest.approx(score_a - score_b, abs=1e-4) and result.gap > 0
    # delta = full - score without the word: positive means the word raised the score.
    for item in result.attribution_a[:3] + result.attribution_b[-2:]:
        document = DOC_A if item in result.attribution_a else DOC_B
        full = score_a if document is DOC_A else score_b
        without = reference(QUERY, [remove_span(document, item["start"], item["end"])])[0]
        assert item["delta"] == pytest.approx(full - without, abs=1e-4)
    capital = next(w for w in result.attribution_a if w["word"] == "capital")
    assert capital["delta"] > 1.0
    data = result.to_dict()
    json.dumps(data)
    assert "full score - score with the word deleted" in data["attribution_unit"]
    assert "baseline_a" not in data
    assert data["summary"][0].startswith("A scores") and "capital" in data["summary"][1]


def test_occlusion_first_view_deletes_runs_and_keeps_nothing(scorer, reference):
    """The contrast view's first look: at most FIRST_VIEW_OCCLUSION_PASSES runs per document, each
    delta an exact rescoring without that run; the word-level view after it is computed afresh."""
    from explorer.budgets import FIRST_VIEW_OCCLUSION_PASSES
    from explorer.interpret.contrast import forget_kept_attributions

    forget_kept_attributions()
    first = explain_pair_gap(scorer, QUERY, DOC_A, DOC_B, "occlusion", first_view=True)
    score_a, score_b = reference(QUERY, [DOC_A]) + reference(QUERY, [DOC_B])
    assert first.gap == pytest.approx(score_a - score_b, abs=1e-4)
    for runs, document, full in ((first.attribution_a, DOC_A, score_a), (first.attribution_b, DOC_B, score_b)):
        spans = encode_pair(scorer, QUERY, document).document_word_spans()
        assert len(runs) <= FIRST_VIEW_OCCLUSION_PASSES < len(spans)
        assert (runs[0]["start"], runs[-1]["end"]) == (spans[0][0], spans[-1][1])  # the runs tile every word
        for run in runs[:2]:
            without = reference(QUERY, [remove_span(document, run["start"], run["end"])])[0]
            assert run["delta"] == pytest.approx(full - without, abs=1e-4)
    assert any("First view" in note for note in first.notes)
    words = explain_pair_gap(scorer, QUERY, DOC_A, DOC_B, "occlusion")
    spans_a = encode_pair(scorer, QUERY, DOC_A).document_word_spans()
    assert len(words.attribution_a) == len(spans_a) and not any("First view" in n for n in words.notes)


def test_gradxinput_is_the_existing_gradient_attribution(scorer):
    result = explain_pair_gap(scorer, QUERY, DOC_A, DOC_B, "gradxinput")
    reference = gradient_attribution(scorer, encode_pair(scorer, QUERY, DOC_B))
    assert [w["word"] for w in result.attribution_b] == reference.words
    np.testing.assert_allclose([w["delta"] for w in result.attribution_b], reference.scores, atol=1e-6)


def test_unknown_method_is_a_user_error(scorer):
    with pytest.raises(ExplorerError):
        explain_pair_gap(scorer, QUERY, DOC_A, DOC_B, "shap")


def test_summary_reads_the_numbers():
    from explorer.interpret.contrast import PairGap, summarize_gap

    gap = PairGap("q", "ig", "unit", 3.0, 1.0, 2.0,
                  [{"word": "alpha", "delta": 2.0}, {"word": "shared", "delta": 0.5}, {"word": "x,", "delta": -0.1}],
                  [{"word": "beta", "delta": -1.5}, {"word": "Shared.", "delta": 0.2}, {"word": "gamma", "delta": 0.3}], [])
    lines = summarize_gap(gap)
    assert "above B by 2.00" in lines[0]
    assert lines[1] == "Words that add most to A: alpha (+2.00), shared (+0.50)."
    assert lines[2] == "Words B loses most on: beta (-1.50)."
    assert lines[3] == "In both documents: shared (A +0.50, B +0.20)."
    assert lines[4] == "Only in A, most helpful: alpha (+2.00)."
    assert lines[5] == "Only in B, most helpful: gamma (+0.30)."


# --- Agreement of methods -------------------------------------------------------------------


def test_agreement_aligns_occlusion_signs(scorer, ig_a):
    pair = encode_pair(scorer, QUERY, DOC_A)
    found = method_agreement(scorer, pair)
    occlusion = occlusion_attribution(scorer, pair)
    gradients = gradient_attribution(scorer, pair)
    contributions = -np.array([w.delta for w in occlusion.words])  # aligned: positive raises the score
    expected_oi = spearmanr(contributions, ig_a.scores).statistic
    expected_og = spearmanr(contributions, gradients.scores).statistic
    assert found["spearman"]["occlusion~ig"] == pytest.approx(expected_oi, abs=0.02)
    assert found["spearman"]["occlusion~gradxinput"] == pytest.approx(expected_og, abs=1e-6)
    # Both measure the same thing here: the key words lead either way, so aligned ranks agree.
    assert found["spearman"]["occlusion~ig"] > 0.3
    assert found["units"] == len(occlusion.words)


# --- Edit and rescore -----------------------------------------------------------------------


def test_rescore_equals_scoring_the_edited_text(scorer, reference):
    edited = DOC_B.replace("Lyon is a large city", "Paris is the capital")
    others = [5.0, -2.0, 0.1, -9.0]
    result = edit_and_rescore(scorer, QUERY, DOC_B, edited, others)
    before, after = reference(QUERY, [DOC_B, edited])
    assert result.score_before == pytest.approx(before, abs=1e-4)
    assert result.score_after == pytest.approx(after, abs=1e-4)
    assert result.delta == pytest.approx(after - before, abs=1e-4)
    assert result.changes == [  # "is" is kept: only the words around it changed
        {"op": "replace", "before": "Lyon", "after": "Paris", "word": 0},
        {"op": "replace", "before": "a large city", "after": "the capital", "word": 2},
    ]
    for score, rank in ((before, result.rank_before), (after, result.rank_after)):
        assert rank == sorted([*others, score], reverse=True).index(score) + 1
    assert result.rank_after < result.rank_before


def test_word_changes_and_ranks():
    assert word_changes("a b c d", "a c d e") == [
        {"op": "delete", "before": "b", "after": "", "word": 1},
        {"op": "insert", "before": "", "after": "e", "word": 4},
    ]
    assert rank_among(1.0, [2.0, 1.0, 0.5]) == 2
    assert rank_among(3.0, []) == 1


# --- Long documents -------------------------------------------------------------------------

FILLER = ("The committee met on Tuesday to discuss the annual budget, the parking arrangements and "
          "the Eyjafjallajokull excursion of the summer festival, without reaching any decision. ")
ANSWER = "Paris is the capital of France and its largest city. "
LONG_DOC = FILLER * 20 + ANSWER + FILLER * 6


def test_truncation_mark_is_where_the_tokenizer_cuts(scorer, reference, cross_model):
    cut = truncation_point(scorer, QUERY, LONG_DOC)
    tokenizer = cross_model.tokenizer
    query_tokens = len(tokenizer(QUERY, add_special_tokens=False)["input_ids"])
    alone = tokenizer(LONG_DOC, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    kept = cross_model.max_length - query_tokens - 3
    assert cut == alone[kept - 1][1]
    assert LONG_DOC.find(ANSWER) > cut  # the answer lies past what the model reads
    # The model reads the same thing from the document cut there as from the whole of it.
    whole, cut_text = reference(QUERY, [LONG_DOC, LONG_DOC[:cut]])
    assert whole == pytest.approx(cut_text, abs=1e-5)
    assert truncation_point(scorer, QUERY, DOC_A) is None


def test_passage_score_is_the_best_window_scored_alone(scorer, reference, cross_model):
    result = passage_scores(scorer, QUERY, LONG_DOC, window=128, stride=64)
    texts = [LONG_DOC[w.start:w.end] for w in result.windows]
    one_by_one = [reference(QUERY, [text])[0] for text in texts]
    np.testing.assert_allclose([w.score for w in result.windows], one_by_one, atol=1e-4)
    assert result.best_window_score == pytest.approx(max(one_by_one), abs=1e-4)
    assert result.best == int(np.argmax(one_by_one))
    best = result.windows[result.best]
    assert best.start <= LONG_DOC.find("Paris") and LONG_DOC.find("largest city") < best.end
    assert result.best_window_score > result.document_score + 2  # the cut document misses the answer
    assert "best window" in result.label
    # Windows: at most `window` tokens, start on whole words, cover the document, step by <= stride.
    tokenizer = cross_model.tokenizer
    encoded = tokenizer(LONG_DOC, add_special_tokens=False)
    assert result.document_tokens == len(encoded["input_ids"])
    assert all(w.last_token - w.first_token <= 128 for w in result.windows)
    assert result.windows[0].first_token == 0 and result.windows[-1].last_token == result.document_tokens
    word_ids = encoded.word_ids()
    # A window every stride: window k starts at the first piece of the word holding token k * 64.
    assert [w.first_token for w in result.windows] == [word_ids.index(word_ids[k * 64]) for k in range(len(result.windows))]
    assert all(b.first_token < a.last_token for a, b in zip(result.windows, result.windows[1:]))  # no gap
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"]) + ["[END]"]
    assert any(p.startswith("##") for p in pieces)
    assert all(not pieces[w.first_token].startswith("##") and not pieces[w.last_token].startswith("##")
               for w in result.windows)  # no window starts or ends inside a word
    assert result.cut_char == truncation_point(scorer, QUERY, LONG_DOC)


def test_window_that_does_not_fit_is_a_user_error(scorer):
    with pytest.raises(ExplorerError):
        passage_scores(scorer, QUERY, LONG_DOC, window=600)
    with pytest.raises(ExplorerError):
        passage_scores(scorer, QUERY, LONG_DOC, window=100, stride=0)


# --- Command line ---------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str, str]:
    from explorer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_explain_occlusion_json(reference):
    code, out, _ = run_cli("explain", "--query", QUERY, "--doc", DOC_A, "--versus", DOC_B, "--json")
    assert code == 0
    data = json.loads(out)
    score_a, score_b = reference(QUERY, [DOC_A]) + reference(QUERY, [DOC_B])
    assert data["method"] == "occlusion"
    assert data["score_a"] == pytest.approx(score_a, abs=1e-4) and data["score_b"] == pytest.approx(score_b, abs=1e-4)
    assert data["gap"] == pytest.approx(score_a - score_b, abs=1e-4)
    assert [w["word"] for w in data["attribution_b"]][:3] == ["Lyon", "is", "a"]
    assert all(set(w) >= {"word", "delta"} for w in data["attribution_a"] + data["attribution_b"])


def test_cli_explain_ig_completeness_for_both_documents(reference):
    code, out, _ = run_cli("explain", "--query", QUERY, "--doc", DOC_A, "--versus", DOC_B, "--method", "ig", "--json")
    assert code == 0
    data = json.loads(out)
    score_a, score_b = reference(QUERY, [DOC_A]) + reference(QUERY, [DOC_B])
    assert data["gap"] == pytest.approx(score_a - score_b, abs=1e-4)
    assert "[PAD]" in data["baseline"]
    for side, score in (("a", score_a), ("b", score_b)):
        total = sum(w["delta"] for w in data[f"attribution_{side}"])
        delta = data[f"convergence_delta_{side}"]
        assert abs(total - (score - data[f"baseline_{side}"])) <= abs(delta) + 2e-3


def test_cli_explain_text_and_user_errors():
    code, out, _ = run_cli("explain", "--query", QUERY, "--doc", DOC_A, "--versus", DOC_B, "--method", "gradxinput")
    assert code == 0 and out.startswith(f"Query: {QUERY}\nA scores") and "Document B: Lyon[" in out
    code, out, err = run_cli("explain", "--query", QUERY, "--doc", DOC_A, "--versus", "   ", "--json")
    assert code == 2 and out == "" and err.startswith("error: Document B: ") and err.count("\n") == 1
    code, _, err = run_cli("explain", "--query", QUERY, "--doc", DOC_A, "--versus", DOC_B, "--method", "ig", "--steps", "0")
    assert code == 2 and "--steps" in err


def test_cli_explain_agreement_gives_each_documents_method_spearman(scorer):
    """`explain --agreement`: per document, Spearman between the three methods' word attributions.
    Recomputed here for occlusion ~ gradient x input from the two methods run on their own (each
    checked against its own reference above: rescoring, captum); IG's needs its own steps."""
    code, out, _ = run_cli("explain", "--query", QUERY, "--doc", DOC_A, "--versus", DOC_B, "--agreement",
                           "--steps", "8", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data["agreement"]) == {"A", "B"}
    for side, document in (("A", DOC_A), ("B", DOC_B)):
        found = data["agreement"][side]
        pair = encode_pair(scorer, QUERY, document)
        occlusion = occlusion_attribution(scorer, pair)
        assert found["units"] == len(occlusion.words) and found["words_per_unit"] == 1
        contributions = -np.array([w.delta for w in occlusion.words])  # positive raises the score
        expected = spearmanr(contributions, gradient_attribution(scorer, pair).scores).statistic
        assert found["spearman"]["occlusion~gradxinput"] == pytest.approx(expected, abs=1e-6)
        assert set(found["spearman"]) == {"occlusion~ig", "occlusion~gradxinput", "ig~gradxinput"}
        assert all(-1.0 <= rho <= 1.0 for rho in found["spearman"].values())
    code, text, _ = run_cli("explain", "--query", QUERY, "--doc", DOC_A, "--versus", DOC_B, "--agreement",
                            "--steps", "8")
    assert code == 0 and "Agreement of methods on A (Spearman): occlusion~ig " in text
    assert "Agreement of methods on B (Spearman)" in text
