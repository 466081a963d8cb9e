"""Cross-encoder stage: query and document go through one transformer together.

One relevance logit per (query, document) pair. For single-logit rerankers (the MS MARCO
family) the probability is sigmoid(logit), as sentence-transformers' default activation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .batching import padded_batches
from .models import LoadedModel, resolve_precision
from .packed_bert import packed_inputs

ProgressCallback = Callable[[int, int], None]

# Pairs per padded forward pass. bf16 batches of 8 ran fastest on the 2-core AVX-512
# machine (after length sorting, smaller batches waste less padding); fp32 keeps the size
# its exact results were recorded with. BERT rerankers in bf16 are packed instead (no padding).
BATCH_SIZE = {"fp32": 16, "bf16": 8}


@dataclass
class PairScores:
    logits: np.ndarray  # (n,) float32: the relevance score, raw logit
    probabilities: np.ndarray  # (n,) float32: sigmoid (1 label) or softmax's positive class (2 labels)
    truncated: int  # how many pairs were cut to the model's maximum length


def _tokenize_pairs(model: LoadedModel, queries: Sequence[str], documents: Sequence[str]):
    return model.tokenizer(
        list(queries), list(documents), truncation=True, max_length=model.max_length
    )


def relevance_logits(raw):
    """One relevance logit per row of a model's output (numpy or torch): the single logit, or
    for two-class rerankers the log-odds of "relevant"."""
    return raw[..., 0] if raw.shape[-1] == 1 else raw[..., 1] - raw[..., 0]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def score_pairs(
    model: LoadedModel,
    queries: Sequence[str],
    documents: Sequence[str],
    precision: str = "fp32",
    batch_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> PairScores:
    """Score each (queries[i], documents[i]) pair, never asking for attention weights.

    bf16 on a BERT reranker runs packed, padding-free chunks (`packed_bert`); everything else
    runs the module's own forward on length-sorted padded batches of `batch_size`, which
    defaults to a size measured to be fastest for the precision.
    """
    if len(queries) != len(documents):
        raise ValueError("queries and documents must have the same length")
    if not documents:
        empty = np.zeros(0, dtype=np.float32)
        return PairScores(empty, empty.copy(), 0)
    precision = resolve_precision(precision)  # "auto" picks bf16 only where the CPU has it
    packed = model.packed_for(precision)
    encoded = _tokenize_pairs(model, queries, documents)
    raw = np.empty((len(documents), model.module.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        if packed is not None:
            for chunk, chunk_ids, chunk_types in packed_inputs(encoded, progress):
                raw[chunk] = packed.classify(chunk_ids, chunk_types).numpy()
        else:
            module = model.module_for(precision)
            batches = padded_batches(model.tokenizer, encoded, batch_size or BATCH_SIZE[precision], progress)
            for batch, features in batches:
                raw[batch] = module(**features).logits.float().numpy()
    logits = relevance_logits(raw).astype(np.float32)
    truncated = sum(len(ids) >= model.max_length for ids in encoded["input_ids"])
    return PairScores(logits, sigmoid(logits).astype(np.float32), truncated)


def rerank(
    model: LoadedModel, query: str, documents: Sequence[str], precision: str = "fp32", **kwargs
) -> PairScores:
    """Score one query against many documents."""
    return score_pairs(model, [query] * len(documents), documents, precision=precision, **kwargs)
