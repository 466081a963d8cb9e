"""Measures over the judgments made so far on the workbench: how good a column looks, and how sure.

A column's ranking is scored against the grades given for its query (0..3; nDCG's gain is the grade,
P and RR count grade >= 1, trec_eval's conventions, computed by trec_eval through
`measures.precision_measures`). Two readings of the holes:

- unjudged counted as non-relevant (trec_eval's default): a column full of unjudged documents looks bad;
- condensed (Sakai 2007, "Alternatives to Bpref"; trec_eval -J): the unjudged documents are removed from
  the ranking first and the rest move up, so only what was judged is scored.

Far apart, the two say the judging has holes in this column: judge the unjudged ids listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from explorer.pipeline.measures import precision_measures

Grades = dict[str, int]  # doc id -> grade 0..3, judged documents only

_QUERY = "q"  # the one query each call scores


@dataclass
class JudgedMeasures:
    """One column's measures on one query's judgments; every measure is None when nothing is judged.

    `ndcg`, `precision`, `rr`: nDCG@k, P@k, RR@k with unjudged documents counted as non-relevant.
    `*_condensed`: the same on the condensed list (unjudged removed, the rest moved up).
    `unjudged`: the ids among the ranking's top k with no grade, best first; `judged`: how many of the
    top k have one. `k`: the cutoff (10 by default).
    """

    ndcg: float | None
    precision: float | None
    rr: float | None
    ndcg_condensed: float | None
    precision_condensed: float | None
    rr_condensed: float | None
    unjudged: list[str] = field(default_factory=list)
    judged: int = 0
    k: int = 10

    def labels(self) -> list[tuple[str, float | None]]:
        """(label, value) in the order shown: nDCG@k, P@k, RR@k, then the three "condensed"."""
        k = self.k
        return [(f"nDCG@{k}", self.ndcg), (f"P@{k}", self.precision), (f"RR@{k}", self.rr),
                (f"nDCG@{k} condensed", self.ndcg_condensed), (f"P@{k} condensed", self.precision_condensed),
                (f"RR@{k} condensed", self.rr_condensed)]


def judged_measures(ranking: Sequence[str], grades: Grades, k: int = 10) -> JudgedMeasures:
    """nDCG@k, P@k and RR@k of `ranking` (doc ids, best first) on `grades`, plain and condensed.

    The ideal DCG is over every judged grade of the query (judged documents the ranking lacks count,
    as in trec_eval). With no grade at all every measure is None (nothing to measure yet).
    """
    ranking = list(ranking)
    top = ranking[:k]
    unjudged = [doc for doc in top if doc not in grades]
    judged = len(top) - len(unjudged)
    if not grades:
        return JudgedMeasures(None, None, None, None, None, None, unjudged, judged, k)
    condensed = [doc for doc in ranking if doc in grades]
    qrels = {_QUERY: dict(grades)}
    plain = precision_measures({_QUERY: ranking}, qrels, k)[_QUERY]
    held = precision_measures({_QUERY: condensed}, qrels, k)[_QUERY]
    names = (f"nDCG@{k}", f"P@{k}", f"RR@{k}")
    return JudgedMeasures(*(plain[n] for n in names), *(held[n] for n in names), unjudged, judged, k)


def ideal_order(grades: Grades) -> list[tuple[str, int]]:
    """The judged documents by grade, best first, ties by id: what an ideal column would list."""
    return sorted(grades.items(), key=lambda item: (-item[1], item[0]))
