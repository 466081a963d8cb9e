"""The "why not this document" panel's HTML and the `why` command's text, from a `WhyReport`.

`why_data` is the one JSON both show (the page's JSON box and `why --json`): the report without its
timings, which differ run to run. The markup is `templates/why.html.j2` (autoescaped).
"""

from __future__ import annotations

import json

from explorer.interpret.why import WhyReport
from explorer.interpret.contrast import PairGap
from explorer.views.contrast_html import GREEN, RED, contrast_html
from explorer.views.templating import render


def why_data(report: WhyReport) -> dict:
    """The report as JSON, timings left out (they differ between runs; the page prints them apart)."""
    data = report.to_dict()
    data.pop("timings_ms")
    return data


def _shade(value: float, scale: float) -> dict:
    strength = min(1.0, abs(value) / scale) if scale > 0 else 0.0
    return {"color": GREEN if value >= 0 else RED, "alpha": round(0.06 + 0.74 * strength, 3)}


def _spans(text: str, pieces: list[dict], key: str, unit: str) -> list[tuple[str, dict | None]]:
    """The text cut into plain runs and shaded pieces (each with start, end and a value under `key`)."""
    placed = sorted((p for p in pieces if p.get("start") is not None and p["end"] > p["start"]), key=lambda p: p["start"])
    scale = max([abs(p[key]) for p in placed] or [1.0])
    parts, cursor = [], 0
    for piece in placed:
        if piece["start"] < cursor:
            continue  # word pieces of one word share its span start; the first one is shown
        parts.append((text[cursor:piece["start"]], None))
        parts.append((text[piece["start"]:piece["end"]], _shade(piece[key], scale) | {"title": f"{piece[key]:+.4f} {unit}"}))
        cursor = piece["end"]
    parts.append((text[cursor:], None))
    return parts


def _section(entry: dict, text: str) -> dict:
    """One ranker's explanation, with what the template draws on the text."""
    explanation = entry["explanation"]
    section = dict(entry)
    if "tokens" in explanation:  # bi-encoder
        merged: dict[int, dict] = {}
        for token in explanation["tokens"]:
            if token["start"] is None:
                continue
            word = merged.setdefault(token["start"], {"start": token["start"], "end": token["end"], "value": 0.0})
            word["end"], word["value"] = max(word["end"], token["end"]), word["value"] + token["value"]
        section["segments"] = _spans(text, list(merged.values()), "value", entry["score_name"])
        section["specials"] = sum(t["value"] for t in explanation["tokens"] if t["start"] is None)
    if "cut_char" in explanation and explanation["cut_char"] is not None:
        section["read"], section["unread"] = text[:explanation["cut_char"]], text[explanation["cut_char"]:]
    return section


def why_html(reports: list[WhyReport], contrast: tuple[PairGap, WhyReport, WhyReport] | None = None) -> str:
    """One report, or two side by side (a second document to compare with), then, for two, the contrast
    view of why the cross-encoder puts A above B (`interpret/why.py:why_contrast`)."""
    columns = []
    for report in reports:
        attribution = report.attribution
        columns.append({
            "report": report, "standing": report.standing,
            "sections": [_section(entry, report.text) for entry in report.explanations],
            "attribution": attribution, "data": json.dumps(why_data(report)),
            "attribution_segments": _spans(report.text, attribution["words"], "contribution", "logit")
            if attribution else [],
        })
    html = render("why.html.j2", columns=columns)
    if contrast is not None:
        gap, a, b = contrast
        html += contrast_html(gap, a.text, b.text, a.standing.doc_id, b.standing.doc_id)
    return html


def _rank_text(stage) -> str:
    would = f", would rank {stage.would_rank} with top-k at its first-stage rank" if stage.would_rank else ""
    return f"rank {stage.rank} of {stage.out_of}{'' if stage.candidate else ' (not a candidate)'}{would}"


def format_why(report: WhyReport) -> str:
    """The `why` command's readable text: the verdict, each stage's standing, each explanation in brief."""
    standing = report.standing
    lines = [f"Query: {standing.query}", f"Document: {standing.doc_id} ({standing.corpus_name}, "
             f"{standing.corpus_size:,} documents), pipeline {standing.pipeline}, top-k {standing.top_k}", "",
             standing.verdict, ""]
    for stage in [standing.first_stage, *standing.rerankers]:
        lines.append(f"  {stage.name}: {stage.score_name} {stage.score:.4f}, {_rank_text(stage)}")
    for entry in report.explanations:
        explanation = entry["explanation"]
        lines += ["", f"{entry['ranker']} ({entry['score_name']} {entry['score']:.4f})"]
        for term in explanation.get("terms", []):
            lines.append(f"  {term['term']:<14} tf {term['tf']:>3}  df {term['df']:>5}  idf {term['idf']:.3f}  "
                         f"norm {term['length_norm']:.3f}  share {term['share']:.4f}")
        for source in explanation.get("sources", []):
            rank = source["rank"] if source["rank"] is not None else "not held"
            lines.append(f"  {source['name']}: rank {rank}, share {source['share']:.5f}")
        for match in explanation.get("matches", []):
            lines.append(f"  {match['token']:<14} -> {match['best_token']!s:<14} {match['share']:.4f}")
        if "tokens" in explanation:
            top = sorted(explanation["tokens"], key=lambda t: -t["value"])[:8]
            lines.append(f"  {explanation['kind']}: " + ", ".join(f"{t['token']} {t['value']:+.4f}" for t in top))
        if "cut_char" in explanation:
            lines.append(f"  reads {explanation['tokens_read']} of {explanation['document_tokens']} document tokens"
                         + (f"; cut at character {explanation['cut_char']} (before {explanation['cut_token']!r})"
                            if explanation["cut_char"] is not None else ""))
        if entry.get("passage_note"):
            lines.append(f"  {entry['passage_note']}")
    lines.extend(f"Note: {note}" for note in report.notes)
    return "\n".join(lines)
