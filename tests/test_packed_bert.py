"""The packed (padding-free) engine computes what the model's own forward computes.

Run in fp32, packing changes only the order of floating-point sums, so its outputs must
equal the module's own to rounding; any slip in positions, token types, per-sequence
attention, the [CLS]-only last layer or the fused linear layers would show here at once.
"""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from explorer.tools.bench import benchmark_queries, realistic_passages
from explorer.engine import packed_bert
from explorer.engine.packed_bert import PackedBert, packed_chunks, supports
from engine_bounds import BF16_LOGIT_ERROR, FP32_ATOL


@pytest.fixture(scope="module")
def pairs() -> tuple[list[str], list[str]]:
    passages = random.Random(11).sample(realistic_passages(), 9)
    queries = benchmark_queries()
    # Different queries, a one-word document and one long enough to be truncated at 512 tokens.
    documents = [*passages, "python", " ".join(passages) * 3]
    return [queries[i % len(queries)] for i in range(len(documents))], documents


@pytest.mark.parametrize("fused_linear", [True, False], ids=["onednn", "plain-torch"])
def test_packed_fp32_logits_equal_the_modules_own(cross_model, pairs, fused_linear, monkeypatch):
    """Both ways of running a linear layer: oneDNN's fused primitive, and the plain fallback."""
    if not fused_linear:
        monkeypatch.setattr(packed_bert, "_has_onednn_linear", lambda: False)
    queries, documents = pairs
    encoded = cross_model.tokenizer(queries, documents, truncation=True, max_length=cross_model.max_length)
    assert max(len(ids) for ids in encoded["input_ids"]) == cross_model.max_length  # truncation covered
    with torch.inference_mode():
        reference = cross_model.module(**cross_model.tokenizer(
            queries, documents, truncation=True, max_length=cross_model.max_length, padding=True, return_tensors="pt"
        )).logits
        packed = PackedBert(cross_model.module, torch.float32).classify(
            encoded["input_ids"], encoded["token_type_ids"]
        )
    assert packed.shape == reference.shape
    assert torch.allclose(packed, reference, atol=FP32_ATOL, rtol=0), (packed - reference).abs().max()


def test_packed_fp32_token_states_equal_the_modules_own(bi_model, pairs):
    """Every token of every sequence, for the bi-encoder (a bare BertModel)."""
    _, documents = pairs
    encoded = bi_model.tokenizer(documents, truncation=True, max_length=bi_model.max_length)
    padded = bi_model.tokenizer(
        documents, truncation=True, max_length=bi_model.max_length, padding=True, return_tensors="pt"
    )
    with torch.inference_mode():
        reference = bi_model.module(**padded).last_hidden_state
        packed = PackedBert(bi_model.module, torch.float32).hidden_states(
            encoded["input_ids"], encoded["token_type_ids"]
        )
    expected = reference[padded["attention_mask"].bool()]  # the real tokens, in order
    assert packed.shape == expected.shape
    assert torch.allclose(packed, expected, atol=FP32_ATOL, rtol=0), (packed - expected).abs().max()


@pytest.mark.parametrize("text", ["python", "how do I read a file line by line", "word " * 70])
def test_packed_fp32_lone_text_equals_the_modules_own(bi_model, text):
    """A lone query: few rows, padded to a power of two rather than a multiple of 64."""
    encoded = bi_model.tokenizer([text], truncation=True, max_length=bi_model.max_length, return_tensors="pt")
    with torch.inference_mode():
        reference = bi_model.module(**encoded).last_hidden_state[0]
        packed = PackedBert(bi_model.module, torch.float32).hidden_states(
            encoded["input_ids"].tolist(), encoded["token_type_ids"].tolist()
        )
    assert packed.shape == reference.shape
    assert torch.allclose(packed, reference, atol=FP32_ATOL, rtol=0), (packed - reference).abs().max()


def test_packed_bf16_stays_close_to_fp32(cross_model, pairs):
    queries, documents = pairs
    encoded = cross_model.tokenizer(queries, documents, truncation=True, max_length=cross_model.max_length)
    with torch.inference_mode():
        exact = PackedBert(cross_model.module, torch.float32).classify(encoded["input_ids"], encoded["token_type_ids"])
        fast = cross_model.packed_for("bf16").classify(encoded["input_ids"], encoded["token_type_ids"])
    assert fast.dtype == torch.float32
    # The packed engine is what CrossEncoder runs in bf16: the same bound (measured 0.014 here).
    assert (fast - exact).abs().max() <= BF16_LOGIT_ERROR


def test_only_plain_bert_is_packed():
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    tiny = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    assert supports(BertModel(BertConfig(**tiny)))
    assert not supports(BertModel(BertConfig(**tiny, is_decoder=True)))
    assert not supports(RobertaModel(RobertaConfig(**tiny)))  # its positions start after the padding id
    with pytest.raises(ValueError):
        PackedBert(RobertaModel(RobertaConfig(**tiny)))


@given(st.lists(st.integers(1, 600), max_size=40), st.integers(1, 3000))
def test_packed_chunks_cover_every_item_once_in_order(lengths, budget):
    chunks = list(packed_chunks(lengths, budget))
    assert [i for chunk in chunks for i in chunk] == list(range(len(lengths)))
    for chunk in chunks:
        assert chunk  # never empty
        assert len(chunk) == 1 or sum(lengths[i] for i in chunk) <= budget


def test_packed_chunks_report_progress():
    seen = []
    list(packed_chunks([100] * 5, 250, progress=lambda done, total: seen.append((done, total))))
    assert seen == [(2, 5), (4, 5), (5, 5)]
