"""HTML for the two ranked lists and the run summary. Every piece of user text is escaped here.

Rows carry `data-doc-id` and `data-rank` so tests (and people with dev tools) can read
the order the page shows.
"""

from __future__ import annotations

from html import escape

from explorer.pipeline.results import Comparison, RerankedHit

MAX_TEXT_CHARS = 600  # long documents are cut in the list; the full text is in the downloads


def _text(text: str, title: str = "") -> str:
    shown = text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS].rstrip() + " …"
    heading = f"<span class='doc-title'>{escape(title)}</span> " if title else ""
    return f"<div class='doc-text'>{heading}{escape(shown)}</div>"


def move_badge(hit: RerankedHit) -> str:
    """Arrow and count of places moved: ▲ up 3, ▼ down 2, = same, NEW (outside the bi-encoder's top-k)."""
    kind = hit.move_kind
    if kind == "new":
        title, text = f"bi-encoder rank {hit.first_rank}: outside its top-k", f"NEW · was #{hit.first_rank}"
    elif kind == "up":
        title, text = f"up {hit.move} from bi-encoder rank {hit.first_rank}", f"▲ up {hit.move}"
    elif kind == "down":
        title, text = f"down {-hit.move} from bi-encoder rank {hit.first_rank}", f"▼ down {-hit.move}"
    else:
        title, text = "same rank as the bi-encoder", "= same"
    return f"<span class='move move-{kind}' title='{title}'>{text}</span>"


def _header(title: str, model: str, precision: str, score_name: str) -> str:
    return (
        f"<div class='list-header'><div class='list-title'>{escape(title)}</div>"
        f"<div class='list-meta'>{escape(model)} · <span class='precision'>{escape(precision)}</span>"
        f" · score: {escape(score_name)}</div></div>"
    )


def bi_encoder_list(result: Comparison, titles: dict[str, str] | None = None) -> str:
    """The bi-encoder's top-k by cosine, each row saying where the cross-encoder put it."""
    titles = titles or {}
    cross_rank = {h.id: h.rank for h in result.scored_hits()}
    rows = []
    for hit in result.first_stage:
        after = cross_rank.get(hit.id)
        fate = (
            f"<span class='fate fate-out'>cross #{after}: out of top-{result.top_k}</span>"
            if after and after > result.top_k
            else f"<span class='fate'>→ cross #{after}</span>"
        )
        bar = max(0.0, min(1.0, hit.score)) * 100
        rows.append(
            f"<li class='hit' data-doc-id='{escape(hit.id, quote=True)}' data-rank='{hit.rank}'>"
            f"<span class='rank'>{hit.rank}</span>"
            f"<div class='body'><div class='meta'><span class='doc-id'>[{escape(hit.id)}]</span>"
            f"<span class='score' title='cosine similarity'>{hit.score:.3f} cosine</span>{fate}</div>"
            f"<div class='score-bar'><div style='width:{bar:.0f}%'></div></div>"
            f"{_text(hit.text, titles.get(hit.id, ''))}</div></li>"
        )
    header = _header(
        "Bi-encoder (retrieve)", result.models["first_stage"], result.precision["first_stage"], "cosine similarity"
    )
    return f"<div class='ranked-list bi-list'>{header}<ol>{''.join(rows)}</ol></div>"


def cross_encoder_list(result: Comparison, titles: dict[str, str] | None = None) -> str:
    """The cross-encoder's top-k by logit (with sigmoid probability) and each row's rank move."""
    titles = titles or {}
    scope = "whole corpus scored" if result.reranked_full is not None else f"re-ranks the bi-encoder's top-{result.top_k}"
    rows = []
    for hit in result.shown_reranked():
        rows.append(
            f"<li class='hit moved-{hit.move_kind}' data-doc-id='{escape(hit.id, quote=True)}' data-rank='{hit.rank}'>"
            f"<span class='rank'>{hit.rank}</span>"
            f"<div class='body'><div class='meta'><span class='doc-id'>[{escape(hit.id)}]</span>"
            f"<span class='score' title='cross-encoder logit'>{hit.score:.2f} logit</span>"
            f"<span class='prob' title='sigmoid of the logit'>p = {hit.probability:.3f}</span>"
            f"{move_badge(hit)}</div>"
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
        facts.insert(3, f"<b>{new}</b> new from outside the bi-encoder's top-k")
    chips = "".join(f"<span class='chip'>{fact}</span>" for fact in facts)
    notes = "".join(f"<div class='note'>⚠ {escape(note)}</div>" for note in result.notes)
    return f"<div class='summary'>{chips}{notes}</div>"
