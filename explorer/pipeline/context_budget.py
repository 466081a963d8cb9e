"""How much relevant text reaches an LLM's context: the top documents of a ranking that fit a token budget.

A ranking's documents are taken best first while their token counts add up to at most the budget
(the first that does not fit ends the context: a RAG prompt keeps rank order). Tokens are counted
with the cross-encoder's own tokenizer (`token_counts`; WordPiece for the MS MARCO MiniLM), without
special tokens: the LLM's tokenizer will differ, so read the counts as an estimate of its size.
Per query: how many documents fit, their tokens, the sum of their grades, and recall of grade >= 1
(relevant in the context / relevant judged); means over the queries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from explorer.errors import ExplorerError
from explorer.pipeline.measures import Qrels

DEFAULT_BUDGETS = (1000, 2000, 4000)


def parse_budgets(value: str | Sequence[int]) -> list[int]:
    """"1000,2000" -> [1000, 2000] (sorted, each once); ExplorerError for anything but positive whole numbers."""
    from explorer.budgets import check_whole_number

    items = [v for v in ([v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)) if v != ""]
    budgets = sorted({check_whole_number(v, "token budget") for v in items})
    if not budgets or budgets[0] < 1:
        raise ExplorerError("Give token budgets as positive whole numbers, e.g. --budgets 1000,2000,4000.")
    return budgets


def token_counts(tokenize: Callable[[list[str]], dict], texts: Mapping[str, str]) -> dict[str, int]:
    """{doc id: tokens} with a Hugging Face tokenizer called on a batch (no special tokens, no truncation)."""
    ids = list(texts)
    encoded = tokenize([texts[i] for i in ids], add_special_tokens=False, truncation=False)["input_ids"]
    return {doc: len(tokens) for doc, tokens in zip(ids, encoded)}


def fit_in_budget(ranking: Sequence[str], counts: Mapping[str, int], budget: int) -> list[str]:
    """The longest prefix of `ranking` whose token counts sum to at most `budget`."""
    kept, used = [], 0
    for doc in ranking:
        if used + counts[doc] > budget:
            break
        kept.append(doc)
        used += counts[doc]
    return kept


def context_budget(rankings: Mapping[str, Mapping[str, Sequence[str]]], counts: Mapping[str, int], qrels: Qrels,
                   budgets: Sequence[int]) -> dict[str, dict[int, dict]]:
    """pipeline -> budget -> {"documents", "tokens", "grade_sum", "recall"} (means over queries) and
    "per_query" (query id -> the same for that query). Queries without a relevant judgment are left out.
    `rankings` are pipeline -> query id -> doc ids best first; every doc needs a count."""
    result: dict[str, dict[int, dict]] = {}
    for name, runs in rankings.items():
        result[name] = {}
        for budget in budgets:
            per_query = {}
            for qid, ranking in runs.items():
                grades = qrels.get(qid, {})
                relevant = {doc for doc, g in grades.items() if g >= 1}
                if not relevant:
                    continue
                kept = fit_in_budget(ranking, counts, budget)
                per_query[qid] = {
                    "documents": len(kept), "tokens": sum(counts[d] for d in kept),
                    "grade_sum": sum(max(grades.get(d, 0), 0) for d in kept),
                    "recall": len(relevant.intersection(kept)) / len(relevant),
                }
            means = {key: float(np.mean([v[key] for v in per_query.values()])) if per_query else 0.0
                     for key in ("documents", "tokens", "grade_sum", "recall")}
            result[name][budget] = means | {"per_query": per_query}
    return result


def format_context_budget(result: dict[str, dict[int, dict]], tokenizer_name: str) -> str:
    """The readable table: per pipeline and budget, documents in, tokens, grade sum and recall (means)."""
    lines = [f"Context budget (tokens by {tokenizer_name}'s tokenizer; means over queries):",
             f"  {'pipeline':<18}{'budget':>8}{'docs':>7}{'tokens':>9}{'grades':>8}{'recall':>8}"]
    for name, by_budget in result.items():
        for budget, v in by_budget.items():
            lines.append(f"  {name:<18}{budget:>8}{v['documents']:>7.1f}{v['tokens']:>9.0f}{v['grade_sum']:>8.2f}"
                         f"{v['recall']:>8.3f}")
    return "\n".join(lines)
