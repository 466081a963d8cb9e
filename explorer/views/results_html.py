"""HTML for the two ranked lists and the run summary. Every piece of user text is escaped here.

Rows carry `data-doc-id` and `data-rank` so tests (and people with dev tools) can read
the order the page shows.
"""

from __future__ import annotations

import re
from html import escape, unescape

from explorer.pipeline.results import Comparison, RerankedHit

MAX_TEXT_CHARS = 600  # long documents are cut in the list; the full text is in the downloads


def _text(text: str, title: str = "") -> str:
    shown = text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS].rstrip() + " …"
    heading = f"<span class='doc-title'>{escape(title)}</span> " if title else ""
    return f"<div class='doc-text'>{heading}{escape(shown)}</div>"


# What each kind of stage is called on the page.
KIND_TITLES = {
    "lexical": "BM25 (exact words)",
    "bi": "Bi-encoder (one vector per text)",
    "hybrid": "Hybrid (BM25 + bi-encoder, reciprocal rank fusion)",
    "late": "Late interaction (token vectors, MaxSim)",
    "cross": "Cross-encoder (query and document read together)",
}


def move_badge(hit: RerankedHit, first: str = "bi-encoder") -> str:
    """Arrow and count of places moved: ▲ up 3, ▼ down 2, = same, NEW (outside the first stage's top-k)."""
    kind = hit.move_kind
    if kind == "new":
        title, text = f"{first} rank {hit.first_rank}: outside its top-k", f"NEW · was #{hit.first_rank}"
    elif kind == "up":
        title, text = f"up {hit.move} from {first} rank {hit.first_rank}", f"▲ up {hit.move}"
    elif kind == "down":
        title, text = f"down {-hit.move} from {first} rank {hit.first_rank}", f"▼ down {-hit.move}"
    else:
        title, text = f"same rank as the {first}", "= same"
    return f"<span class='move move-{kind}' title='{escape(title, quote=True)}'>{text}</span>"


def _header(title: str, model: str, precision: str, score_name: str) -> str:
    return (
        f"<div class='list-header'><div class='list-title'>{escape(title)}</div>"
        f"<div class='list-meta'>{escape(model)} · <span class='precision'>{escape(precision)}</span>"
        f" · score: {escape(score_name)}</div></div>"
    )


def bi_encoder_list(result: Comparison, titles: dict[str, str] | None = None) -> str:
    """The first stage's top-k (bi-encoder cosine, BM25 or fused score), each row saying where the re-ranker put it."""
    titles = titles or {}
    cross_rank = {h.id: h.rank for h in result.scored_hits()}
    score_name = result.first_score_name
    top_score = max((hit.score for hit in result.first_stage), default=1.0) or 1.0
    short = {"cross": "cross", "late": "late"}.get(result.reranker_kind or "", "re-ranked")
    rows = []
    for hit in result.first_stage:
        after = cross_rank.get(hit.id)
        fate = (
            f"<span class='fate fate-out'>{short} #{after}: out of top-{result.top_k}</span>"
            if after and after > result.top_k
            else f"<span class='fate'>→ {short} #{after}</span>" if after else ""
        )
        # Cosine is on its own 0..1 scale; other scores are drawn relative to this list's best.
        fraction = hit.score if score_name == "cosine" else hit.score / top_score
        bar = max(0.0, min(1.0, fraction)) * 100
        rows.append(
            f"<li class='hit' data-doc-id='{escape(hit.id, quote=True)}' data-rank='{hit.rank}'>"
            f"<span class='rank'>{hit.rank}</span>"
            f"<div class='body'><div class='meta'><span class='doc-id'>[{escape(hit.id)}]</span>"
            f"<span class='score' title='{escape(score_name, quote=True)}'>{hit.score:.3f} {escape(score_name)}</span>{fate}</div>"
            f"<div class='score-bar'><div style='width:{bar:.0f}%'></div></div>"
            f"{_text(hit.text, titles.get(hit.id, ''))}</div></li>"
        )
    title = "Bi-encoder (retrieve)" if result.first_stage_kind == "bi" else f"{result.first_stage_label} (retrieve)"
    header = _header(
        title, result.models["first_stage"], result.precision["first_stage"],
        "cosine similarity" if score_name == "cosine" else score_name,
    )
    return f"<div class='ranked-list bi-list'>{header}<ol>{''.join(rows)}</ol></div>"


