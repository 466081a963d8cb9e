"""The Compare tab's board: one column per ranking of one comparison, plus the ideal order of the judgments.

Columns, left to right: a hybrid's parts (BM25 and the bi-encoder alone), the first stage, each
re-ranker in the order it ran, the last re-ranker over the whole corpus (when "score the whole
corpus" was ticked) and, once something is judged, the judged documents by grade ("ideal order").
Each row: rank, tie mark, grade badge, named score (cosine, BM25 score, RRF score, MaxSim, logit
and the probability column), rank move against the first stage, and the document's text.

Each column's measures over the judgments so far come from `pipeline/judged.py` (nDCG@10, P@10 and
RR@10, with unjudged documents counted as non-relevant and on the condensed list). The markup is
`templates/board.html.j2` (autoescaped); these functions gather plain values.

Rows carry `data-doc-id` and `data-rank`; columns carry `data-kind`, `data-role` (part, first,
rerank, full, ideal) and `data-column` (the name a snapshot and an exported run use for a stage).
"""

from __future__ import annotations

from collections.abc import Mapping

from explorer.data.corpus import Corpus
from explorer.pipeline.judged import ideal_order, judged_measures
from explorer.pipeline.results import Comparison, Stage
from explorer.pipeline.snapshots import column_names as snapshot_column_names
from explorer.views.results_html import KIND_TITLES, column_number, move_badge
from explorer.views.templating import render

MAX_TEXT_CHARS = 600  # long documents are cut on the board; the full text is in the downloads
FULL_COLUMN = "(whole corpus)"  # the last re-ranker over the whole corpus: its column's name ends so


def _shown_text(text: str) -> str:
    return text if len(text) <= MAX_TEXT_CHARS else text[:MAX_TEXT_CHARS].rstrip() + " …"


def board_texts(result: Comparison, corpus: Corpus) -> dict[str, str]:
    """{doc id: text} of every document any column of `result` shows (a hybrid's parts may show
    documents outside the first stage's top-k, whose hits carry no text)."""
    shown = {hit.id for _, stage in result.labelled_columns() for hit in stage.ranking}
    shown |= {hit.id for hit in result.shown_reranked()}
    documents = corpus.by_id()
    return {doc_id: documents[doc_id].text for doc_id in shown if doc_id in documents}


def column_names(result: Comparison) -> dict[str, str]:
    """{stage label ("0:bi", "0a:lexical", ...): column name}: a stage's name as snapshots and exported
    runs name it (`pipeline/snapshots.py:column_names`); a hybrid's part is "<name> alone"."""
    stage_names = snapshot_column_names(result.stages)
    return {label: stage_names[int(label.split(":")[0])] if label[1:2] == ":" else f"{stage.name} alone"
            for label, stage in result.labelled_columns()}


def column_rankings(result: Comparison) -> dict[str, list[str]]:
    """{column name: doc ids best first} for every ranking column of the board, in board order; the
    whole-corpus ranking is "<last stage's name> (whole corpus)"."""
    names = column_names(result)
    columns = {names[label]: [hit.id for hit in stage.ranking] for label, stage in result.labelled_columns()}
    if result.reranked_full is not None and len(result.stages) > 1:
        columns[f"{names[result.labelled_columns()[-1][0]]} {FULL_COLUMN}"] = [
            hit.id for hit in result.reranked_full[: result.top_k]]
    return columns


def _move(first_rank: dict[str, int], doc_id: str, rank: int) -> tuple[str, str, str]:
    """(kind, hover text, label) of a re-ranked row's move against the first stage's rank."""
    move = first_rank.get(doc_id, rank) - rank
    if move > 0:
        return "up", f"up {move} from the first stage's rank {first_rank[doc_id]}", f"▲ up {move}"
    if move < 0:
        return "down", f"down {-move} from the first stage's rank {first_rank[doc_id]}", f"▼ down {-move}"
    return "same", "same rank as the first stage", "= same"


