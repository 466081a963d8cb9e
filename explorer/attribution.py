"""Which document words actually moved the cross-encoder's score.

Occlusion is faithful to the score by construction: each document word is deleted from the
text and the pair is scored again; delta = logit without the word - full logit. All edited
documents go through `rerank.score_pairs` in one fp32 batch, so a delta *is* a rescoring.
Gradient x input is offered as a cheaper first-order view, and is labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import ExplorerError
from .models import DEFAULT_CROSS_ENCODER, LoadedModel, load_model
from .rerank import relevance_logits, score_pairs


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

    def to_list(self) -> list[dict]:
        return [{"word": w.word, "delta": w.delta} for w in self.words]


@dataclass
class GradientAttribution:
    words: list[str]
    spans: list[tuple[int, int]]
    scores: np.ndarray  # gradient x input summed over each word's pieces, logit (first-order estimate)


def _scoring_model(cross_encoder: str | LoadedModel) -> LoadedModel:
    if isinstance(cross_encoder, LoadedModel):
        return cross_encoder
    return load_model(cross_encoder, "cross")


def _document_word_tokens(word_ids, sequence_ids, offsets) -> dict[int, tuple[list[int], list[int]]]:
    """Each document word's token positions and character span [start, end], in word order."""
    words: dict[int, tuple[list[int], list[int]]] = {}
    for position, (word, sequence, (start, end)) in enumerate(zip(word_ids, sequence_ids, offsets)):
        if sequence == 1 and word is not None:
            positions, span = words.setdefault(word, ([], [start, end]))
            positions.append(position)
            span[1] = end
    return dict(sorted(words.items()))


def document_words(model: LoadedModel, query: str, document: str) -> tuple[list[tuple[int, int]], int]:
    """Character spans of the document's words (as the tokenizer splits words) that fit in the input.

    Returns the spans and how many words were cut off by the model's maximum length.
    """
    def spans_of(encoding) -> list[tuple[int, int]]:
        words = _document_word_tokens(encoding.word_ids(), encoding.sequence_ids(), encoding["offset_mapping"])
        return [tuple(span) for _, span in words.values()]

    tokenizer = model.tokenizer
    kept = spans_of(tokenizer(query, document, truncation="only_second", max_length=model.max_length,
                              return_offsets_mapping=True))
    everything = spans_of(tokenizer(query, document, return_offsets_mapping=True))
    return kept, len(everything) - len(kept)


def remove_span(document: str, start: int, end: int) -> str:
    """The document with one word deleted (the tokenizer ignores the doubled space left behind)."""
    return document[:start] + document[end:]


def occlusion_attribution(
    query: str,
    document: str,
    cross_encoder: str | LoadedModel = DEFAULT_CROSS_ENCODER,
    batch_size: int = 16,
) -> Attribution:
    """For each document word, the change in the logit when that word is removed (fp32)."""
    if not (query or "").strip() or not (document or "").strip():
        raise ExplorerError("Both the query and the document need text for an attribution.")
    model = _scoring_model(cross_encoder)
    spans, cut = document_words(model, query, document)
    edited = [remove_span(document, start, end) for start, end in spans]
    scores = score_pairs(model, [query] * (len(edited) + 1), [document, *edited], precision="fp32",
                         batch_size=batch_size).logits
    full = float(scores[0])
    words = [
        WordAttribution(document[start:end], start, end, float(scores[k + 1]) - full, float(scores[k + 1]))
        for k, (start, end) in enumerate(spans)
    ]
    return Attribution(full, words, cut)


def gradient_attribution(
    query: str, document: str, cross_encoder: str | LoadedModel = DEFAULT_CROSS_ENCODER
) -> GradientAttribution:
    """Gradient x input of the logit w.r.t. the word embeddings, summed per document word.

    A first-order estimate of how much each word's embedding adds to the logit (positive:
    pushes the score up); cheaper than occlusion, and only as faithful as a linearisation.
    """
    from .inspect import encode_pair

    model = _scoring_model(cross_encoder)
    encoded = encode_pair(model, query, document)
    word_ids, sequence_ids = encoded.word_ids(0), encoded.sequence_ids(0)
    offsets = encoded.pop("offset_mapping")[0].tolist()
    module = model.module
    embeddings = module.get_input_embeddings()(encoded["input_ids"]).detach().requires_grad_(True)
    extra = {k: v for k, v in encoded.items() if k in ("attention_mask", "token_type_ids")}
    with torch.enable_grad():
        logit = relevance_logits(module(inputs_embeds=embeddings, **extra).logits.float())[0]
        (gradient,) = torch.autograd.grad(logit, embeddings)
    per_token = (gradient * embeddings).sum(-1)[0].detach().numpy()
    words = _document_word_tokens(word_ids, sequence_ids, offsets).values()
    return GradientAttribution(
        words=[document[start:end] for _, (start, end) in words],
        spans=[(start, end) for _, (start, end) in words],
        scores=np.array([per_token[positions].sum() for positions, _ in words], dtype=np.float32),
    )
