"""HTML for a long document: its sliding windows' scores, and the best window shown in the text.

Every piece of user text is escaped here.
"""

from __future__ import annotations

from html import escape

from explorer.interpret.passages import PassageScores


def passage_scores_html(document: str, result: PassageScores, max_length: int = 512) -> str:
    """The passage-level score labelled as the best window's, every window's logit, and the
    document with the best window highlighted and the whole-document cut marked."""
    windows, best = result.windows, result.windows[result.best]
    rows = []
    low = min(w.score for w in windows)
    spread = (max(w.score for w in windows) - low) or 1.0
    for number, window in enumerate(windows):
        width = 4 + 96 * (window.score - low) / spread
        marker = " best" if number == result.best else ""
        rows.append(
            f"<tr class='window-row{marker}'><td>{number + 1}</td><td>tokens {window.first_token}–{window.last_token}</td>"
            f"<td><span style='display:inline-block;height:0.8em;width:{width:.0f}px;background:"
            f"{'#d97706' if marker else '#93c5fd'}'></span> <span class='window-score'>{window.score:.3f}</span></td></tr>"
        )
    cut = result.cut_char
    fits = ("The model reads this whole document in one pair, so its score and the best window's differ only by "
            "what the windows leave out." if cut is None else
            f"The model stops reading the whole document at character {cut:,} (the ✂ mark); the windows read past it.")
    return (
        f"<div class='passages' data-best-score='{result.best_window_score:.6f}' data-windows='{len(windows)}'>"
        f"<p><b>Passage-level score: {result.best_window_score:.3f} logit, the best window of {len(windows)}</b> "
        f"(window {result.best + 1}, highlighted below; windows of up to {result.window_tokens} document tokens, a new "
        f"one every {result.stride_tokens}; MaxP). It is that window's score, not the whole document's. The document as the model reads it in one "
        f"pair (cut at {max_length} tokens): <b>{result.document_score:.3f}</b> logit. {fits}</p>"
        f"<table class='windows'><thead><tr><th>window</th><th>document tokens</th><th>logit</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        f"<div class='passage-text' style='line-height:1.8;margin-top:8px'>"
        f"{_document_with_window(document, best.start, best.end, cut, max_length)}</div></div>"
    )


def _document_with_window(document: str, start: int, end: int, cut: int | None, max_length: int) -> str:
    """The text with [start, end) highlighted and everything from `cut` on greyed after the ✂ mark."""
    bounds = sorted({0, start, end, len(document), *([cut] if cut is not None else [])})
    parts = []
    for low, high in zip(bounds, bounds[1:]):
        if cut is not None and low == cut:
            parts.append(f"<span class='cut-mark' data-cut-char='{cut}' style='border-left:3px solid #b91c1c;"
                         f"color:#b91c1c;font-weight:600;font-size:0.85em;padding:0 4px'>✂ the model stops reading the "
                         f"whole document here ({max_length} tokens)</span>")
        text = escape(document[low:high])
        if cut is not None and low >= cut:
            text = f"<span class='unread' style='color:#9ca3af'>{text}</span>"
        if start <= low and high <= end:
            text = f"<mark class='best-window' style='background:#fde68a'>{text}</mark>"
        parts.append(text)
    return "".join(parts)