def _scores(result: Comparison, stage: Stage, hit, last: bool) -> list[tuple[str, str, str]]:
    """(css class, hover title, text) of a row's named scores; a cross-encoder adds its probability
    column (the model's own activation, named) and a pair classifier every label's probability."""
    if stage.kind == "cross":
        text = f"{hit.score:.2f} logit"
    elif stage.kind == "late":
        text = f"{hit.score:.2f} MaxSim"
    else:
        text = f"{hit.score:.3f} {stage.score_name}"
    scores = [("score", stage.score_name, text)]
    reranked = result.hit(hit.id) if last and stage.kind == "cross" else None
    if reranked is not None and reranked.probability is not None:
        named = stage.probability_name or "sigmoid(logit)"
        shown = f"p = {reranked.probability:.3f}" if named != "raw score" else f"{reranked.probability:.3f} {named}"
        scores.append(("prob", named, shown))
        if reranked.label_probabilities:
            scores.append(("labels", "softmax over the model's labels",
                           " · ".join(f"{name} {p:.2f}" for name, p in reranked.label_probabilities.items())))
    return scores


def _row(doc_id: str, rank: int, texts: Mapping[str, str], titles: Mapping[str, str], hit=None,
         scores=(), move=None) -> dict:
    tied = bool(getattr(hit, "tied", False))
    return {"id": doc_id, "rank": rank, "scores": list(scores), "move": move,
            "moved": move[0] if move and move[0] != "same" else None,
            "text": _shown_text(texts.get(doc_id, "")), "title": titles.get(doc_id, ""),
            "tie": hit.shared_rank if tied else None}


def _column(name: str, role: str, kind: str, title: str, stage: Stage | None, rows: list[dict], meta: str,
            grades: Mapping[str, int] | None) -> dict:
    ranking = [row["id"] for row in rows]
    measured = judged_measures(ranking, dict(grades)) if grades else None
    notes = [] if stage is None else [stage.note, stage.prompts]
    details = "" if stage is None else " · ".join(
        part for part in (stage.precision_note and stage.runs_on, len(stage.engine) > 60 and stage.engine,
                          stage.analyzer and f"analyzer: {stage.analyzer}") if part)
    explained = KIND_TITLES.get(kind, kind)
    return {"name": name, "role": role, "kind": kind, "title": title, "explained": explained, "meta": meta,
            "details": " · ".join(part for part in (meta, details) if part), "rows": rows,
            "notes": [note for note in notes if note],
            "measures": None if measured is None else _measure_table(measured),
            # Holes over the whole shown top-k (the measures look at the first ten only).
            "unjudged": None if measured is None else sum(doc_id not in grades for doc_id in ranking)}


def _short(kind: str) -> str:
    """"Cross-encoder" for "Cross-encoder (query and document read together)": a column's title is
    narrow; what the kind means is in the summary's explanation and the column's hover text."""
    return KIND_TITLES.get(kind, kind).split(" (")[0]


def _measure_table(measured) -> list[tuple[str, list[tuple[str, float | None]]]]:
    """[(row name, [(measure label, value)])]: "plain" (unjudged count as non-relevant), then "condensed"."""
    labelled = measured.labels()
    return [("plain", [(label, value) for label, value in labelled if "condensed" not in label]),
            ("condensed", [(label, value) for label, value in labelled if "condensed" in label])]


def _stage_meta(stage: Stage, count: int, reranks: bool) -> str:
    """What tells two columns of one model apart comes first (precision, engine, time); the model's name last.
    "int8 on cpu, auto · packed int8 (oneDNN) · 134.9 ms · 37 pairs/s · ms-marco-..."; auto's reason is in
    the stage's runs_on, which the column's hover text shows whole."""
    rate = f" · {count / (stage.ms / 1000):,.0f} {'pairs' if reranks else 'docs'}/s" if stage.ms > 0 else ""
    where = stage.runs_on.partition(" (")[0]
    engine = f" · {stage.engine}" if stage.engine and len(stage.engine) <= 60 else ""
    return f"{where}{', auto' if stage.precision_note else ''}{engine} · {stage.ms:,.1f} ms{rate} · {stage.name}"


