"""Which document words actually moved the cross-encoder's score.

Occlusion is faithful to the score by construction: each document word is deleted from the
text and the pair is scored again; delta = logit without the word - full logit. All edited
documents go through the bound cross-encoder in one fp32 batch, so a delta *is* a rescoring.
Gradient x input is offered as a cheaper first-order view, and is labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.budgets import MAX_OCCLUSION_PASSES
from explorer.interpret.pair import EncodedPair
from explorer.rankers.cross_encoder import CrossEncoder, relevance_logits


@dataclass
class WordAttribution:
    word: str  # the word as typed in the document
    start: int  # character span in the document
    end: int
    delta: float  # logit without the word minus the full logit (negative: the word helped)
    occluded_logit: float


@dataclass
class Attribution:
    full_logit: float
    words: list[WordAttribution]
    words_cut: int  # document words past the model's maximum length, not attributed
    words_per_span: int = 1  # >1 when a long document was occluded a run of words at a time

    def to_list(self) -> list[dict]:
        return [{"word": w.word, "delta": w.delta} for w in self.words]


@dataclass
class GradientAttribution:
    words: list[str]
    spans: list[tuple[int, int]]
    scores: np.ndarray  # gradient x input summed over each word's pieces, logit (first-order estimate)


def remove_span(document: str, start: int, end: int) -> str:
    """The document with one word deleted (the tokenizer ignores the doubled space left behind)."""
    return document[:start] + document[end:]


def occlusion_spans(pair: EncodedPair, max_passes: int = MAX_OCCLUSION_PASSES) -> tuple[list[tuple[int, int]], int]:
    """The character spans occlusion deletes one at a time, and how many words each holds.

    A long document is occluded a run of words at a time, so that a 512-token pair costs at
    most `max_passes` passes (each word alone would be ~400).
    """
    spans = pair.document_word_spans()
    per_span = -(-len(spans) // max_passes) if spans else 1
    runs = [(spans[i][0], spans[min(i + per_span, len(spans)) - 1][1]) for i in range(0, len(spans), per_span)]
    return runs, per_span


def occlusion_attributions(scorer: CrossEncoder, pairs: list[EncodedPair],
                           max_passes: int = MAX_OCCLUSION_PASSES) -> list[Attribution]:
    """`occlusion_attribution` of several pairs of one query, every rescoring in one batch.

    One call for both documents of a contrast lets the length-sorted batches fill up with
    the variants of either document, and scores the two full documents in the same pass.
    """
    if len({pair.query for pair in pairs}) > 1:
        raise ValueError("occlusion_attributions takes pairs of one query")
    plans = [occlusion_spans(pair, max_passes) for pair in pairs]
    texts: list[str] = []
    for pair, (spans, _) in zip(pairs, plans):
        texts += [pair.document, *(remove_span(pair.document, start, end) for start, end in spans)]
    scores = scorer.score_query(pairs[0].query, texts).logits if texts else []
    results, cursor = [], 0
    for pair, (spans, per_span) in zip(pairs, plans):
        full = float(scores[cursor])
        words = [
            WordAttribution(pair.document[start:end], start, end, float(scores[cursor + k + 1]) - full,
                            float(scores[cursor + k + 1]))
            for k, (start, end) in enumerate(spans)
        ]
        results.append(Attribution(full, words, pair.words_cut, per_span))
        cursor += len(spans) + 1
    return results


def occlusion_attribution(scorer: CrossEncoder, pair: EncodedPair) -> Attribution:
    """For each document word, the change in the logit when that word is removed.

    The edited documents are rescored by `scorer` in one batch; bind it in fp32 (the
    inspection model is) so a delta is an exact rescoring.
    """
    return occlusion_attributions(scorer, [pair])[0]


def gradient_attribution(scorer: CrossEncoder, pair: EncodedPair) -> GradientAttribution:
    """Gradient x input of the logit w.r.t. the word embeddings, summed per document word.

    A first-order estimate of how much each word's embedding adds to the logit (positive:
    pushes the score up); cheaper than occlusion, and only as faithful as a linearisation.
    """
    module = scorer.model.module
    features = pair.features
    embeddings = module.get_input_embeddings()(features["input_ids"]).detach().requires_grad_(True)
    extra = {k: v for k, v in features.items() if k in ("attention_mask", "token_type_ids")}
    with torch.enable_grad():
        logit = relevance_logits(module(inputs_embeds=embeddings, **extra).logits.float(), scorer.label)[0]
        (gradient,) = torch.autograd.grad(logit, embeddings)
    per_token = (gradient * embeddings).sum(-1)[0].detach().numpy()
    words = pair.document_word_tokens().values()
    return GradientAttribution(
        words=[pair.document[start:end] for _, (start, end) in words],
        spans=[(start, end) for _, (start, end) in words],
        scores=np.array([per_token[positions].sum() for positions, _ in words], dtype=np.float32),
    )
