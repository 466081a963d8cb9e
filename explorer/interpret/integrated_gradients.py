"""Integrated Gradients of the cross-encoder's relevance logit over the document's words.

captum's `LayerIntegratedGradients` on the word-embedding layer: the embeddings of the pair
are moved in a straight line from a baseline to the real input, the gradient of the logit is
integrated along that path, and each token gets (embedding - baseline embedding) x mean gradient.

The baseline (`BASELINE`): every document token replaced by [PAD]; [CLS], the query and both
[SEP] are kept, and so are the positions, token types and attention mask. So the baseline is
"this query against an empty document of the same length", and only the document's word
embeddings differ between the two ends of the path. Query and special tokens therefore get
exactly zero attribution, and by completeness the document tokens' attributions sum to
score - baseline_logit, up to captum's convergence delta (the quadrature error). [PAD] rather
than [MASK]: the masked-language-model pre-training taught [MASK] to mean "some word goes here",
and the model would fill it in from the context (the query); [PAD] carries no word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.budgets import IG_BATCH_TOKENS, check_ig_steps
from explorer.interpret.pair import EncodedPair
from explorer.rankers.cross_encoder import CrossEncoder, relevance_logits

IG_STEPS = 50
IG_METHOD = "gausslegendre"
BASELINE = "every document token replaced by [PAD]; [CLS], the query and [SEP] kept"


@dataclass
class IntegratedGradients:
    """Per document word, the sum of its tokens' integrated gradients (logit units)."""

    words: list[str]
    spans: list[tuple[int, int]]
    scores: np.ndarray  # (words,) positive: the word raises the logit above the baseline's
    token_scores: np.ndarray  # (tokens,) every position of the pair (zero outside the document)
    score: float  # the pair's logit
    baseline_logit: float  # the logit of the baseline pair
    convergence_delta: float  # captum's: (score - baseline_logit) - sum of the attributions
    steps: int
    method: str
    baseline: str = BASELINE


def baseline_ids(pair: EncodedPair, pad_token_id: int) -> torch.Tensor:
    """The pair's input ids with every document token (not the final [SEP]) set to [PAD]."""
    ids = pair.features["input_ids"].clone()
    document = [position for position, sequence in enumerate(pair.sequence_ids) if sequence == 1]
    ids[0, document] = pad_token_id
    return ids


def ig_batch_size(tokens: int, steps: int = IG_STEPS) -> int:
    """Interpolated pairs per forward/backward pass: budgets.IG_BATCH_TOKENS tokens (8 pairs of 512
    tokens; 25 was the fixed count before, 12,800 tokens for a long pair), at least one, at most `steps`."""
    return max(1, min(steps, IG_BATCH_TOKENS // max(tokens, 1)))


def integrated_gradients(
    scorer: CrossEncoder, pair: EncodedPair, steps: int = IG_STEPS, method: str = IG_METHOD
) -> IntegratedGradients:
    """Layer Integrated Gradients on the word embeddings of `scorer` (bind it in fp32).

    Raises ExplorerError past budgets.MAX_IG_STEP_TOKENS (steps x the pair's tokens). captum runs
    the interpolated pairs `ig_batch_size(tokens)` at a time: a backward pass keeps every layer's
    activations for each pair in the batch, so the batch's tokens, not its pairs, bound the memory.
    """
    from captum.attr import LayerIntegratedGradients

    module = scorer.model.module
    features = pair.features
    tokens = int(features["input_ids"].shape[1])
    check_ig_steps(steps, tokens)
    mask, types = features["attention_mask"], features.get("token_type_ids")

    def forward(input_ids, attention_mask, token_type_ids):
        rows = input_ids.shape[0]
        extra = {"attention_mask": attention_mask.expand(rows, -1)}
        if token_type_ids is not None:
            extra["token_type_ids"] = token_type_ids.expand(rows, -1)
        return relevance_logits(module(input_ids=input_ids, **extra).logits.float(), scorer.label)

    pad = scorer.model.tokenizer.pad_token_id
    baseline = baseline_ids(pair, pad if pad is not None else 0)
    explainer = LayerIntegratedGradients(forward, module.get_input_embeddings())
    with torch.enable_grad():
        attributions, delta = explainer.attribute(
            features["input_ids"], baselines=baseline, additional_forward_args=(mask, types),
            n_steps=steps, method=method, internal_batch_size=ig_batch_size(tokens, steps),
            return_convergence_delta=True,
        )
    with torch.inference_mode():
        ends = forward(torch.cat([features["input_ids"], baseline]), mask, types)
    per_token = attributions.sum(-1)[0].detach().double().numpy()
    words = pair.document_word_tokens().values()
    return IntegratedGradients(
        words=[pair.document[start:end] for _, (start, end) in words],
        spans=[(start, end) for _, (start, end) in words],
        scores=np.array([per_token[positions].sum() for positions, _ in words], dtype=np.float64),
        token_scores=per_token,
        score=float(ends[0]),
        baseline_logit=float(ends[1]),
        convergence_delta=float(delta.reshape(-1)[0]),
        steps=steps,
        method=method,
    )
