"""TREC run files: six columns per line, ``qid Q0 docid rank score tag``.

`write_run` writes a ranking (best first) with a score that falls with rank (``len - rank + 1``),
so any trec_eval sorts it back into exactly this order (a pipeline's own scores are on two
scales, re-ranker logits above first-stage scores, and would not). `read_run` checks every line
and says which file and line is wrong; `run_rankings` orders a run as trec_eval does: by score,
highest first, ties by document id, highest first.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

from explorer.budgets import MAX_LABELS_FILE_BYTES, MAX_RUN_LINES, is_blank
from explorer.errors import ExplorerError

Run = dict[str, dict[str, float]]
_TAG = re.compile(r"^[A-Za-z0-9_.+\-]+$")


def check_tag(tag: str) -> str:
    """A run name usable as a TREC tag and a file name: letters, digits, _ . + -."""
    if not tag or not _TAG.match(tag) or tag in {".", ".."}:
        raise ExplorerError(f"Run name {tag!r}: use only letters, digits, '_', '.', '+' and '-'.")
    return tag


def format_run(rankings: dict[str, Sequence[str]], tag: str) -> str:
    lines = []
    for qid, docs in rankings.items():
        for rank, doc in enumerate(docs, start=1):
            lines.append(f"{qid} Q0 {doc} {rank} {len(docs) - rank + 1} {tag}")
    return "\n".join(lines) + ("\n" if lines else "")


def write_run(folder: str | os.PathLike, rankings: dict[str, Sequence[str]], tag: str) -> Path:
    """`folder`/`tag`.run; the folder is made if missing."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{check_tag(tag)}.run"
        path.write_text(format_run(rankings, tag), encoding="utf-8")
    except OSError as error:
        raise ExplorerError(f"Cannot write the run to {folder}: {error.strerror or error}.") from None
    return path


def parse_run(text: str, name: str) -> Run:
    run: Run = {}
    count = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if is_blank(line):
            continue
        count += 1
        if count > MAX_RUN_LINES:
            raise ExplorerError(f"{name} has more than {MAX_RUN_LINES:,} lines; the limit is {MAX_RUN_LINES:,}.")
        parts = line.split()
        if len(parts) != 6:
            raise ExplorerError(
                f"{name}, line {number}: expected six columns 'qid Q0 docid rank score tag', found {len(parts)}."
            )
        qid, _, doc, rank, score, _ = parts
        try:
            int(rank)
        except ValueError:
            raise ExplorerError(f"{name}, line {number}: the rank {rank!r} is not a whole number.") from None
        try:
            value = float(score)
        except ValueError:
            raise ExplorerError(f"{name}, line {number}: the score {score!r} is not a number.") from None
        if not math.isfinite(value):
            raise ExplorerError(f"{name}, line {number}: the score {score!r} is not a finite number.")
        docs = run.setdefault(qid, {})
        if doc in docs:
            raise ExplorerError(f"{name}, line {number}: document {doc!r} appears twice for query {qid!r}.")
        docs[doc] = value
    if not run:
        raise ExplorerError(f"{name} holds no run lines.")
    return run


def read_run(path: str | os.PathLike) -> Run:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_LABELS_FILE_BYTES:
            raise ExplorerError(f"{path.name} is {size / 1e6:.1f} MB; the limit is {MAX_LABELS_FILE_BYTES / 1e6:.1f} MB.")
        data = path.read_bytes()
    except OSError as error:
        raise ExplorerError(f"Cannot read {path}: {error.strerror or error}.") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ExplorerError(f"{path.name}, line {line}: not UTF-8 text.") from None
    return parse_run(text.replace("\r\n", "\n"), path.name)


def run_rankings(run: Run) -> dict[str, list[str]]:
    """Each query's documents in trec_eval's order: score descending, ties by doc id descending."""
    return {qid: sorted(docs, key=lambda d: (docs[d], d), reverse=True) for qid, docs in run.items()}


def read_named_runs(paths: Sequence[str | os.PathLike] | None) -> dict[str, Run]:
    """Each TREC run file, named after its file (prod.run -> prod). Raises ExplorerError for a name
    that is not a valid run tag, two files of one name, or a bad line (`read_run`)."""
    runs = {}
    for path in paths or []:
        name = check_tag(Path(path).stem)
        if name in runs:
            raise ExplorerError(f"Two uploaded runs are named {name!r}; rename one.")
        runs[name] = read_run(path)
    return runs


def write_runs_zip(rankings: dict[str, dict[str, Sequence[str]]], path: str | os.PathLike) -> str:
    """Every run ({name: {query id: document ids, best first}}) as NAME.run (`format_run`) in one zip at `path`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, ranking in rankings.items():
            archive.writestr(f"{name}.run", format_run(ranking, name))
    return str(path)
