"""HTML for the agreement table and the run summary, and the names and move badges the board uses
(the board itself: `views/board.py`).

The markup is in `views/templates/` (Jinja2, autoescaped: every piece of user text is escaped
there); these functions only gather plain values from a `Comparison`.
"""

from __future__ import annotations

from explorer.pipeline.results import Comparison, RerankedHit
from explorer.views.templating import render

# What each kind of stage is called on the page.
KIND_TITLES = {
    "lexical": "BM25 (exact words)",
    "bi": "Bi-encoder (one vector per text)",
    "hybrid": "Hybrid (BM25 + bi-encoder, reciprocal rank fusion)",
    "late": "Late interaction (token vectors, MaxSim)",
    "cross": "Cross-encoder (query and document read together)",
}


def move_badge(hit: RerankedHit, first: str = "bi-encoder") -> tuple[str, str, str]:
    """(kind, hover text, label) of a row's rank move: ▲ up 3, ▼ down 2, = same, NEW (outside the first stage's top-k)."""
    kind = hit.move_kind
    if kind == "new":
        return kind, f"{first} rank {hit.first_rank}: outside its top-k", f"NEW · was #{hit.first_rank}"
    if kind == "up":
        return kind, f"up {hit.move} from {first} rank {hit.first_rank}", f"▲ up {hit.move}"
    if kind == "down":
        return kind, f"down {-hit.move} from {first} rank {hit.first_rank}", f"▼ down {-hit.move}"
    return kind, f"same rank as the {first}", "= same"


def column_number(label: str) -> str:
    """"1a" for a hybrid's first part ("0a:lexical"), "2" for the first re-ranker ("1:late")."""
    index = label.split(":", 1)[0]
    return f"{int(index[0]) + 1}{index[1:]}"


def _stage_title(label: str) -> str:
    """"2. Cross-encoder" for the stage labelled "1:cross"."""
    kind = label.split(":", 1)[1]
    return f"{column_number(label)}. {KIND_TITLES.get(kind, kind).split(' (')[0]}"


def agreement_html(result: Comparison) -> str:
    """How every two stages agree on this query: overlap@k, Kendall's tau over the documents both
    rank, rank-biased overlap, and the documents whose ranks differ most."""
    agreements = result.agreements()
    if not agreements:
        return ""
    rows = [
        {"a": item.a, "b": item.b, "a_title": _stage_title(item.a), "b_title": _stage_title(item.b),
         "a_name": item.a_name, "b_name": item.b_name, "overlap": item.overlap_at_k, "tau": item.kendall_tau_shared,
         "shared": item.shared, "rbo": item.rbo,
         "moves": [(row["id"], row["rank_a"], row["rank_b"]) for row in item.largest_disagreements]}
        for item in agreements
    ]
    return render("agreement.html.j2", rows=rows, k=agreements[0].k, p=agreements[0].rbo_p)


def summary_html(result: Comparison) -> str:
    """One line on what ran (corpus, models, precision and device), what changed, and any notes."""
    shown = result.shown_reranked()
    return render(
        "summary.html.j2",
        corpus_size=result.corpus_size, corpus_name=result.corpus_name, top_k=result.top_k,
        moved=sum(1 for h in shown if h.move_kind in ("up", "down")), shown=len(shown),
        new=sum(1 for h in shown if h.move_kind == "new") if result.reranked_full is not None else None,
        first_stage_label=result.first_stage_label, same_top=result.first_stage[0].id == shown[0].id,
        total_ms=result.timings_ms.get("total", 0), cached=result.corpus_index_cached, notes=result.notes,
    )
