"""HTML for "why is A above B": both documents shaded on one colour scale, and the edits tried.

The markup is in `templates/contrast*.html.j2` and `edits.html.j2` (autoescaped).
"""

from __future__ import annotations

from explorer.interpret.contrast import PairGap
from explorer.views.templating import render

GREEN, RED = "22, 163, 74", "220, 38, 38"


def _key(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def _segments(document: str, words: list[dict], scale: float, other_words: set[str]) -> list[tuple[str, dict | None]]:
    """The document cut into plain runs and attributed words, each word shaded by its contribution on the
    shared `scale`; words the other document also has are marked shared (underlined on the page)."""
    parts, cursor = [], 0
    for word in words:
        parts.append((document[cursor : word["start"]], None))
        strength = min(1.0, abs(word["delta"]) / scale) if scale > 0 else 0.0
        shared = _key(document[word["start"] : word["end"]]) in other_words
        shade = {
            "color": GREEN if word["delta"] >= 0 else RED, "alpha": 0.08 + 0.72 * strength, "shared": shared,
            "title": f"{word['delta']:+.3f} logit{' · in both documents' if shared else ' · only in this document'}",
        }
        parts.append((document[word["start"] : word["end"]], shade))
        cursor = word["end"]
    parts.append((document[cursor:], None))
    return parts


def contrast_html(gap: PairGap, doc_a: str, doc_b: str, id_a: str, id_b: str) -> str:
    """Both logits and the gap, both documents on one shared colour scale, and the computed summary."""
    scale = max([abs(w["delta"]) for w in gap.attribution_a + gap.attribution_b] or [1.0])
    keys_a = {_key(w["word"]) for w in gap.attribution_a}
    keys_b = {_key(w["word"]) for w in gap.attribution_b}
    documents = [
        {"name": name, "id": doc_id, "score": score, "segments": _segments(document, words, scale, others)}
        for name, doc_id, document, words, score, others in (
            ("A", id_a, doc_a, gap.attribution_a, gap.score_a, keys_b),
            ("B", id_b, doc_b, gap.attribution_b, gap.score_b, keys_a),
        )
    ]
    return render("contrast.html.j2", gap=gap, scale=scale, documents=documents)


PENDING = {
    "occlusion": "occlusion is rescoring every word of both documents deleted in turn (one pass per word: "
                 "several seconds on two cores)",
    "ig": "Integrated Gradients is integrating the gradients along the path from the baseline (one forward "
          "and backward pass per step and document)",
    "gradxinput": "gradient × input is taking one gradient per document",
}


def pending_html(score_a: float, score_b: float, id_a: str, id_b: str, method: str) -> str:
    """Both logits and the gap, shown while the attributions are computed."""
    return render("contrast_pending.html.j2", score_a=score_a, score_b=score_b, id_a=id_a, id_b=id_b,
                  pending=PENDING.get(method, method))


def edits_html(edits: list[dict]) -> str:
    """The edits tried so far, newest last: score before and after, change, rank among the candidates."""
    return render("edits.html.j2", edits=edits) if edits else ""
