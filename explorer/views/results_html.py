"""HTML for the ranked lists, the stage columns, the agreement table and the run summary.

The markup is in `views/templates/` (Jinja2, autoescaped: every piece of user text is escaped
there); these functions only gather plain values from a `Comparison`.

Rows carry `data-doc-id` and `data-rank` so tests (and people with dev tools) can read
the order the page shows.
"""

from __future__ import annotations

from explorer.pipeline.results import Comparison, RerankedHit
from explorer.views.templating import render

MAX_TEXT_CHARS = 600  # long documents are cut in the list; the full text is in the downloads


def _shown_text(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS].rstrip() + " …"


def _row(hit, scores: list[tuple[str, str, str]], moved: str | None = None, fate: tuple[str, str] | None = None,
         move: tuple[str, str, str] | None = None, bar: tuple[str, float] | None = None,
         titles: dict[str, str] | None = None, with_text: bool = True) -> dict:
    """One row for `ranked_list.html.j2`: plain values; the template escapes and lays them out."""
    return {
        "id": hit.id, "rank": hit.rank, "scores": scores, "moved": moved, "fate": fate, "move": move, "bar": bar,
        "text": _shown_text(hit.text) if with_text else None, "title": (titles or {}).get(hit.id, ""),
        # An equal score: "=" and the rank the tied documents share (see `pipeline/results.py`).
        "tie": hit.shared_rank if getattr(hit, "tied", False) else None,
    }


def _list(css: str, title: str, model: str, runs_on: str, score_name: str, rows: list[dict],
          extra: str = "", data: list[tuple[str, str]] | None = None, stage=None) -> dict:
    """One list for the template; `stage`'s note (BM25 matched nothing) and BM25's analyzer go under its title."""
    notes = [] if stage is None else [stage.note, stage.analyzer and f"BM25 analyzer: {stage.analyzer}", stage.prompts]
    if stage is not None and stage.engine:  # what ran: the packed engine or the model's own (library) forward
        runs_on = f"{runs_on}, {stage.engine}"
    return {"css": css, "title": title, "model": model, "runs_on": runs_on, "score_name": score_name,
            "rows": rows, "extra": extra, "data": data or [], "notes": [note for note in notes if note]}


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


def bi_encoder_list(result: Comparison, titles: dict[str, str] | None = None,
                    grades: dict[str, int] | None = None) -> str:
    """The first stage's top-k (bi-encoder cosine, BM25 or fused score), each row saying where the re-ranker put it.

    `grades` (a labelled query's {doc id: relevance grade}) adds each row's grade badge ("unjudged"
    for a document the labels do not name); None adds none.
    """
    cross_rank = {h.id: h.rank for h in result.scored_hits()}
    score_name = result.first_score_name
    top_score = max((hit.score for hit in result.first_stage), default=1.0) or 1.0
    short = {"cross": "cross", "late": "late"}.get(result.reranker_kind or "", "re-ranked")
    rows = []
    for hit in result.first_stage:
        after = cross_rank.get(hit.id)
        fate = (("fate-out", f"{short} #{after}: out of top-{result.top_k}") if after and after > result.top_k
                else ("", f"→ {short} #{after}") if after else None)
        # Cosine is on its own 0..1 scale; other scores are drawn relative to this list's best.
        fraction = hit.score if score_name == "cosine" else hit.score / top_score
        rows.append(_row(hit, [("score", score_name, f"{hit.score:.3f} {score_name}")], fate=fate,
                         bar=("", max(0.0, min(1.0, fraction)) * 100), titles=titles))
    title = "Bi-encoder (retrieve)" if result.first_stage_kind == "bi" else f"{result.first_stage_label} (retrieve)"
    shown = _list("bi-list", title, result.models["first_stage"], result.runs_on["first_stage"],
                  "cosine similarity" if score_name == "cosine" else score_name, rows,
                  stage=result.stages[0] if result.stages else None)
    return render("ranked_list.html.j2", list=shown, grades=grades)


