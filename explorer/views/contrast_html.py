"""HTML for "why is A above B": both documents shaded on one colour scale, and the edits tried.

Every piece of user text is escaped here.
"""

from __future__ import annotations

from html import escape

from explorer.interpret.contrast import PairGap

GREEN, RED = "22, 163, 74", "220, 38, 38"


def _key(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def _shaded(document: str, words: list[dict], scale: float, other_words: set[str]) -> str:
    """The document with each word shaded by its contribution on the shared `scale`; words the
    other document also has are underlined, so shared and unshared words are easy to tell apart."""
    parts, cursor = [], 0
    for word in words:
        parts.append(escape(document[cursor : word["start"]]))
        strength = min(1.0, abs(word["delta"]) / scale) if scale > 0 else 0.0
        color = GREEN if word["delta"] >= 0 else RED
        shared = _key(document[word["start"] : word["end"]]) in other_words
        parts.append(
            f"<span class='contrast-word{' shared' if shared else ''}' "
            f"style='background: rgba({color}, {0.08 + 0.72 * strength:.2f})' "
            f"title='{word['delta']:+.3f} logit{' · in both documents' if shared else ' · only in this document'}'>"
            f"{escape(document[word['start'] : word['end']])}</span>"
        )
        cursor = word["end"]
    parts.append(escape(document[cursor:]))
    return "".join(parts)


def contrast_html(gap: PairGap, doc_a: str, doc_b: str, id_a: str, id_b: str) -> str:
    """Both logits and the gap, both documents on one shared colour scale, and the computed summary."""
    scale = max([abs(w["delta"]) for w in gap.attribution_a + gap.attribution_b] or [1.0])
    keys_a = {_key(w["word"]) for w in gap.attribution_a}
    keys_b = {_key(w["word"]) for w in gap.attribution_b}
    blocks = []
    for name, doc_id, document, words, score, others in (
        ("A", id_a, doc_a, gap.attribution_a, gap.score_a, keys_b),
        ("B", id_b, doc_b, gap.attribution_b, gap.score_b, keys_a),
    ):
        blocks.append(
            f"<div class='contrast-doc' data-doc-id='{escape(doc_id, quote=True)}'>"
            f"<div class='contrast-head'><b>{name}</b> [{escape(doc_id)}] · <span class='contrast-score'>"
            f"{score:.3f}</span> logit</div><div class='contrast-text'>{_shaded(document, words, scale, others)}</div></div>"
        )
    summary = "".join(f"<li>{escape(line)}</li>" for line in gap.summary)
    notes = "".join(f"<div class='note'>⚠ {escape(note)}</div>" for note in gap.notes)
    return (
        f"<div class='contrast' data-gap='{gap.gap:.6f}'>"
        f"<div class='contrast-gap'>A − B = <b>{gap.gap:+.3f}</b> logit ({escape(gap.method)}; "
        f"{escape(gap.attribution_unit)}; one colour scale for both, ±{scale:.3f} at full colour; "
        f"underlined words are in both documents)</div>"
        f"<div class='contrast-docs'>{''.join(blocks)}</div><ul class='contrast-summary'>{summary}</ul>{notes}</div>"
    )


PENDING = {
    "occlusion": "occlusion is rescoring every word of both documents deleted in turn (one pass per word: "
                 "several seconds on two cores)",
    "ig": "Integrated Gradients is integrating the gradients along the path from the baseline (one forward "
          "and backward pass per step and document)",
    "gradxinput": "gradient × input is taking one gradient per document",
}


def pending_html(score_a: float, score_b: float, id_a: str, id_b: str, method: str) -> str:
    """Both logits and the gap, shown while the attributions are computed."""
    return (
        f"<div class='contrast contrast-pending' data-gap='{score_a - score_b:.6f}'>"
        f"<div class='contrast-gap'>A [{escape(id_a)}] {score_a:.3f} − B [{escape(id_b)}] {score_b:.3f} = "
        f"<b>{score_a - score_b:+.3f}</b> logit</div>"
        f"<div class='note'>⏳ {escape(PENDING.get(method, method))}; the shaded words follow.</div></div>"
    )


def edits_html(edits: list[dict]) -> str:
    """The edits tried so far, newest last: score before and after, change, rank among the candidates."""
    if not edits:
        return ""
    rows = []
    for number, edit in enumerate(edits, start=1):
        changed = ", ".join(
            f"{escape(c['before'] or '∅')} → {escape(c['after'] or '∅')}" for c in edit["changes"]
        ) or "no word changed"
        rank = f"#{edit['rank_before']} → #{edit['rank_after']}" if edit["rank_after"] else ""
        rows.append(
            f"<tr class='edit-row'><td>{number}</td><td>[{escape(edit['doc_id'])}]</td><td>{changed}</td>"
            f"<td>{edit['score_before']:.3f} → <b class='edit-score'>{edit['score_after']:.3f}</b></td>"
            f"<td>{edit['delta']:+.3f}</td><td>{rank}</td></tr>"
        )
    return (
        "<table class='edits'><thead><tr><th>#</th><th>document</th><th>changed words</th>"
        "<th>logit</th><th>Δ</th><th>rank among the candidates</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
