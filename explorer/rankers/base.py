"""What every ranker is: bound once to a model, a precision and an engine, then only asked.

Two shapes, as in sentence-transformers and the rerankers library:

* a `Retriever` ranks a whole corpus: it indexes the corpus once, then answers queries
  (BM25, a bi-encoder, a fusion of both);
* a `PairScorer` scores (query, document) pairs: it re-ranks a first stage's candidates
  (a cross-encoder, late interaction).

Each reports what it is (`RankerInfo`): the name shown on screen, its kind, the name of its
score, its precision and device. Nobody else re-decides precision or engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from explorer.budgets import check_query_tokens

RankerKind = Literal["lexical", "bi", "hybrid", "late", "cross"]
ProgressCallback = Callable[[int, int], None]  # (items done, items in all)


def precision_key(precision: str, engine: str) -> str:
    """`RankerInfo.precision_key` of a precision and engine name."""
    return "int8_packed" if engine.startswith("packed int8") else precision


@dataclass(frozen=True)
class RankerInfo:
    """What a ranker is, as the page, the CLI and the JSON name it."""

    model_id: str  # hub id, "bm25", or a fusion's recipe
    name: str  # shown wherever the ranker appears; says when a model is a converted copy
    kind: RankerKind
    score_name: str  # "cosine", "logit", "logit of 'entailment'", "BM25 score", ...
    precision: str  # "bf16", "fp32", "int8", or "n/a" where no model runs
    device: str = "cpu"
    engine: str = ""  # how it runs: "packed bf16", "sentence-transformers forward", "bm25s sparse index"
    probability_name: str = ""  # what PairScores.probabilities hold: "sigmoid(logit)", "raw score", ...; "" for none
    prompts: str = ""  # the prompts the model puts before texts, as the page shows them; "" for none
    precision_note: str = ""  # why "auto" chose the precision here (`precision.auto_note`); "" if named

    @property
    def precision_key(self) -> str:
        """The precision as a key suffix, telling our packed int8 engine ("int8_packed") from onnxruntime's
        int8 file ("int8"): "cross_encoder_int8_packed", "rerank_int8_packed"."""
        return precision_key(self.precision, self.engine)

    @property
    def runs_on(self) -> str:
        """Precision and device as the page shows them, e.g. "bf16 on cpu", with auto's reason where it chose:
        "int8 on cpu (auto on AVX2: ...)"."""
        where = f"{self.precision} on {self.device}"
        return f"{where} ({self.precision_note})" if self.precision_note else where


@dataclass
class PairScores:
    """One score per (query, document) pair, in the order given."""

    scores: np.ndarray  # (n,) float32, the ranker's own score (a cross-encoder's logit)
    probabilities: np.ndarray | None  # (n,) the model's activation of the logit (`CrossEncoder.probability_name`), else None
    truncated: int  # pairs cut to the model's maximum length
    label_probabilities: np.ndarray | None = None  # (n, labels) softmax over a classifier's labels
    labels: list[str] | None = None  # those labels' names (the model config's id2label)

    @property
    def logits(self) -> np.ndarray:
        """A cross-encoder's scores are its relevance logits."""
        return self.scores


class Retriever(ABC):
    """Ranks a whole corpus: `index_corpus` once, then `encode_queries` and `search` per query."""

    info: RankerInfo

    @abstractmethod
    def index_corpus(self, texts: Sequence[str], fingerprint: str, persist: bool = False,
                     progress: ProgressCallback | None = None) -> tuple[Any, bool]:
        """The corpus's index, and whether it came from a cache rather than being built now."""

    @abstractmethod
    def encode_queries(self, queries: Sequence[str]) -> Any:
        """What `search` takes for these queries (vectors, token ids)."""

    @abstractmethod
    def search(self, index: Any, encoded_queries: Any, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positions), each (queries, depth), best first."""

    def search_notes(self, index: Any, encoded_queries: Any) -> dict[int, str]:
        """What the user must be told about a query's search, by query row (BM25 matched nothing, ...)."""
        return {}

    def rank(self, query: str, texts: Sequence[str], fingerprint: str, depth: int) -> list[tuple[int, float]]:
        """(position, score) of the `depth` best documents for one query: the convenient form."""
        index, _ = self.index_corpus(texts, fingerprint)
        scores, positions = self.search(index, self.encode_queries([query]), depth)
        return [(int(p), float(s)) for p, s in zip(positions[0], scores[0])]


class PairScorer(ABC):
    """Scores (query, document) pairs: the re-ranking stages."""

    info: RankerInfo
    max_length: int  # tokens per pair; longer pairs are cut and counted in `PairScores.truncated`
    tokenizer: Any  # the model's tokenizer (a transformers tokenizer)

    @abstractmethod
    def score(self, queries: Sequence[str], documents: Sequence[str],
              progress: ProgressCallback | None = None) -> PairScores:
        """Score each (queries[i], documents[i]) pair."""

    @staticmethod
    def no_pairs(queries: Sequence[str], documents: Sequence[str], probabilities: bool = True) -> PairScores | None:
        """What every `score` checks first: lists of equal length; for none, the empty result (else None)."""
        if len(queries) != len(documents):
            raise ValueError("queries and documents must have the same length")
        if documents:
            return None
        empty = np.zeros(0, dtype=np.float32)
        return PairScores(empty, empty.copy() if probabilities else None, 0)

    def check_query(self, query: str) -> None:
        """Refuse a query too long to share a pair with a document (the query would be cut, not the document)."""
        check_query_tokens(len(self.tokenizer(query, add_special_tokens=False)["input_ids"]), self.max_length)

    def score_query(self, query: str, documents: Sequence[str], **kwargs) -> PairScores:
        """Score one query against many documents."""
        return self.score([query] * len(documents), documents, **kwargs)

    def rank(self, query: str, documents: Sequence[str]) -> list[tuple[int, float]]:
        """(position, score) of every document, best first; ties keep the given order."""
        scores = self.score_query(query, documents).scores
        order = np.argsort(-scores, kind="stable")
        return [(int(i), float(scores[i])) for i in order]
