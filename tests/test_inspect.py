"""One pair inside the cross-encoder: attention blocks, word merges, attribution, CLI contract."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest
import torch

from explorer.interpret.attribution import gradient_attribution, occlusion_attribution, remove_span
from explorer.errors import ExplorerError
from explorer.interpret.pair import encode_pair
from explorer.rankers.cross_encoder import CrossEncoder
from explorer.interpret.attention import cross_attention_matrix, inspect_pair

QUERY = "what is the capital of France?"
DOC = "Paris is the capital of France; the Eiffel Tower stands on the Champ de Mars."


@pytest.fixture(scope="module")
def inspection(attention_model):
    return inspect_pair(CrossEncoder(attention_model, "fp32"), encode_pair(attention_model, QUERY, DOC))


def reference_attentions(model, query, document):
    """The model's own output_attentions for the pair, computed here independently."""
    features = model.tokenizer(query, document, return_tensors="pt")
    with torch.inference_mode():
        output = model.module(**features, output_attentions=True)
    tokens = model.tokenizer.convert_ids_to_tokens(features["input_ids"][0].tolist())
    types = features["token_type_ids"][0].tolist()
    return output, tokens, types


def test_tokens_and_positions_follow_the_model_input(inspection, attention_model):
    _, tokens, types = reference_attentions(attention_model, QUERY, DOC)
    assert inspection.tokens == tokens
    specials = {"[CLS]", "[SEP]"}
    assert inspection.query_index == [i for i, t in enumerate(tokens) if types[i] == 0 and t not in specials]
    assert inspection.doc_index == [i for i, t in enumerate(tokens) if types[i] == 1 and t not in specials]
    assert inspection.segment == types


@pytest.mark.parametrize("layer, head", [(0, 0), (3, 7), (11, 11)])
def test_block_is_exactly_the_models_attention_slice(inspection, attention_model, layer, head):
    output, _, _ = reference_attentions(attention_model, QUERY, DOC)
    full = output.attentions[layer][0, head].numpy()
    q, d = inspection.query_index, inspection.doc_index
    block = cross_attention_matrix(inspection, layer, head, "query_to_doc")
    assert np.array_equal(block.values, full[np.ix_(q, d)])
    back = cross_attention_matrix(inspection, layer, head, "doc_to_query")
    assert np.array_equal(back.values, full[np.ix_(d, q)])


def test_mean_and_max_over_heads_and_layers(inspection, attention_model):
    output, _, _ = reference_attentions(attention_model, QUERY, DOC)
    stacked = torch.cat(output.attentions).numpy()  # [layers, heads, seq, seq]
    q, d = inspection.query_index, inspection.doc_index
    mean_heads = cross_attention_matrix(inspection, 4, "mean").values
    np.testing.assert_allclose(mean_heads, stacked[4].mean(0)[np.ix_(q, d)], rtol=1e-6, atol=1e-7)
    max_heads = cross_attention_matrix(inspection, 4, "max").values
    assert np.array_equal(max_heads, stacked[4].max(0)[np.ix_(q, d)])
    mean_all = cross_attention_matrix(inspection, "mean", "mean").values
    np.testing.assert_allclose(mean_all, stacked.mean((0, 1))[np.ix_(q, d)], rtol=1e-5, atol=1e-7)


def test_every_full_attention_row_sums_to_one(inspection):
    sums = inspection.attentions.sum(axis=-1)
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)


def test_block_with_special_tokens_covers_the_segments(inspection):
    block = cross_attention_matrix(inspection, 2, 3, include_special=True)
    assert block.row_labels[0] == "[CLS]" and block.row_labels[-1] == "[SEP]"
    assert block.col_labels[-1] == "[SEP]"
    # Query segment to document segment plus the reverse and the two diagonal blocks is the whole row.
    same = cross_attention_matrix(inspection, 2, 3, "doc_to_query", include_special=True)
    assert block.values.shape == same.values.T.shape


