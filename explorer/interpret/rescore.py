"""Edit a document and score it again: the new logit, the change, which words changed, and
where the edited document would now rank among the other candidates."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from explorer.budgets import MAX_DIFF_WORDS, check_edit_chars
from explorer.interpret.pair import check_pair_texts
from explorer.rankers.cross_encoder import CrossEncoder


@dataclass
class Rescore:
    """One edit of a document, rescored: logits before and after (fp32 when the scorer is), the
    words changed, and the 1-based rank before and after among the other candidates."""

    score_before: float  # logit of the original document
    score_after: float  # logit of the edited document
    delta: float  # score_after - score_before
    changes: list[dict]  # {"op": "replace"|"delete"|"insert", "before": str, "after": str, "word": int}
    rank_before: int | None  # 1-based among the other candidates' scores (None without candidates)
    rank_after: int | None
    candidates: int  # how many other candidates were given

    def to_dict(self) -> dict:
        """Every field, as JSON-ready values."""
        return asdict(self)


def word_changes(before: str, after: str, max_words: int = MAX_DIFF_WORDS) -> list[dict]:
    """The words that differ, by difflib over whitespace-separated words; `word` is the
    position of the change in the original document's words.

    The words both texts start and end with are set aside first (linear time); difflib, quadratic
    in the worst case, compares what is left only when each side holds at most `max_words`; past
    that the changed middle is reported as one replacement.
    """
    old, new = re.findall(r"\S+", before), re.findall(r"\S+", after)
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    old_mid, new_mid = old[head:len(old) - tail], new[head:len(new) - tail]
    if not old_mid and not new_mid:
        return []
    if len(old_mid) > max_words or len(new_mid) > max_words:
        op = "delete" if not new_mid else "insert" if not old_mid else "replace"
        return [{"op": op, "before": " ".join(old_mid), "after": " ".join(new_mid), "word": head}]
    changes = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old_mid, b=new_mid, autojunk=False).get_opcodes():
        if op != "equal":
            changes.append({"op": op, "before": " ".join(old_mid[i1:i2]), "after": " ".join(new_mid[j1:j2]),
                            "word": head + i1})
    return changes


def rank_among(score: float, candidate_scores: Sequence[float]) -> int:
    """1-based rank of `score` among the *other* candidates' scores; a tie ranks it first."""
    return 1 + sum(float(other) > score for other in candidate_scores)


def edit_and_rescore(scorer: CrossEncoder, query: str, document: str, edited: str,
                     candidate_scores: Sequence[float] = ()) -> Rescore:
    """Score the original and the edited document in one batch; `candidate_scores` are the other
    candidates' logits for the same query (the document itself not among them)."""
    query, document = check_pair_texts(query, document)
    _, edited = check_pair_texts(query, edited)
    check_edit_chars(edited)
    scorer.check_query(query)
    before, after = (float(s) for s in scorer.score_query(query, [document, edited]).logits)
    has_candidates = len(candidate_scores) > 0
    return Rescore(
        score_before=before,
        score_after=after,
        delta=after - before,
        changes=word_changes(document, edited),
        rank_before=rank_among(before, candidate_scores) if has_candidates else None,
        rank_after=rank_among(after, candidate_scores) if has_candidates else None,
        candidates=len(candidate_scores),
    )


def rescore_among(scorer: CrossEncoder, query: str, document: str, edited: str, others: Sequence[str]) -> Rescore:
    """`edit_and_rescore` against the other candidates' texts: scores them for `query` first (one
    batch; none when `others` is empty), so the edited document's new rank is among them."""
    candidate_scores = scorer.score_query(query, list(others)).logits if others else []
    return edit_and_rescore(scorer, query, document, edited, candidate_scores)