def cross_encoder_list(result: Comparison, titles: dict[str, str] | None = None) -> str:
    """The last re-ranker's top-k (a cross-encoder's logit with sigmoid probability) and each row's rank move."""
    titles = titles or {}
    first = result.first_stage_label
    scope = "whole corpus scored" if result.reranked_full is not None else f"re-ranks the {first}'s top-{result.top_k}"
    if result.reranker_kind == "late":
        return _late_list(result, titles, scope)
    rows = []
    for hit in result.shown_reranked():
        rows.append(
            f"<li class='hit moved-{hit.move_kind}' data-doc-id='{escape(hit.id, quote=True)}' data-rank='{hit.rank}'>"
            f"<span class='rank'>{hit.rank}</span>"
            f"<div class='body'><div class='meta'><span class='doc-id'>[{escape(hit.id)}]</span>"
            f"<span class='score' title='cross-encoder logit'>{hit.score:.2f} logit</span>"
            f"<span class='prob' title='sigmoid of the logit'>p = {hit.probability:.3f}</span>"
            f"{move_badge(hit, first)}</div>"
            f"<div class='score-bar prob-bar'><div style='width:{hit.probability * 100:.0f}%'></div></div>"
            f"{_text(hit.text, titles.get(hit.id, ''))}</div></li>"
        )
    header = _header(
        f"Cross-encoder ({scope})",
        result.models["reranker"],
        result.precision["reranker"],
        "logit, sigmoid probability p",
    )
    return f"<div class='ranked-list cross-list'>{header}<ol>{''.join(rows)}</ol></div>"


def _late_list(result: Comparison, titles: dict[str, str], scope: str) -> str:
    """The late-interaction re-ranker's list: MaxSim scores, no probability."""
    top = max((h.score for h in result.shown_reranked()), default=1.0) or 1.0
    rows = [
        f"<li class='hit moved-{hit.move_kind}' data-doc-id='{escape(hit.id, quote=True)}' data-rank='{hit.rank}'>"
        f"<span class='rank'>{hit.rank}</span>"
        f"<div class='body'><div class='meta'><span class='doc-id'>[{escape(hit.id)}]</span>"
        f"<span class='score' title='MaxSim'>{hit.score:.2f} MaxSim</span>{move_badge(hit, result.first_stage_label)}</div>"
        f"<div class='score-bar prob-bar'><div style='width:{max(0.0, hit.score / top) * 100:.0f}%'></div></div>"
        f"{_text(hit.text, titles.get(hit.id, ''))}</div></li>"
        for hit in result.shown_reranked()
    ]
    header = _header(f"Late interaction ({scope})", result.models["reranker"], result.precision["reranker"], "MaxSim")
    return f"<div class='ranked-list cross-list'>{header}<ol>{''.join(rows)}</ol></div>"


def _column_number(label: str) -> str:
    """"1a" for a hybrid's first part ("0a:lexical"), "2" for the first re-ranker ("1:late")."""
    index = label.split(":", 1)[0]
    return f"{int(index[0]) + 1}{index[1:]}"


def stage_columns(result: Comparison) -> str:
    """Every stage side by side, one column each: its ranking of the same k candidates, named score,
    place moved against the first stage, time and pairs (or documents) per second. A hybrid first
    stage is preceded by its two parts (BM25 and the bi-encoder alone), so the four ways of
    matching sit side by side."""
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
            badge = "" if not reranks else (
                f"<span class='move move-up'>▲ {move}</span>" if move > 0
                else f"<span class='move move-down'>▼ {-move}</span>" if move < 0 else "<span class='move move-same'>=</span>"
            )
            rows.append(
                f"<li class='hit' data-doc-id='{escape(hit.id, quote=True)}' data-rank='{hit.rank}'>"
                f"<span class='rank'>{hit.rank}</span><div class='body'><div class='meta'>"
                f"<span class='doc-id'>[{escape(hit.id)}]</span>"
                f"<span class='score'>{hit.score:.3f} {escape(stage.score_name)}</span>{badge}</div></div></li>"
            )
        count = len(stage.ranking) if reranks else result.corpus_size
        rate = f" · {count / (stage.ms / 1000):,.0f} {'pairs' if reranks else 'documents'}/s" if stage.ms > 0 else ""
        alone = " alone" if label[1:2].isalpha() else ""
        header = (
            f"<div class='list-header'><div class='list-title'>{_column_number(label)}. "
            f"{escape(KIND_TITLES.get(stage.kind, stage.kind))}{alone}</div>"
            f"<div class='list-meta'>{escape(stage.name)} · <span class='precision'>{escape(stage.runs_on)}</span>"
            f" · score: {escape(stage.score_name)} · {stage.ms:,.1f} ms{rate}</div></div>"
        )
        columns.append(f"<div class='ranked-list stage-column' data-kind='{escape(stage.kind, quote=True)}' "
                       f"data-label='{escape(label, quote=True)}'>{header}<ol>{''.join(rows)}</ol></div>")
    return f"<div class='stage-columns' style='--columns:{len(columns)}'>{''.join(columns)}</div>"


def _agreement_value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _stage_label(label: str, name: str) -> str:
    """"2. Cross-encoder" for the stage labelled "1:cross", its model named on hover."""
    kind = label.split(":", 1)[1]
    short = KIND_TITLES.get(kind, kind).split(" (")[0]
    return f"<span title='{escape(name, quote=True)}'>{_column_number(label)}. {escape(short)}</span>"


