"""Which moves paid: a query's change in nDCG@10 between two rankings, split over the documents that moved.

trec_eval's nDCG@10 is DCG@10 / IDCG@10 with gain = grade and discount log2(rank + 1); so the change
from ranking A (the first stage) to ranking B (re-ranked) is the sum over documents of
grade x (1 / log2(new rank + 1) - 1 / log2(old rank + 1)) / IDCG@10, where a rank past 10 (or no
rank: the document is not in that ranking) contributes 0. A document that falls out of the top 10
contributes minus its old gain; one that enters, its new gain. The contributions sum to the change
exactly (up to float rounding). An unjudged document contributes 0 whatever its move: moves that
put unjudged documents into (or up) the top 10 are flagged, since a judgment could change the sum.
IDCG@10 is over the query's judged grades, best first (trec_eval's ideal ranking, judged documents
missing from the corpus included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

CUTOFF = 10


def _discount(rank: int | None) -> float:
    return 1.0 / math.log2(rank + 1) if rank is not None and rank <= CUTOFF else 0.0


def ideal_dcg(grades: Mapping[str, int], cutoff: int = CUTOFF) -> float:
    """IDCG@cutoff: the judged grades (> 0) sorted high to low, gain = grade, discount log2(rank + 1)."""
    best = sorted((g for g in grades.values() if g > 0), reverse=True)[:cutoff]
    return sum(g / math.log2(i + 2) for i, g in enumerate(best))


def move_contributions(before: Sequence[str], after: Sequence[str], grades: Mapping[str, int]) -> list[dict]:
    """Every document in either ranking's top 10 whose rank changed: {"doc_id", "old_rank", "new_rank" (1-based,
    None past the ranking), "grade" (None when unjudged), "judged", "contribution" (to nDCG@10 after - before),
    "unjudged_up" (an unjudged document that entered or rose in the top 10)}; largest |contribution| first."""
    old = {doc: i for i, doc in enumerate(before, start=1)}
    new = {doc: i for i, doc in enumerate(after, start=1)}
    ideal = ideal_dcg(grades)
    moved = []
    for doc in dict.fromkeys(list(before[:CUTOFF]) + list(after[:CUTOFF])):
        o, n = old.get(doc), new.get(doc)
        if o == n:
            continue
        judged = doc in grades
        grade = grades.get(doc, 0)
        gain = max(grade, 0)
        contribution = gain * (_discount(n) - _discount(o)) / ideal if ideal > 0 else 0.0
        rose = n is not None and n <= CUTOFF and (o is None or n < o)
        moved.append({"doc_id": doc, "old_rank": o, "new_rank": n, "grade": grade if judged else None,
                      "judged": judged, "contribution": contribution, "unjudged_up": (not judged) and rose})
    moved.sort(key=lambda m: (-abs(m["contribution"]), m["new_rank"] or 10**9, m["doc_id"]))
    return moved


def summarise_moves(per_query: Mapping[str, list[dict]]) -> dict:
    """Summed over queries: the total change (sum of contributions / queries = the change in mean nDCG@10),
    the gains and losses, how many moves carry the net gain (the fewest largest moves in the net's
    direction whose sum reaches it), and how many moves put unjudged documents up."""
    queries = max(len(per_query), 1)
    moves = [m for rows in per_query.values() for m in rows]
    values = sorted((m["contribution"] for m in moves), key=abs, reverse=True)
    net = sum(values)
    carriers, running = 0, 0.0
    for v in sorted((v for v in values if v * net > 0), key=abs, reverse=True):
        if abs(running) >= abs(net) - 1e-12:
            break
        running += v
        carriers += 1
    return {
        "queries": len(per_query), "moves": len(moves), "mean_change": net / queries,
        "gained": sum(v for v in values if v > 0) / queries, "lost": sum(v for v in values if v < 0) / queries,
        "paying_moves": sum(v > 0 for v in values), "costing_moves": sum(v < 0 for v in values),
        "carrying_moves": carriers, "unjudged_up": sum(m["unjudged_up"] for m in moves),
    }


def moves_sentence(summary: dict, a: str, b: str) -> str:
    """One line for the disagreement table: where b's change over a comes from."""
    if summary["moves"] == 0:
        return f"{b} and {a} put the same documents at the same places in every top 10: no move to split."
    direction = "gain" if summary["mean_change"] >= 0 else "loss"
    return (f"{b} against {a}: mean nDCG@10 change {summary['mean_change']:+.4f} = {summary['gained']:+.4f} from "
            f"{summary['paying_moves']} moves that paid and {summary['lost']:+.4f} from {summary['costing_moves']} "
            f"that cost; the {direction} on this set comes from {summary['carrying_moves']} moves (the largest in its "
            f"direction). {summary['unjudged_up']} moves put unjudged documents up the top 10 (they count as 0).")


def moves_by_query(rankings_a: Mapping[str, Sequence[str]], rankings_b: Mapping[str, Sequence[str]],
                   qrels: Mapping[str, Mapping[str, int]]) -> dict[str, list[dict]]:
    """query id -> `move_contributions` from ranking a to ranking b, for every query both rank."""
    return {qid: move_contributions(rankings_a[qid], rankings_b[qid], qrels.get(qid, {}))
            for qid in rankings_a if qid in rankings_b}
