"""A cross-encoder that reads a long document by its passages: the remedy for the 512-token cut.

A cross-encoder reads at most `max_length` tokens of the pair and cuts the rest of the document,
so an answer past the cut never counts. Here the document is split into windows of as many
document tokens as fit in one pair with this query (max_length less the query's tokens and the
pair's special tokens), one starting every `stride` tokens and moved back to word starts; each
window is scored alone as (query, window text), and the scores are aggregated (Dai and Callan,
"Deeper Text Understanding for IR with Contextual Neural Language Modeling", SIGIR 2019):

* MaxP: the best window's logit;
* FirstP: the first window's logit (what the plain cut reads, as a window);
* SumP: the sum of the windows' logits.

A document that fits in one pair is one window: MaxP, FirstP and SumP are then its own logit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from explorer.rankers.base import PairScorer, PairScores, ProgressCallback, RankerInfo

AGGREGATES = {"maxp": "MaxP", "firstp": "FirstP", "sump": "SumP"}
DEFAULT_STRIDE = 256  # document tokens between window starts: consecutive 500-token windows overlap by about half


def window_ranges(word_ids: list[int | None], total: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges [first, last) of up to `window` document tokens, one every `stride`, each moved back
    to a word start (and not ending inside a word), covering all `total` tokens."""

    def word_start(position: int) -> int:
        while position > 0 and word_ids[position] is not None and word_ids[position - 1] == word_ids[position]:
            position -= 1
        return position

    ranges, start = [], 0
    while True:
        first = word_start(start)
        last = min(first + window, total)
        if last < total and word_start(last) > first:
            last = word_start(last)  # do not end inside a word
        if not ranges or ranges[-1] != (first, last):
            ranges.append((first, last))
        if last >= total:
            return ranges
        start += stride


@dataclass
class Passage:
    """One window of a document: its character and token span, and the logit of (query, window text) alone."""

    start: int
    end: int
    first_token: int  # document tokens, end exclusive
    last_token: int
    score: float


@dataclass
class PassageExplanation:
    """A document scored by its passages: each window's logit, the aggregate, and where the best window lies."""

    aggregate: str  # "MaxP", "FirstP", "SumP"
    score: float
    window_tokens: int
    stride_tokens: int
    passages: list[Passage]
    best: int  # the best window's index

    def to_dict(self) -> dict:
        """Every field, JSON-ready."""
        return asdict(self)


class PassageCrossEncoder(PairScorer):
    """A bound cross-encoder scoring each document by its windows, aggregated (`AGGREGATES`)."""

    def __init__(self, cross: PairScorer, aggregate: str = "maxp", stride: int = DEFAULT_STRIDE):
        if aggregate not in AGGREGATES:
            raise ValueError(f"unknown aggregate {aggregate!r}")
        self.cross, self.aggregate, self.stride = cross, aggregate, stride
        base = cross.info
        self.info = RankerInfo(
            base.model_id, f"{base.name}: cross-encoder, {AGGREGATES[aggregate]} over {cross.max_length}-token windows, "
                           f"stride {stride}",
            "cross", f"{AGGREGATES[aggregate]} of window {base.score_name}s", base.precision, base.device,
            engine=f"{base.engine}; passages of a {cross.max_length}-token pair every {stride} document tokens",
            probability_name="" if aggregate == "sump" else f"{base.probability_name} of that window",
            prompts=base.prompts, precision_note=base.precision_note,
        )

    @property
    def tokenizer(self):
        """The cross-encoder's tokenizer."""
        return self.cross.tokenizer

    @property
    def max_length(self) -> int:
        """Tokens of one (query, window) pair: the cross-encoder's limit."""
        return self.cross.max_length

    def room(self, query: str) -> int:
        """Document tokens that fit in one pair with `query`."""
        prompt = self.cross.model.prompt("query") if hasattr(self.cross, "model") else ""
        query_tokens = len(self.tokenizer(prompt + query, add_special_tokens=False)["input_ids"])
        return max(1, self.max_length - query_tokens - self.tokenizer.num_special_tokens_to_add(pair=True))

    def windows(self, query: str, document: str) -> list[tuple[int, int, int, int]]:
        """(start char, end char, first token, last token) of each window of `document` for `query`."""
        encoded = self.tokenizer(document, add_special_tokens=False, return_offsets_mapping=True)
        offsets, total = encoded["offset_mapping"], len(encoded["input_ids"])
        if not total:
            return [(0, len(document), 0, 0)]
        window = self.room(query)
        stride = min(self.stride, window)
        return [(offsets[first][0], offsets[last - 1][1], first, last)
                for first, last in window_ranges(encoded.word_ids(), total, window, stride)]

    def _aggregate(self, scores: np.ndarray) -> float:
        if self.aggregate == "maxp":
            return float(scores.max())
        if self.aggregate == "firstp":
            return float(scores[0])
        return float(scores.sum())

    def score(self, queries: Sequence[str], documents: Sequence[str],
              progress: ProgressCallback | None = None) -> PairScores:
        """Each pair's aggregate of its windows' logits, shape (pairs,), float32; every window of every pair
        is scored in one batch by the cross-encoder. No pair is cut (`truncated` is 0): that is the point."""
        if (empty := self.no_pairs(queries, documents, probabilities=self.aggregate != "sump")) is not None:
            return empty
        spans = [self.windows(q, d) for q, d in zip(queries, documents)]
        flat_queries = [q for q, row in zip(queries, spans) for _ in row]
        flat_texts = [d[s:e] for d, row in zip(documents, spans) for s, e, _, _ in row]
        scored = self.cross.score(flat_queries, flat_texts, progress=progress)
        bounds = np.cumsum([0] + [len(row) for row in spans])
        logits = scored.scores
        values = np.array([self._aggregate(logits[a:b]) for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.float32)
        probabilities = None
        if self.aggregate != "sump" and scored.probabilities is not None:
            probabilities = np.array(
                [scored.probabilities[a:b][int(np.argmax(logits[a:b])) if self.aggregate == "maxp" else 0]
                 for a, b in zip(bounds[:-1], bounds[1:])], dtype=np.float32)
        return PairScores(values, probabilities, 0)

    def explain(self, query: str, document: str) -> PassageExplanation:
        """Every window of the document with its logit scored alone, the aggregate and the best window."""
        spans = self.windows(query, document)
        logits = self.cross.score_query(query, [document[s:e] for s, e, _, _ in spans]).scores
        passages = [Passage(s, e, first, last, float(score)) for (s, e, first, last), score in zip(spans, logits)]
        return PassageExplanation(AGGREGATES[self.aggregate], self._aggregate(logits), self.room(query),
                                  self.stride, passages, int(np.argmax(logits)))
