"""Cross-encoder re-ranking: query and document go through one transformer together.

One relevance logit per (query, document) pair. For single-logit rerankers (the MS MARCO
family) the probability is sigmoid(logit), as sentence-transformers' default activation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from explorer.engine.batching import padded_batches
from explorer.engine.loading import LoadedModel, load_model
from explorer.engine.packed_bert import packed_inputs
from explorer.engine.precision import Precision
from explorer.rankers.base import PairScorer, PairScores, ProgressCallback, RankerInfo

# Pairs per padded forward pass. bf16 batches of 8 ran fastest on the 2-core AVX-512
# machine (after length sorting, smaller batches waste less padding); fp32 keeps the size
# its exact results were recorded with. BERT rerankers in bf16 are packed instead (no padding).
BATCH_SIZE = {"fp32": 16, "bf16": 8}


def relevance_logits(raw):
    """One relevance logit per row of a model's output (numpy or torch): the single logit, or
    for two-class rerankers the log-odds of "relevant"."""
    return raw[..., 0] if raw.shape[-1] == 1 else raw[..., 1] - raw[..., 0]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


class CrossEncoder(PairScorer):
    """A cross-encoder bound to one precision and engine; never asks for attention weights.

    bf16 on a BERT reranker runs packed, padding-free chunks (`packed_bert`); everything
    else runs the module's own forward on length-sorted padded batches, whose size
    defaults to the one measured fastest for the precision. fp32 is the model's own
    forward, exactly as sentence-transformers' `CrossEncoder.predict` runs it.
    """

    def __init__(self, model: LoadedModel, precision: Precision = "auto", batch_size: int | None = None):
        self.model = model
        self.engine = model.bind(precision)
        self.precision = self.engine.precision
        self.batch_size = batch_size or BATCH_SIZE[self.precision]
        self.info = RankerInfo(model.id, model.name, "cross", "logit", self.precision, engine=self.engine.name)

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def max_length(self) -> int:  # the tokenizer's and position table's limit
        return self.model.max_length

    def score(self, queries: Sequence[str], documents: Sequence[str],
              progress: ProgressCallback | None = None) -> PairScores:
        """The relevance logit and its sigmoid probability of each (query, document) pair, shape (pairs,),
        float32; pairs longer than the model's limit are cut (document side only) and counted."""
        if (empty := self.no_pairs(queries, documents)) is not None:
            return empty
        model = self.model
        encoded = model.tokenizer(list(queries), list(documents), truncation=True, max_length=model.max_length)
        raw = np.empty((len(documents), model.module.config.num_labels), dtype=np.float32)
        with torch.inference_mode():
            if self.engine.packed is not None:
                for chunk, chunk_ids, chunk_types in packed_inputs(encoded, progress):
                    raw[chunk] = self.engine.packed.classify(chunk_ids, chunk_types).numpy()
            else:
                for batch, features in padded_batches(model.tokenizer, encoded, self.batch_size, progress):
                    raw[batch] = self.engine.module(**features).logits.float().numpy()
        logits = relevance_logits(raw).astype(np.float32)
        truncated = sum(len(ids) >= model.max_length for ids in encoded["input_ids"])
        return PairScores(logits, sigmoid(logits).astype(np.float32), truncated)


def load_cross_encoder(model_id: str, precision: Precision = "auto", allow_local_path: bool = False) -> CrossEncoder:
    """A cross-encoder by model id, bound to a precision (the model's weights load once per process)."""
    return CrossEncoder(load_model(model_id, "cross", allow_local_path=allow_local_path), precision)