def test_renormalised_rows_sum_to_one_and_keep_proportions(inspection):
    raw = cross_attention_matrix(inspection, 5, 1).values
    renormalised = cross_attention_matrix(inspection, 5, 1, renormalize=True).values
    np.testing.assert_allclose(renormalised.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(renormalised * raw.sum(axis=1, keepdims=True), raw, rtol=1e-5, atol=1e-8)


def test_word_level_merge_matches_the_token_matrix(attention_model):
    document = "The Eiffel Tower overlooks the Champ de Mars in Paris."
    query = "where is the eiffel tower?"
    inspection = inspect_pair(CrossEncoder(attention_model, "fp32"), encode_pair(attention_model, query, document))
    tokens = cross_attention_matrix(inspection, 6, 2, "query_to_doc")
    words = cross_attention_matrix(inspection, 6, 2, "query_to_doc", word_level=True)
    # Independent grouping: the tokenizer's own word ids.
    encoding = attention_model.tokenizer(query, document)
    word_ids = encoding.word_ids()
    q_words = [word_ids[i] for i in inspection.query_index]
    d_words = [word_ids[i] for i in inspection.doc_index]
    q_groups = [[k for k, w in enumerate(q_words) if w == word] for word in sorted(set(q_words))]
    d_groups = [[k for k, w in enumerate(d_words) if w == word] for word in sorted(set(d_words))]
    assert any(len(g) > 1 for g in d_groups), "the document should contain a multi-piece word"
    expected = np.array([[tokens.values[np.ix_(rows, cols)].sum(axis=1).mean() for cols in d_groups] for rows in q_groups])
    np.testing.assert_allclose(words.values, expected, rtol=1e-6, atol=1e-8)
    assert "Eiffel" in words.col_labels and "eiffel" in words.row_labels  # words as typed
    # Summing the attended pieces and averaging the attending ones keeps each row's total.
    row_totals = np.array([tokens.values[rows].sum(axis=1).mean() for rows in q_groups])
    np.testing.assert_allclose(words.values.sum(axis=1), row_totals, rtol=1e-5)


def test_score_equals_the_reranking_score(inspection, cross_model):
    reranked = CrossEncoder(cross_model, "fp32").score([QUERY], [DOC]).logits[0]
    assert inspection.score == pytest.approx(float(reranked), abs=1e-4)


def test_occlusion_delta_equals_rescoring_the_edited_document(cross_model):
    attribution = occlusion_attribution(CrossEncoder(cross_model, "fp32"), encode_pair(cross_model, QUERY, DOC))
    assert [w.word for w in attribution.words][:6] == ["Paris", "is", "the", "capital", "of", "France"]
    full = float(CrossEncoder(cross_model, "fp32").score([QUERY], [DOC]).logits[0])
    assert attribution.full_logit == pytest.approx(full, abs=1e-4)
    for word in attribution.words[:4] + attribution.words[-3:]:
        edited = remove_span(DOC, word.start, word.end)
        assert len(edited) == len(DOC) - len(word.word)
        rescored = float(CrossEncoder(cross_model, "fp32").score([QUERY], [edited]).logits[0])
        assert word.delta == pytest.approx(rescored - full, abs=1e-4)
    capital = next(w for w in attribution.words if w.word == "capital")
    assert capital.delta < -1.0  # removing the answer's key word must cost a lot of logit


def test_gradient_attribution_is_per_document_word(cross_model):
    gradients = gradient_attribution(CrossEncoder(cross_model, "fp32"), encode_pair(cross_model, QUERY, DOC))
    occlusion = occlusion_attribution(CrossEncoder(cross_model, "fp32"), encode_pair(cross_model, QUERY, DOC))
    assert gradients.words == [w.word for w in occlusion.words]


def test_gradient_x_input_equals_captums_layer_gradient_x_activation(cross_model):
    """The value, not just its finiteness: captum's LayerGradientXActivation on the word-embedding
    layer (gradient of the logit times that layer's output, per token), summed over each word's
    tokens, is what gradient x input reports for that word."""
    from captum.attr import LayerGradientXActivation

    pair = encode_pair(cross_model, QUERY, DOC)
    ours = gradient_attribution(CrossEncoder(cross_model, "fp32"), pair)
    module, features = cross_model.module, pair.features

    def logit(input_ids):
        return module(input_ids=input_ids, attention_mask=features["attention_mask"],
                      token_type_ids=features["token_type_ids"]).logits[:, 0]

    per_token = LayerGradientXActivation(logit, module.get_input_embeddings()).attribute(features["input_ids"])
    per_token = per_token.sum(-1)[0].detach().numpy()
    expected = [per_token[positions].sum() for positions, _ in pair.document_word_tokens().values()]
    assert len(expected) == len(ours.scores) == len(DOC.split()) + 2  # "France;" and "Mars." are two words each
    # Both are one backward pass through the same fp32 graph: equal to float rounding.
    np.testing.assert_allclose(ours.scores, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected).max() > 0.01  # not all zero


@pytest.mark.parametrize("layer, head", [(12, 0), (0, 12), (-1, 0), ("x", 0), (0, "min")])
def test_layer_and_head_out_of_range_are_user_errors(inspection, layer, head):
    with pytest.raises(ExplorerError):
        cross_attention_matrix(inspection, layer, head)


def test_layer_and_head_lists_fit_the_inspected_model(inspection):
    """A 6-layer, 8-head reranker gets lists of its own size; a choice it lacks goes back to mean."""
    from dataclasses import replace

    from explorer.ui.inspect_tab import fitted_choices

    seq = len(inspection.tokens)
    smaller = replace(inspection, attentions=np.zeros((6, 8, seq, seq), dtype=np.float32))
    layer, head = fitted_choices(smaller, "11", "3")
    assert layer["choices"] == ["mean", "0", "1", "2", "3", "4", "5"]
    assert layer["value"] == "mean"
    assert head["choices"] == ["mean", "max", *map(str, range(8))]
    assert head["value"] == "3"


def test_empty_texts_are_user_errors(attention_model):
    with pytest.raises(ExplorerError):
        inspect_pair(CrossEncoder(attention_model, "fp32"), encode_pair(attention_model, "  ", DOC))
    with pytest.raises(ExplorerError):
        inspect_pair(CrossEncoder(attention_model, "fp32"), encode_pair(attention_model, QUERY, ""))


def run_cli(*argv: str) -> tuple[int, str]:
    from explorer.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def test_cli_json_contract(attention_model, cross_model):
    code, out = run_cli("inspect", "--query", QUERY, "--doc", DOC, "--layer", "3", "--head", "5", "--json")
    assert code == 0
    data = json.loads(out)
    output, tokens, _ = reference_attentions(attention_model, QUERY, DOC)
    assert data["tokens"] == tokens
    q, d = data["query_index"], data["doc_index"]
    assert all(tokens[i] not in ("[CLS]", "[SEP]") for i in q + d)
    matrix = np.array(data["cross_attention"], dtype=np.float32)
    assert matrix.shape == (len(q), len(d))
    assert np.array_equal(matrix, output.attentions[3][0, 5].numpy()[np.ix_(q, d)])
    assert data["score"] == pytest.approx(float(output.logits[0, 0]), abs=1e-6)
    words = [item["word"] for item in data["attribution"]]
    assert words[:4] == ["Paris", "is", "the", "capital"]
    first = data["attribution"][0]
    edited = DOC.replace("Paris", "", 1)
    rescored = CrossEncoder(cross_model, "fp32").score([QUERY, QUERY], [edited, DOC]).logits
    assert first["delta"] == pytest.approx(float(rescored[0] - rescored[1]), abs=1e-4)


def test_cli_head_mean_and_range_errors():
    code, out = run_cli("inspect", "--query", QUERY, "--doc", DOC, "--layer", "0", "--head", "mean", "--json")
    assert code == 0 and json.loads(out)["head"] == "mean"
    code, _ = run_cli("inspect", "--query", QUERY, "--doc", DOC, "--layer", "12", "--head", "0", "--json")
    assert code == 2


def test_bi_encoder_token_cosines_come_from_two_separate_passes(bi_model):
    from explorer.rankers.bi_encoder import BiEncoder
    from explorer.interpret.token_similarity import bi_encoder_token_similarity

    first = bi_encoder_token_similarity(BiEncoder(bi_model, "fp32"), QUERY, DOC)

    def vectors(text):
        features = bi_model.tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            hidden = bi_model.module(**features).last_hidden_state[0, 1:-1]  # drop [CLS], [SEP]
        return torch.nn.functional.normalize(hidden, dim=-1).numpy()

    np.testing.assert_allclose(first.similarity, vectors(QUERY) @ vectors(DOC).T, atol=1e-5)
    pooled = BiEncoder(bi_model, "fp32").encode([QUERY, DOC])
    assert first.pooled_cosine == pytest.approx(float(pooled[0] @ pooled[1]), abs=1e-5)
    # The query's vectors do not depend on the document: its row pattern against a shared
    # document part is unchanged when the rest of the document changes.
    other = bi_encoder_token_similarity(BiEncoder(bi_model, "fp32"), QUERY, "Berlin is the capital of Germany.")
    assert first.query_tokens == other.query_tokens
    q = vectors(QUERY)
    np.testing.assert_allclose(other.similarity, q @ vectors("Berlin is the capital of Germany.").T, atol=1e-5)


def test_user_text_is_escaped_in_plots_and_highlighted_text(attention_model, cross_model):
    from explorer.views.attention_plots import attention_heatmap, attribution_bars, attribution_html

    document = "Paris <img src=x onerror=alert(1)> is the capital & </script> of France."
    inspection = inspect_pair(CrossEncoder(attention_model, "fp32"), encode_pair(attention_model, QUERY, document))
    block = cross_attention_matrix(inspection, 0, 0, word_level=True)
    ticks = attention_heatmap(block).layout.xaxis.ticktext
    assert "&lt;" in ticks and "&amp;" in ticks and not any("<" in t for t in ticks)
    attribution = occlusion_attribution(CrossEncoder(cross_model, "fp32"), encode_pair(cross_model, QUERY, document))
    text = attribution_html(document, attribution)
    assert "<img" not in text and "</script>" not in text and "&lt;" in text and "&amp;" in text
    assert "onerror" in text  # the words are shown, as text
    bars = attribution_bars(attribution)
    assert not any("<" in t for t in bars.layout.yaxis.ticktext)
