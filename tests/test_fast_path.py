"""The fast path (default "auto" precision: int8 or bf16 by CPU kind) agrees with fp32.

Same weights, realistic passages (30 to 200 words of the Python-documentation corpus).
The bounds, and how they were measured, are in engine_bounds.py; no timing is asserted here.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from explorer.engine.batching import pad_batch
from explorer.tools.bench import benchmark_queries, realistic_passages
from explorer.rankers.cross_encoder import CrossEncoder
from explorer.rankers.bi_encoder import BiEncoder
from engine_bounds import (BF16_COSINE_SCORE_ERROR, BF16_LOGIT_ERROR, BF16_VECTOR_ONE_MINUS_COSINE,
                           PACKED_INT8_COSINE_SCORE_ERROR, PACKED_INT8_LOGIT_ERROR,
                           PACKED_INT8_VECTOR_ONE_MINUS_COSINE, assert_same_order_beyond)

FAST_PRECISIONS = ["auto", "bf16", "int8"]  # bf16 and int8 are checked whatever auto picks on this CPU
# Each resolved precision's bounds (engine_bounds.py): logit; 1 - cosine of a vector; a cosine score.
# fp32 (auto on a CPU kind with neither) is held to bf16's, which it meets with room to spare.
BOUNDS = {"bf16": (BF16_LOGIT_ERROR, BF16_VECTOR_ONE_MINUS_COSINE, BF16_COSINE_SCORE_ERROR),
          "fp32": (BF16_LOGIT_ERROR, BF16_VECTOR_ONE_MINUS_COSINE, BF16_COSINE_SCORE_ERROR),
          "int8": (PACKED_INT8_LOGIT_ERROR, PACKED_INT8_VECTOR_ONE_MINUS_COSINE, PACKED_INT8_COSINE_SCORE_ERROR)}


@pytest.fixture(scope="module")
def passages() -> list[str]:
    return random.Random(7).sample(realistic_passages(), 100)


@pytest.fixture(scope="module")
def query() -> str:
    return benchmark_queries()[0]


@pytest.mark.parametrize("precision", FAST_PRECISIONS)
def test_rerank_fast_path_agrees_with_fp32(cross_model, passages, query, precision):
    exact = CrossEncoder(cross_model, "fp32").score([query] * 100, passages).logits
    ranker = CrossEncoder(cross_model, precision)
    fast = ranker.score([query] * 100, passages).logits
    bound = BOUNDS[ranker.precision][0]
    assert np.abs(fast - exact).max() <= bound
    # 2,269 of the 4,950 pairs of passages are further apart than 0.1 here (476 further than int8's 1.2);
    # the rest are near-ties, most of them at the logit floor (about -10).
    assert_same_order_beyond(exact, fast, bound, at_least=2000 if bound < 0.1 else 400)


def test_rerank_agreement_holds_across_mixed_queries(cross_model, passages):
    """100 pairs with different queries, as the benchmark scores them."""
    queries = benchmark_queries()
    qs = [queries[i % len(queries)] for i in range(100)]
    exact = CrossEncoder(cross_model, "fp32").score(qs, passages).logits
    fast = CrossEncoder(cross_model, "bf16").score(qs, passages).logits
    assert np.abs(fast - exact).max() <= BF16_LOGIT_ERROR
    # Unrelated pairs crowd together near -10 (gaps of 0.002 inside fp32's top 10 here): those may
    # swap; every pair further apart than twice the bound may not. How many there are depends on the
    # passages drawn (2,200 of 4,950 where this was written, 1,659 on the AVX-512 EPYC of 2026-12-01).
    assert_same_order_beyond(exact, fast, BF16_LOGIT_ERROR, at_least=1500)


@pytest.mark.parametrize("precision", FAST_PRECISIONS)
def test_encoding_fast_path_agrees_with_fp32(bi_model, passages, query, precision):
    exact = BiEncoder(bi_model, "fp32").encode(passages + [query])
    encoder = BiEncoder(bi_model, precision)
    fast = encoder.encode(passages + [query])
    _, vector_bound, score_bound = BOUNDS[encoder.precision]
    cosines = (exact * fast).sum(axis=1) / (np.linalg.norm(exact, axis=1) * np.linalg.norm(fast, axis=1))
    assert (1.0 - cosines).max() <= vector_bound
    # The bi-encoder's own ranking for the query: equal up to near-ties (its 10th and 11th passages
    # are 1e-4 apart here, which bf16 may swap).
    scores_exact, scores_fast = exact[:-1] @ exact[-1], fast[:-1] @ fast[-1]
    assert np.abs(scores_fast - scores_exact).max() <= score_bound
    # 4,697 pairs here are further apart than twice bf16's bound (0.008), 2,578 than twice int8's (0.08).
    assert_same_order_beyond(scores_exact, scores_fast, score_bound, at_least=4500 if score_bound < 0.01 else 2500)


def test_pad_batch_equals_the_tokenizers_own_padding(cross_model, passages, query):
    """Our padding must give exactly the tensors `tokenizer.pad` gives, so fp32 results do not move."""
    tokenizer = cross_model.tokenizer
    encoded = tokenizer([query] * 20, passages[:20], truncation=True, max_length=cross_model.max_length)
    batch = [3, 0, 17, 9, 12]
    reference = tokenizer.pad({k: [encoded[k][i] for i in batch] for k in encoded.keys()}, return_tensors="pt")
    ours = pad_batch(tokenizer, encoded, batch)
    assert set(ours) == set(reference.keys())
    for key in ours:
        assert torch.equal(ours[key], reference[key]), key


def test_fp32_scores_do_not_depend_on_batching(cross_model, passages, query):
    """Length-sorted dynamic padding changes nothing in fp32: one pair alone scores the same."""
    together = CrossEncoder(cross_model, "fp32").score([query] * 12, passages[:12]).logits
    alone = np.array([CrossEncoder(cross_model, "fp32").score([query], [p]).logits[0] for p in passages[:12]])
    # fp32 differs only in summation order between padded shapes: measured 4.8e-6 (AVX2 EPYC).
    assert np.abs(together - alone).max() <= 5e-5
