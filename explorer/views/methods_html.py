"""HTML for three attribution methods side by side over one document's words, and how far they agree.

Every piece of user text is escaped here.
"""

from __future__ import annotations

from html import escape

from explorer.interpret.contrast import AGREEMENT_NOTE, DocumentAttribution
from explorer.interpret.integrated_gradients import BASELINE, IG_METHOD

GREEN, RED = "22, 163, 74", "220, 38, 38"
COLUMNS = (("occlusion", "occlusion (full − without)"), ("gradxinput", "gradient × input"), ("ig", "Integrated Gradients"))


def _cell(delta: float, scale: float, rows: int = 1) -> str:
    strength = min(1.0, abs(delta) / scale) if scale > 0 else 0.0
    color = GREEN if delta >= 0 else RED
    span = f" rowspan='{rows}'" if rows > 1 else ""
    return f"<td{span} style='background: rgba({color}, {0.06 + 0.6 * strength:.2f})'>{delta:+.3f}</td>"


def methods_html(found: dict[str, DocumentAttribution], agreement: dict) -> str:
    """One row per document word, one column per method (each on its own colour scale, positive =
    raises the score), IG's baseline, steps and convergence delta, and the Spearman correlations."""
    ig = found["ig"]
    runs = found["occlusion"].words_per_span
    heads = "".join(f"<th>{escape(title)}</th>" for _, title in COLUMNS)
    scales = {m: max([abs(w["delta"]) for w in found[m].words] or [1.0]) for m, _ in COLUMNS}
    # Occlusion of a long document has one entry per run of words: one cell spans the run's rows.
    occlusion = {k * runs: w["delta"] for k, w in enumerate(found["occlusion"].words)}
    words = found["ig"].words
    rows = []
    for index, word in enumerate(words):
        occ = (_cell(occlusion[index], scales["occlusion"], min(runs, len(words) - index)) if index in occlusion else "")
        rows.append(
            f"<tr><td class='word'>{escape(word['word'])}</td>{occ}"
            f"{_cell(found['gradxinput'].words[index]['delta'], scales['gradxinput'])}"
            f"{_cell(word['delta'], scales['ig'])}</tr>"
        )
    total = float(ig.deltas.sum())
    rho = agreement["spearman"]
    correlations = ", ".join(
        f"{escape(pair.replace('~', ' ~ '))} <b>{'n/a' if value is None else f'{value:+.2f}'}</b>" for pair, value in rho.items()
    )
    run_note = (f" Occlusion removed {runs} words at a time here (one value per run, its cell spanning the run's words; the other "
                "methods are summed over the same runs for the correlation)." if runs > 1 else "")
    return (
        "<div class='methods'>"
        f"<p><b>Integrated Gradients</b> (captum, {IG_METHOD}, baseline: {escape(BASELINE)}): "
        f"score {ig.score:.3f} − baseline {ig.baseline_logit:.3f} = {ig.score - ig.baseline_logit:+.3f} logit; "
        f"the words' attributions sum to {total:+.3f}; <span class='convergence'>convergence delta "
        f"{ig.convergence_delta:+.4f}</span> ({ig.steps} steps).</p>"
        f"<p class='agreement'>Rank agreement over {agreement['units']} units (Spearman): {correlations}. "
        f"{escape(AGREEMENT_NOTE)}{run_note}</p>"
        "<div style='max-height:480px;overflow:auto'><table class='methods-table'>"
        f"<thead><tr><th>word</th>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        "<p style='font-size:0.9em;color:#555'>Every column in logits, positive (green) = the word raises the score; "
        "each column shaded on its own scale. Gradient × input is a first-order estimate.</p></div>"
    )