def cross_encoder_list(result: Comparison, titles: dict[str, str] | None = None,
                       grades: dict[str, int] | None = None) -> str:
    """The last re-ranker's top-k (a cross-encoder's logit with sigmoid probability, or late
    interaction's MaxSim) and each row's rank move; `grades` as in `bi_encoder_list`."""
    first = result.first_stage_label
    scope = "whole corpus scored" if result.reranked_full is not None else f"re-ranks the {first}'s top-{result.top_k}"
    hits = result.shown_reranked()
    if result.reranker_kind == "late":
        top = max((h.score for h in hits), default=1.0) or 1.0
        rows = [_row(hit, [("score", "MaxSim", f"{hit.score:.2f} MaxSim")], moved=hit.move_kind,
                     move=move_badge(hit, first), bar=("prob-bar", max(0.0, hit.score / top) * 100), titles=titles)
                for hit in hits]
        shown = _list("cross-list", f"Late interaction ({scope})", result.models["reranker"],
                      result.runs_on["reranker"], "MaxSim", rows)
    else:
        stage = result.stages[-1] if result.stages else None
        # The probability column is the model's own activation, named ("sigmoid(logit)", "raw score", ...).
        named = (stage.probability_name if stage is not None else "") or "sigmoid(logit)"
        probability = named != "raw score"
        rows = [_row(hit, [("score", "cross-encoder logit", f"{hit.score:.2f} logit"),
                           ("prob", named, f"p = {hit.probability:.3f}" if probability else f"{hit.probability:.3f} {named}"),
                           *([("labels", "softmax over the model's labels", " · ".join(
                               f"{name} {p:.2f}" for name, p in hit.label_probabilities.items()))]
                             if hit.label_probabilities else [])],
                     moved=hit.move_kind, move=move_badge(hit, first),
                     bar=("prob-bar", max(0.0, min(1.0, hit.probability)) * 100) if probability else None,
                     titles=titles)
                for hit in hits]
        score_name = stage.score_name if stage is not None else "logit"
        shown = _list("cross-list", f"Cross-encoder ({scope})", result.models["reranker"], result.runs_on["reranker"],
                      f"{score_name}, {named}" + (" p" if probability else ""), rows, stage=stage)
    return render("ranked_list.html.j2", list=shown, grades=grades)


def _column_number(label: str) -> str:
    """"1a" for a hybrid's first part ("0a:lexical"), "2" for the first re-ranker ("1:late")."""
    index = label.split(":", 1)[0]
    return f"{int(index[0]) + 1}{index[1:]}"


def stage_columns(result: Comparison, grades: dict[str, int] | None = None) -> str:
    """Every stage side by side, one column each: its ranking of the same k candidates, named score,
    place moved against the first stage, time and pairs (or documents) per second. A hybrid first
    stage is preceded by its two parts (BM25 and the bi-encoder alone), so the four ways of
    matching sit side by side. Empty when there are two columns or fewer (the two lists say it all)."""
    columns_shown = result.labelled_columns()
    if len(columns_shown) <= 2:
        return ""
    first_rank = {hit.id: hit.rank for hit in result.stages[0].ranking}
    columns = []
    for label, stage in columns_shown:
        reranks = not label.startswith("0")  # first stages (and a hybrid's parts) rank the whole corpus
        rows = []
        for hit in stage.ranking:
            move = first_rank.get(hit.id, hit.rank) - hit.rank
            badge = None if not reranks else (
                ("up", "", f"▲ {move}") if move > 0 else ("down", "", f"▼ {-move}") if move < 0 else ("same", "", "=")
            )
            rows.append(_row(hit, [("score", "", f"{hit.score:.3f} {stage.score_name}")], move=badge, with_text=False))
        count = len(stage.ranking) if reranks else result.corpus_size
        rate = f" · {count / (stage.ms / 1000):,.0f} {'pairs' if reranks else 'documents'}/s" if stage.ms > 0 else ""
        alone = " alone" if label[1:2].isalpha() else ""
        columns.append(_list(
            "stage-column", f"{_column_number(label)}. {KIND_TITLES.get(stage.kind, stage.kind)}{alone}",
            stage.name, stage.runs_on, stage.score_name, rows, extra=f" · {stage.ms:,.1f} ms{rate}",
            data=[("kind", stage.kind), ("label", label)], stage=stage,
        ))
    return render("ranked_list.html.j2", columns=columns, grades=grades)


def _stage_title(label: str) -> str:
    """"2. Cross-encoder" for the stage labelled "1:cross"."""
    kind = label.split(":", 1)[1]
    return f"{_column_number(label)}. {KIND_TITLES.get(kind, kind).split(' (')[0]}"


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