def agreement_html(result: Comparison) -> str:
    """How every two stages agree on this query: overlap@k, Kendall's tau over the documents both
    rank, rank-biased overlap, and the documents whose ranks differ most."""
    agreements = result.agreements()
    if not agreements:
        return ""
    rows = []
    for item in agreements:
        moves = ", ".join(
            f"[{escape(row['id'])}] {row['rank_a']}→{row['rank_b']}" for row in item.largest_disagreements
        ) or "none: same order"
        rows.append(
            f"<tr data-a='{escape(item.a, quote=True)}' data-b='{escape(item.b, quote=True)}'>"
            f"<td>{_stage_label(item.a, item.a_name)} ↔ {_stage_label(item.b, item.b_name)}</td>"
            f"<td class='num'>{item.overlap_at_k:.2f}</td>"
            f"<td class='num'>{_agreement_value(item.kendall_tau_shared)} <span class='muted'>({item.shared} shared)</span></td>"
            f"<td class='num'>{item.rbo:.2f}</td><td>{moves}</td></tr>"
        )
    p = agreements[0].rbo_p
    return (
        "<div class='agreement'><div class='list-title'>Where the stages agree</div>"
        "<table class='agreement-table'><thead><tr><th>stages</th>"
        f"<th title='share of the top-k both hold'>overlap@{agreements[0].k}</th>"
        "<th title=\"scipy's Kendall tau-b over the documents both rankings hold\">Kendall's τ</th>"
        f"<th title='extrapolated rank-biased overlap, persistence p = {p}'>RBO (p = {p})</th>"
        "<th>largest rank differences (first → second)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        "<div class='muted'>τ is over the documents both stages rank; a re-ranker re-orders the first stage's "
        f"top-k, so its overlap with it is 1 and τ says how much it re-ordered. RBO weighs the top places most "
        f"(p = {p}: the first ten carry about 86% of the weight).</div></div>"
    )


def summary_html(result: Comparison) -> str:
    """One line on what ran (corpus, models, precision and device), what changed, and any notes."""
    shown = result.shown_reranked()
    moved = sum(1 for h in shown if h.move_kind in ("up", "down"))
    new = sum(1 for h in shown if h.move_kind == "new")
    same_top = result.first_stage[0].id == shown[0].id
    facts = [
        f"<b>{result.corpus_size:,}</b> documents in {escape(result.corpus_name)}",
        f"top-k <b>{result.top_k}</b>",
        f"<b>{moved}</b> of {len(shown)} moved",
        "same top result" if same_top else "<b>top result changed</b>",
        f"{result.timings_ms.get('total', 0):,.0f} ms in all",
        "corpus embeddings cached" if result.corpus_index_cached else "corpus encoded now",
    ]
    if result.reranked_full is not None:
        facts.insert(3, f"<b>{new}</b> new from outside the {escape(result.first_stage_label)}'s top-k")
    chips = "".join(f"<span class='chip'>{fact}</span>" for fact in facts)
    notes = "".join(f"<div class='note'>⚠ {escape(note)}</div>" for note in result.notes)
    return f"<div class='summary'>{chips}{notes}</div>"


# ---- relevance grades from labels (the Evaluate tab opens a labelled query here) -----------------

# A row's opening tag (its escaped id) up to its id label, never past the row's end.
_HIT_ID = re.compile(r"(<li\b[^>]*\bdata-doc-id='([^']*)'[^>]*>(?:(?!</li>).)*?<span class='doc-id'>[^<]*</span>)",
                     re.DOTALL)
_GRADE_BADGE = re.compile(r"<span class='grade [^']*'[^>]*>[^<]*</span>")


def grade_badge(grade: int | None) -> str:
    """The document's relevance label: its grade (2, 1, 0 ...) or "unjudged" when the labels do not name it."""
    if grade is None:
        return ("<span class='grade grade-unjudged' data-grade='unjudged' "
                "title='no relevance label for this document'>unjudged</span>")
    level = "2" if grade >= 2 else str(max(grade, 0))
    return (f"<span class='grade grade-{level}' data-grade='{int(grade)}' "
            f"title='relevance label: {int(grade)}'>grade {int(grade)}</span>")


def with_grade_badges(list_html: str, grades: dict[str, int]) -> str:
    """A ranked list's HTML (any of the lists above) with each row's grade badge after its id.

    Row ids are read back from `data-doc-id` (escaped when written, unescaped here to look up
    the grade); badges already there are replaced, so applying it twice changes nothing.
    """
    cleaned = _GRADE_BADGE.sub("", list_html or "")
    return _HIT_ID.sub(lambda m: m.group(1) + grade_badge(grades.get(unescape(m.group(2)))), cleaned)