def _stage_columns(result: Comparison, texts, titles, grades) -> list[dict]:
    first_rank = {hit.id: hit.rank for hit in result.stages[0].ranking} if result.stages else {}
    labelled = result.labelled_columns()
    names = column_names(result)
    columns = []
    for place, (label, stage) in enumerate(labelled):
        reranks = not label.startswith("0")
        last = place == len(labelled) - 1 and reranks
        rows = [_row(hit.id, hit.rank, texts, titles, hit, _scores(result, stage, hit, last),
                     _move(first_rank, hit.id, hit.rank) if reranks else None) for hit in stage.ranking]
        role = "rerank" if reranks else "part" if label[1:2].isalpha() else "first"
        alone = " alone" if role == "part" else ""
        title = f"{column_number(label)}. {_short(stage.kind)}{alone}"
        count = len(stage.ranking) if reranks else result.corpus_size
        columns.append(_column(names[label], role, stage.kind, title, stage, rows, _stage_meta(stage, count, reranks),
                               grades))
    return columns


def _full_column(result: Comparison, texts, titles, grades) -> dict | None:
    """The last re-ranker over the whole corpus: its top-k, NEW for what the first stage's top-k missed."""
    if result.reranked_full is None or len(result.stages) < 2:
        return None
    label, stage = result.labelled_columns()[-1]
    first = result.first_stage_label
    rows = [_row(hit.id, hit.rank, texts, titles, hit, _scores(result, stage, hit, True), move_badge(hit, first))
            for hit in result.reranked_full[: result.top_k]]
    title = f"{column_number(label)}. {_short(stage.kind)}, whole corpus"
    meta = f"{stage.name} · {stage.runs_on} · all {result.corpus_size:,} documents scored"
    return _column(f"{column_names(result)[label]} {FULL_COLUMN}", "full", stage.kind, title, stage, rows, meta, grades)


def _ideal_column(grades: Mapping[str, int], reasons: Mapping[str, str], texts, titles) -> dict:
    rows = [{**_row(doc_id, place, texts, titles), "reason": reasons.get(doc_id, "")}
            for place, (doc_id, _) in enumerate(ideal_order(dict(grades)), start=1)]
    meta = "the judged documents by grade, best first (ties by id): the order every column is measured against"
    return {"name": "ideal", "role": "ideal", "kind": "ideal", "title": "Ideal order (your judgments)", "meta": meta,
            "explained": "", "details": meta, "rows": rows, "notes": [], "measures": None, "unjudged": None}


def board_html(result: Comparison, texts: Mapping[str, str] | None = None, grades: Mapping[str, int] | None = None,
               reasons: Mapping[str, str] | None = None, titles: Mapping[str, str] | None = None,
               editable: bool = True) -> str:
    """The board for `result`: one column per ranking, then the ideal order once anything is judged.

    `texts`: {doc id: text} for rows whose hit carries none (`board_texts`); the hits' own texts
    are used first. `grades`: this query's {doc id: grade 0..3}; None or empty draws no badges and
    no measures. `reasons`: {doc id: reason} shown on hover and in the ideal column. `editable`:
    draw the 0-3 grade buttons (a read-only case link draws none; the server refuses a grade anyway).
    """
    known = {hit.id: hit.text for hit in [*result.first_stage, *result.scored_hits()]}
    texts = {**(texts or {}), **known}
    titles = titles or {}
    grades = dict(grades or {})
    columns = _stage_columns(result, texts, titles, grades)
    full = _full_column(result, texts, titles, grades)
    if full is not None:
        columns.append(full)
    if grades:
        columns.append(_ideal_column(grades, reasons or {}, texts, titles))
    return render("board.html.j2", columns=columns, grades=grades or None, reasons=reasons or {},
                  editable=editable, top_k=result.top_k)
