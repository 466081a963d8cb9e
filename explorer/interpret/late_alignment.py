"""How late interaction matches the texts: for each query token, its best document token and
that token's share of the MaxSim score.

The ranker (`rankers/late_interaction.py`) encodes query and document separately, keeps each
text's own word pieces (no [CLS]/[SEP]/[PAD]) as L2-normalised states, and sums each query
token's best cosine. Here the same vectors are kept per token, so the alignment's
contributions sum to exactly the score the ranker gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.rankers.late_interaction import LateInteraction


@dataclass
class LateAlignment:
    """Late interaction's MaxSim of one pair, token by token: the (query tokens, document tokens) cosine
    matrix, each query token's best document token and its cosine, whose sum is the score."""
    query_tokens: list[str]  # the counted tokens only (no special tokens)
    doc_tokens: list[str]
    similarity: np.ndarray  # (query tokens, document tokens) cosine of the normalised states
    best: np.ndarray  # (query tokens,) index of each query token's best document token
    contributions: np.ndarray  # (query tokens,) that best cosine: the token's share of MaxSim
    score: float  # MaxSim: the sum of the contributions
    model_name: str


def _counted_tokens(ranker: LateInteraction, text: str) -> list[str]:
    """The tokens `token_vectors` keeps for `text`, in order (the same truncation and specials)."""
    ids = ranker.tokenizer(text, truncation=True, max_length=ranker.max_length)["input_ids"]
    special = {i for i in (ranker.tokenizer.cls_token_id, ranker.tokenizer.sep_token_id, ranker.tokenizer.pad_token_id)
               if i is not None}
    return ranker.tokenizer.convert_ids_to_tokens([i for i in ids if i not in special])


def late_alignment(ranker: LateInteraction, query: str, document: str) -> LateAlignment:
    """Each query token's best document token by cosine and its MaxSim contribution."""
    (query_vectors, document_vectors), _ = ranker.token_vectors([query, document])
    similarity = query_vectors @ document_vectors.T
    if similarity.size == 0:
        best, contributions = np.zeros(len(query_vectors), dtype=int), np.zeros(len(query_vectors), dtype=np.float32)
    else:
        best, contributions = similarity.argmax(axis=1), similarity.max(axis=1)
    return LateAlignment(
        query_tokens=_counted_tokens(ranker, query),
        doc_tokens=_counted_tokens(ranker, document),
        similarity=similarity.astype(np.float32),
        best=best,
        contributions=contributions.astype(np.float32),
        score=float(contributions.sum()),
        model_name=ranker.info.name,
    )
