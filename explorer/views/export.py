"""Download files for a comparison: CSV (one row per document) and JSON (the whole result).

Files go into a fresh temporary folder per run, never into the repository. The CSV is safe
to open in a spreadsheet (no cell starts a formula); the JSON keeps every text exactly.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from explorer.pipeline.results import Comparison, RerankedHit

CSV_COLUMNS = [
    "doc_id",
    "text",
    "first_stage_rank",
    "first_stage_score",
    "cross_rank",
    "cross_logit",
    "cross_sigmoid_probability",
    "rank_move",
    "in_first_stage_top_k",
]


def comparison_rows(result: Comparison) -> list[dict]:
    """Every document either stage ranked, first-stage order first (its score: cosine, BM25 or RRF), then the cross-encoder's extra finds."""
    cross = {h.id: h for h in result.scored_hits()}
    rows = [_row(hit.id, hit.text, hit.rank, hit.score, True, cross.get(hit.id)) for hit in result.first_stage]
    seen = {hit.id for hit in result.first_stage}
    extra = sorted((c for c in cross.values() if c.id not in seen), key=lambda h: h.rank)
    rows += [_row(c.id, c.text, c.first_rank, c.first_score, c.in_candidates, c) for c in extra]
    return rows


def _row(doc_id: str, text: str, first_stage_rank: int, first_stage_score: float, in_first_stage_top_k: bool, cross: RerankedHit | None) -> dict:
    """One CSV row; the cross-encoder's columns stay empty for a document it did not score."""
    return {
        "doc_id": doc_id,
        "text": text,
        "first_stage_rank": first_stage_rank,
        "first_stage_score": round(first_stage_score, 6),
        "cross_rank": cross.rank if cross else "",
        "cross_logit": round(cross.score, 6) if cross else "",
        # Empty where the re-ranker's score is no logit (late interaction's MaxSim has no probability).
        "cross_sigmoid_probability": round(cross.probability, 6) if cross and cross.probability is not None else "",
        "rank_move": cross.move if cross else "",
        "in_first_stage_top_k": in_first_stage_top_k,
    }


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """Text that would start a formula gets a leading apostrophe, so it opens as text; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_downloads(result: Comparison, folder: Path | None = None) -> tuple[str, str]:
    """Write comparison.csv and comparison.json into `folder` (the app passes one its cache policy
    removes; else a new temporary folder, the caller's to remove); return both paths."""
    folder = Path(tempfile.mkdtemp(prefix="explorer-results-")) if folder is None else Path(folder)
    csv_path, json_path = folder / "comparison.csv", folder / "comparison.json"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in comparison_rows(result))
    json_path.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    return str(csv_path), str(json_path)
