"""How far two rankings of the same query agree: overlap@k, Kendall's tau, rank-biased overlap,
and the documents they disagree on most.

Every function takes rankings as lists of document ids, best first.

* `overlap_at_k`: |top-k of A ∩ top-k of B| / k.
* `kendall_tau_shared`: scipy's `kendalltau` (tau-b) over the ranks of the documents BOTH rankings
  hold; a document only one of them ranks is left out (it has no rank in the other list to
  compare), and how many were shared is reported beside it. Fewer than two shared documents
  give None.
* `rbo`: rank-biased overlap (Webber, Moffat and Zobel 2010) with persistence p = 0.9 by
  default, the **extrapolated** form RBO_ext for two lists cut to the same depth k
  (their eq. 32): (X_k / k) p^k + (1 - p) / p * sum_{d=1..k} (X_d / d) p^d, where X_d is the
  overlap of the two top-d prefixes. It assumes the agreement seen at depth k goes on below
  it, so two identical lists score exactly 1 (the lower bound RBO_min would give 1 - p^k).
  With p = 0.9 the first ten places carry about 86% of the weight.
* `largest_disagreements`: the shared documents with the largest |rank in A - rank in B|.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

RBO_P = 0.9
DISAGREEMENTS_SHOWN = 3


def overlap_at_k(a: Sequence[str], b: Sequence[str], k: int) -> float:
    """Share of the top-k documents the two rankings have in common (0..1)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return len(set(a[:k]) & set(b[:k])) / k


def shared_ranks(a: Sequence[str], b: Sequence[str]) -> tuple[list[str], list[int], list[int]]:
    """The documents both rankings hold (in A's order) and their 1-based ranks in A and in B."""
    rank_b = {doc: place for place, doc in enumerate(b, start=1)}
    shared = [doc for doc in a if doc in rank_b]
    rank_a = {doc: place for place, doc in enumerate(a, start=1)}
    return shared, [rank_a[d] for d in shared], [rank_b[d] for d in shared]


def kendall_tau_shared(a: Sequence[str], b: Sequence[str]) -> tuple[float | None, int]:
    """scipy's Kendall tau-b over the shared documents' ranks, and how many documents were shared."""
    from scipy.stats import kendalltau

    shared, ranks_a, ranks_b = shared_ranks(a, b)
    if len(shared) < 2:
        return None, len(shared)
    tau = kendalltau(ranks_a, ranks_b).statistic
    return (None if tau != tau else float(tau)), len(shared)  # nan (no variation) -> None


def rbo(a: Sequence[str], b: Sequence[str], p: float = RBO_P, k: int | None = None) -> float:
    """Extrapolated rank-biased overlap of the two lists cut to depth k (default: the shorter length)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be between 0 and 1")
    k = min(len(a), len(b)) if k is None else min(k, len(a), len(b))
    if k == 0:
        return 0.0
    seen_a, seen_b, overlap, weighted = set(), set(), 0, 0.0
    for depth in range(1, k + 1):
        x, y = a[depth - 1], b[depth - 1]
        # Overlap of the prefixes grows by each new item that the other prefix already holds.
        if x == y:
            overlap += 1
        else:
            overlap += (x in seen_b) + (y in seen_a)
        seen_a.add(x)
        seen_b.add(y)
        weighted += overlap / depth * p**depth
    return overlap / k * p**k + (1.0 - p) / p * weighted


def largest_disagreements(a: Sequence[str], b: Sequence[str], count: int = DISAGREEMENTS_SHOWN) -> list[dict]:
    """The shared documents whose ranks differ most: {"id", "rank_a", "rank_b", "difference"} (b - a)."""
    shared, ranks_a, ranks_b = shared_ranks(a, b)
    rows = [{"id": d, "rank_a": ra, "rank_b": rb, "difference": rb - ra} for d, ra, rb in zip(shared, ranks_a, ranks_b)]
    rows = [r for r in rows if r["difference"] != 0]
    rows.sort(key=lambda r: (-abs(r["difference"]), r["rank_a"]))  # ties: the one A ranks higher first
    return rows[:count]


@dataclass
class Agreement:
    """How two stages' rankings of one query agree."""

    a: str  # the stages, as "index:kind" (0 is the first stage)
    b: str
    a_name: str
    b_name: str
    k: int  # the depth compared: the shorter ranking's length
    overlap_at_k: float
    kendall_tau_shared: float | None  # over the shared documents only
    shared: int  # how many documents both rankings hold
    rbo: float  # extrapolated, persistence `rbo_p`
    rbo_p: float
    largest_disagreements: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Every field, as JSON-ready values."""
        return asdict(self)


def agreement(a: Sequence[str], b: Sequence[str], a_label: str = "a", b_label: str = "b",
              a_name: str = "", b_name: str = "", p: float = RBO_P) -> Agreement:
    """Every measure above for two rankings (document ids, best first)."""
    k = min(len(a), len(b))
    tau, shared = kendall_tau_shared(a, b)
    return Agreement(
        a=a_label, b=b_label, a_name=a_name, b_name=b_name, k=k,
        overlap_at_k=overlap_at_k(a, b, k) if k else 0.0,
        kendall_tau_shared=tau, shared=shared, rbo=rbo(a, b, p), rbo_p=p,
        largest_disagreements=largest_disagreements(a, b),
    )


def pairwise(rankings: Sequence[tuple[str, str, Sequence[str]]], p: float = RBO_P) -> list[Agreement]:
    """Agreement of every pair (i < j) of (label, name, ranking)."""
    return [
        agreement(ra, rb, la, lb, na, nb, p)
        for i, (la, na, ra) in enumerate(rankings)
        for (lb, nb, rb) in rankings[i + 1:]
    ]
