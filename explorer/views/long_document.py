"""HTML for a long document: its sliding windows' scores, and the best window shown in the text.

The markup is in `templates/passages.html.j2` (autoescaped).
"""

from __future__ import annotations

from explorer.interpret.passages import PassageScores
from explorer.views.templating import render


def passage_scores_html(document: str, result: PassageScores, max_length: int = 512) -> str:
    """The passage-level score labelled as the best window's, every window's logit, and the
    document with the best window highlighted and the whole-document cut marked."""
    windows = result.windows
    low = min(w.score for w in windows)
    spread = (max(w.score for w in windows) - low) or 1.0
    rows = [{"first_token": w.first_token, "last_token": w.last_token, "score": w.score,
             "width": 4 + 96 * (w.score - low) / spread, "best": number == result.best}
            for number, w in enumerate(windows)]
    best = windows[result.best]
    return render("passages.html.j2", result=result, windows=rows, cut=result.cut_char, max_length=max_length,
                  segments=_segments(document, best.start, best.end, result.cut_char))


def _segments(document: str, start: int, end: int, cut: int | None) -> list[tuple[str, bool, bool, bool]]:
    """The text in runs: (text, inside the best window [start, end), after the cut, the cut mark before it)."""
    bounds = sorted({0, start, end, len(document), *([cut] if cut is not None else [])})
    return [
        (document[low:high], start <= low and high <= end, cut is not None and low >= cut, cut is not None and low == cut)
        for low, high in zip(bounds, bounds[1:])
    ]
