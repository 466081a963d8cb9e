"""Download files for a comparison: CSV (one row per document) and JSON (the whole result).

Files go into a fresh temporary folder per run, never into the repository.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from .compare import Comparison

CSV_COLUMNS = [
    "doc_id",
    "text",
    "bi_rank",
    "cosine",
    "cross_rank",
    "cross_logit",
    "cross_sigmoid_probability",
    "rank_move",
    "in_bi_top_k",
]


def comparison_rows(result: Comparison) -> list[dict]:
    """Every document either model ranked, bi-encoder order first, then the cross-encoder's extra finds."""
    cross = {h.id: h for h in (result.cross_encoder_full or result.cross_encoder)}
    rows, seen = [], set()
    for hit in result.bi_encoder:
        c = cross.get(hit.id)
        rows.append(
            {
                "doc_id": hit.id,
                "text": hit.text,
                "bi_rank": hit.rank,
                "cosine": round(hit.score, 6),
                "cross_rank": c.rank if c else "",
                "cross_logit": round(c.score, 6) if c else "",
                "cross_sigmoid_probability": round(c.probability, 6) if c else "",
                "rank_move": c.move if c else "",
                "in_bi_top_k": True,
            }
        )
        seen.add(hit.id)
    for c in sorted(cross.values(), key=lambda h: h.rank):
        if c.id in seen:
            continue
        rows.append(
            {
                "doc_id": c.id,
                "text": c.text,
                "bi_rank": c.bi_rank,
                "cosine": round(c.bi_score, 6),
                "cross_rank": c.rank,
                "cross_logit": round(c.score, 6),
                "cross_sigmoid_probability": round(c.probability, 6),
                "rank_move": c.move,
                "in_bi_top_k": c.in_bi_top_k,
            }
        )
    return rows


def write_downloads(result: Comparison) -> tuple[str, str]:
    """Write comparison.csv and comparison.json into a new temporary folder; return both paths."""
    folder = Path(tempfile.mkdtemp(prefix="explorer-results-"))
    csv_path, json_path = folder / "comparison.csv", folder / "comparison.json"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(comparison_rows(result))
    json_path.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    return str(csv_path), str(json_path)
