"""HTML for three attribution methods side by side over one document's words, and how far they agree.

The markup is in `templates/methods.html.j2` (autoescaped).
"""

from __future__ import annotations

from explorer.interpret.contrast import AGREEMENT_NOTE, DocumentAttribution
from explorer.interpret.integrated_gradients import BASELINE, IG_METHOD
from explorer.views.templating import render

GREEN, RED = "22, 163, 74", "220, 38, 38"
COLUMNS = (("occlusion", "occlusion (full − without)"), ("gradxinput", "gradient × input"), ("ig", "Integrated Gradients"))


def _cell(delta: float, scale: float, rows: int = 1) -> tuple[float, float, str, int]:
    """(delta, shade alpha, colour, rows spanned) of one table cell, shaded on its column's `scale`."""
    strength = min(1.0, abs(delta) / scale) if scale > 0 else 0.0
    return delta, 0.06 + 0.6 * strength, GREEN if delta >= 0 else RED, rows


def methods_html(found: dict[str, DocumentAttribution], agreement: dict) -> str:
    """One row per document word, one column per method (each on its own colour scale, positive =
    raises the score), IG's baseline, steps and convergence delta, and the Spearman correlations."""
    ig = found["ig"]
    runs = found["occlusion"].words_per_span
    scales = {m: max([abs(w["delta"]) for w in found[m].words] or [1.0]) for m, _ in COLUMNS}
    # Occlusion of a long document has one entry per run of words: one cell spans the run's rows.
    occlusion = {k * runs: w["delta"] for k, w in enumerate(found["occlusion"].words)}
    words = found["ig"].words
    rows = []
    for index, word in enumerate(words):
        occ = [_cell(occlusion[index], scales["occlusion"], min(runs, len(words) - index))] if index in occlusion else []
        rows.append({"word": word["word"], "cells": occ + [
            _cell(found["gradxinput"].words[index]["delta"], scales["gradxinput"]), _cell(word["delta"], scales["ig"])]})
    run_note = (f" Occlusion removed {runs} words at a time here (one value per run, its cell spanning the run's words; the other "
                "methods are summed over the same runs for the correlation)." if runs > 1 else "")
    return render(
        "methods.html.j2", ig=ig, ig_method=IG_METHOD, baseline=BASELINE, total=float(ig.deltas.sum()),
        units=agreement["units"], correlations=[(pair.replace("~", " ~ "), value) for pair, value in agreement["spearman"].items()],
        agreement_note=AGREEMENT_NOTE, run_note=run_note, columns=[title for _, title in COLUMNS], rows=rows,
    )
