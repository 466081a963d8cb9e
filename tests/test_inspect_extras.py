"""Inspect's long-document marks, passage view, method table and the late-interaction alignment.
References are computed here independently: the tokenizer's own cut, each window scored alone,
and the late-interaction states taken straight from the backbone module."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
import torch

from explorer.interpret.attribution import occlusion_attribution
from explorer.interpret.pair import encode_pair
from explorer.interpret.passages import passage_scores, truncation_point
from explorer.rankers.cross_encoder import CrossEncoder

QUERY = "what is the capital of France?"
FILLER = ("The committee met on Tuesday to discuss the annual budget, the parking arrangements and "
          "the Eyjafjallajokull excursion of the summer festival, without reaching any decision. ")
ANSWER = "Paris is the capital of France and its largest city. "
LONG_DOC = FILLER * 20 + ANSWER + FILLER * 6


def _text(fragment: str) -> str:
    """What a reader sees of an HTML fragment: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


@pytest.fixture(scope="module")
def scorer(cross_model):
    return CrossEncoder(cross_model, "fp32")


def test_page_marks_the_cut_where_the_tokenizer_cuts(scorer):
    from explorer.views.attention_plots import CUT_MARK, attribution_html

    pair = encode_pair(scorer, QUERY, LONG_DOC)
    cut = truncation_point(scorer, QUERY, LONG_DOC)
    assert cut is not None and pair.cut_char == cut
    page = attribution_html(pair.document, occlusion_attribution(scorer, pair), pair.cut_char, scorer.max_length)
    before, mark, after = page.partition("<span class='cut-mark'")
    assert mark and CUT_MARK in after
    assert _text(before).replace(CUT_MARK, "").endswith(LONG_DOC[:cut][-60:])
    unread = re.search(r"<span class='unread'[^>]*>(.*?)</span>", after, re.S).group(1)
    assert html.unescape(unread) == LONG_DOC[cut:]  # everything after the mark, and only that, is greyed
    assert "Paris" in html.unescape(unread)  # the answer is among what the model never read
    short = encode_pair(scorer, QUERY, "Paris is the capital of France.")
    assert short.cut_char is None
    assert "cut-mark" not in attribution_html(short.document, occlusion_attribution(scorer, short), None)


def test_passage_view_shows_the_best_window_scored_alone(scorer):
    from explorer.views.long_document import passage_scores_html

    result = passage_scores(scorer, QUERY, LONG_DOC)
    page = passage_scores_html(LONG_DOC, result, scorer.max_length)
    one_by_one = [float(scorer.score_query(QUERY, [LONG_DOC[w.start:w.end]]).logits[0]) for w in result.windows]
    shown = [float(s) for s in re.findall(r"<span class='window-score'>([-0-9.]+)</span>", page)]
    np.testing.assert_allclose(shown, one_by_one, atol=1e-3)
    best = int(np.argmax(one_by_one))
    assert f"best window of {len(result.windows)}" in page
    assert float(re.search(r"data-best-score='([-0-9.]+)'", page).group(1)) == pytest.approx(one_by_one[best], abs=1e-4)
    highlighted = "".join(re.findall(r"<mark class='best-window'[^>]*>(.*?)</mark>", page, re.S))
    assert _text(highlighted) == LONG_DOC[result.windows[best].start:result.windows[best].end]
    assert "Paris" in _text(highlighted)


def test_method_table_shows_all_three_and_the_convergence_delta(scorer):
    from explorer.interpret.contrast import agreement_of, every_method
    from explorer.views.methods_html import methods_html

    document = "Paris is the capital of France; the Eiffel Tower stands on the Champ de Mars."
    found = every_method(scorer, encode_pair(scorer, QUERY, document), steps=20)
    page = methods_html(found, agreement_of(found))
    assert f"convergence delta {found['ig'].convergence_delta:+.4f}" in page
    rows = re.findall(r"<tr><td class='word'>(.*?)</td>(.*?)</tr>", page, re.S)
    assert [html.unescape(word) for word, _ in rows] == [w["word"] for w in found["ig"].words]
    for (_, cells), occ, grad, ig in zip(rows, found["occlusion"].words, found["gradxinput"].words, found["ig"].words):
        assert re.findall(r">([-+0-9.]+)</td>", cells) == [f"{occ['delta']:+.3f}", f"{grad['delta']:+.3f}", f"{ig['delta']:+.3f}"]


@pytest.fixture(scope="module")
def late():
    from explorer.rankers.late_interaction import load_late_interaction

    return load_late_interaction(precision="fp32")


def test_late_alignment_sums_to_maxsim_and_matches_brute_force(late):
    from explorer.interpret.late_alignment import late_alignment

    document = "Paris is the capital of France; the Eiffel Tower stands on the Champ de Mars."
    alignment = late_alignment(late, QUERY, document)
    assert alignment.contributions.sum() == pytest.approx(float(late.score([QUERY], [document]).scores[0]), abs=1e-5)
    assert alignment.score == pytest.approx(float(alignment.contributions.sum()), abs=1e-6)
    assert "no projection head" in alignment.model_name

    # Brute force, straight from the backbone: own word pieces only, L2-normalised, argmax by numpy.
    def states(text):
        encoded = late.tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            hidden = late.model.module(**encoded).last_hidden_state[0].double().numpy()
        ids = encoded["input_ids"][0].tolist()
        keep = [i for i, t in enumerate(ids) if t not in (late.tokenizer.cls_token_id, late.tokenizer.sep_token_id)]
        vectors = hidden[keep] / np.linalg.norm(hidden[keep], axis=1, keepdims=True)
        return vectors, late.tokenizer.convert_ids_to_tokens([ids[i] for i in keep])

    q, q_tokens = states(QUERY)
    d, d_tokens = states(document)
    cosine = q @ d.T
    assert alignment.query_tokens == q_tokens and alignment.doc_tokens == d_tokens
    np.testing.assert_array_equal(alignment.best, cosine.argmax(axis=1))
    np.testing.assert_allclose(alignment.contributions, cosine.max(axis=1), atol=1e-5)


def test_a_kept_attribution_equals_a_fresh_one_and_follows_the_edit(scorer):
    """After an edit of A, B's attribution is taken from the last call; every number still equals
    a computation from scratch, and A's is the edited text's."""
    from explorer.interpret import contrast

    doc_a = "Paris is the capital of France; the Eiffel Tower stands on the Champ de Mars."
    doc_b = "Lyon is a large city in France, known for its food and its silk weavers."
    edited = doc_a.replace("capital", "largest city")
    first = contrast.explain_pair_gap(scorer, QUERY, doc_a, doc_b)
    second = contrast.explain_pair_gap(scorer, QUERY, edited, doc_b)
    contrast.forget_kept_attributions()
    fresh = contrast.explain_pair_gap(scorer, QUERY, edited, doc_b)
    assert second.attribution_b == first.attribution_b
    assert [w["word"] for w in second.attribution_a] == [w["word"] for w in fresh.attribution_a]
    np.testing.assert_allclose([w["delta"] for w in second.attribution_a + second.attribution_b],
                               [w["delta"] for w in fresh.attribution_a + fresh.attribution_b], atol=1e-4)
    alone = [float(scorer.score_query(QUERY, [text]).logits[0]) for text in (edited, doc_b)]
    assert second.gap == pytest.approx(alone[0] - alone[1], abs=1e-4)
    assert second.score_a != pytest.approx(first.score_a, abs=1e-3)  # the edit changed A's score


def test_undo_drops_the_last_edit_and_brings_back_the_text_before_it(cross_model):
    """The contrast panel's "Undo last edit": two edits of A rescored, then undone one at a time;
    each undo restores the box to the text before that edit, and the view explains that text."""
    from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
    from explorer.ui.contrast_panel import on_rescore, on_undo

    doc_a = "Paris is the capital of France; the Eiffel Tower stands on the Champ de Mars."
    doc_b = "Lyon is a large city in France, known for its food and its silk weavers."
    first_edit, second_edit = doc_a.replace("capital", "largest city"), "Marseille is a port in France."
    state = {"query": QUERY, "texts": {"a": doc_a, "b": doc_b}, "ranks": {"a": 1, "b": 2},
             "cross_encoder": DEFAULT_CROSS_ENCODER}
    picks, edits = ["a", "b"], []
    for text in (first_edit, second_edit):
        edits = list(on_rescore(state, picks, edits, text, "occlusion"))[-1][0]
    assert [e["text_before"] for e in edits] == [doc_a, first_edit]
    assert [e["text_after"] for e in edits] == [first_edit, second_edit]
    alone = CrossEncoder(cross_model, "fp32").score_query(QUERY, [doc_a, first_edit, second_edit]).logits
    assert [e["score_after"] for e in edits] == pytest.approx([alone[1], alone[2]], abs=1e-4)

    edits, box, _, view = on_undo(state, picks, edits, "occlusion")
    assert [e["text_after"] for e in edits] == [first_edit] and box == first_edit
    assert "largest city" in _text(view) and "Marseille" not in _text(view)
    edits, box, _, view = on_undo(state, picks, edits, "occlusion")
    assert edits == [] and box == doc_a and "capital" in _text(view)
    # Nothing left to undo: nothing changes.
    assert on_undo(state, picks, [], "occlusion")[0] == []
