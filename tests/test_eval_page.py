"""The Evaluate tab's pipelines panel without a browser: its tables and chart equal the report,
grade badges equal the labels (escaped ids included), and bad uploads are refused clearly.

BM25 and imported runs need no neural model, so these run in seconds."""

from __future__ import annotations

import re
import zipfile
from html import unescape

import gradio as gr
import pytest
from labelled_zip import DOCUMENTS, QRELS, QUERIES, write_labelled_zip

from explorer.data.labels import read_labels, write_corpus_jsonl
from explorer.data.corpus import read_corpus
from explorer.data.trec_runs import format_run
from explorer.pipeline.experiment import disagreements, run_experiment
from explorer.ui import eval_tab
from explorer.views import eval_plots
from explorer.pipeline.results import Comparison, FirstStageHit, RerankedHit, Stage, StageHit
from board_support import first_column as bi_encoder_list, shown_column as cross_encoder_list

NO_PROGRESS = lambda *args, **kwargs: None  # noqa: E731


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return read_labels(write_labelled_zip(tmp_path_factory.mktemp("z") / "myset.zip"))


@pytest.fixture(scope="module")
def report(labelled):
    # An imported run: every query's documents in reverse id order, with timing None.
    reverse = {qid: {doc: float(i) for i, doc in enumerate(sorted(DOCUMENTS))} for qid in QUERIES}
    return run_experiment(labelled.corpus, labelled.queries, labelled.qrels, "bm25", top_k=5, baseline="bm25",
                          external_runs={"prod": reverse}, seed=3)


def test_tables_and_chart_equal_the_report(report):
    header, rows = eval_plots.experiment_metrics_rows(report)
    assert header == ["pipeline", "nDCG@10", "MRR@10", "R@5", "ms/query"]  # a mean of RR@10 is the MRR
    assert [row[0] for row in rows] == ["bm25 (baseline)", "prod (imported run)"]
    for row, name in zip(rows, ["bm25", "prod"]):
        assert row[1:4] == [round(report.metrics[name][m], 4) for m in ("nDCG@10", "RR@10", "R@5")]
    assert rows[1][4] == "n/a"
    # Two significant digits, not one decimal: BM25 on five documents takes well under 0.1 ms.
    assert 0 < rows[0][4] == pytest.approx(report.ms_per_query["bm25"], rel=0.05)

    header, rows = eval_plots.significance_rows(report)
    assert len(rows) == len(report.significance) == 3
    for row, comparison in zip(rows, report.significance):
        assert row[:2] == [comparison.pipeline, comparison.measure]
        assert float(row[2]) == pytest.approx(comparison.mean_diff, abs=5e-4)
        low, high = (float(x) for x in row[3].strip("[]").split(","))
        assert (low, high) == pytest.approx((comparison.ci_low, comparison.ci_high), abs=5e-4)
        assert float(row[6]) == pytest.approx(comparison.p_holm, abs=5e-4)
        assert row[7] == f"{comparison.wins} / {comparison.ties} / {comparison.losses}"
    assert "too few for these tests to mean anything" in eval_plots.significance_markdown(report)

    figure = eval_plots.cost_quality_figure(report)
    points = figure.data[0]
    assert list(points.text) == ["bm25"]  # the imported run has no timing: a line, not a point
    assert points.y[0] == pytest.approx(report.metrics["bm25"]["nDCG@10"])
    assert points.x[0] == pytest.approx(max(report.ms_per_query["bm25"], 0.001))
    lines = [shape for shape in figure.layout.shapes if shape.y0 == shape.y1]
    assert [line.y0 for line in lines] == pytest.approx([report.metrics["prod"]["nDCG@10"]])

    rows = disagreements(report, "bm25", "prod")
    header, table = eval_plots.disagreement_rows(report, rows, QUERIES)
    assert [r[0] for r in table] == [r["query_id"] for r in rows]
    assert [abs(r[4]) for r in table] == sorted((abs(r[4]) for r in table), reverse=True)
    assert all(r[1] == QUERIES[r[0]] for r in table)


def _labelled_comparison(ids: list[str]) -> Comparison:
    """A comparison drawn by hand (no model): the first stage ranks `ids` in order, the cross-encoder reverses it."""
    first = [FirstStageHit(doc, f"text of {doc}", 1.0 - i / 10, i + 1) for i, doc in enumerate(ids)]
    reranked = [RerankedHit(doc, f"text of {doc}", float(i), 0.5, len(ids) - i, i + 1, 1.0 - i / 10, True)
                for i, doc in enumerate(ids)][::-1]
    stages = [Stage("bi", "bi", "bi", "cosine", "fp32 on cpu", 1.0, [StageHit(h.id, h.score, h.rank) for h in first]),
              Stage("cross", "cross", "cross", "logit", "fp32 on cpu", 1.0, [StageHit(h.id, h.score, h.rank) for h in reranked])]
    return Comparison(
        query="q", top_k=len(ids), corpus_name="c.jsonl", corpus_size=len(ids), first_stage_kind="bi",
        models={"first_stage": "bi", "reranker": "cross"}, runs_on={"first_stage": "fp32 on cpu", "reranker": "fp32 on cpu"},
        first_stage=first, reranked=reranked, reranked_full=None, stages=stages, timings_ms={"total": 1.0},
        corpus_index_cached=False,
    )


def _badges(fragment: str) -> dict[str, str]:
    """{row's document id: its grade badge's data-grade}, read from the rendered rows."""
    rows = re.findall(r"<li\b[^>]*data-doc-id='([^']*)'(.*?)</li>", fragment, flags=re.S)
    return {unescape(doc): (re.findall(r"data-grade='([^']*)'", body) or [None])[0] for doc, body in rows}


def test_grade_badges_equal_the_labels_and_survive_escaping():
    odd = "a&b'<c>"
    result = _labelled_comparison([odd, "plain", "unlabelled"])
    grades = {odd: 2, "plain": 0, "not shown": 1}
    expected = {odd: "2", "plain": "0", "unlabelled": "unjudged"}
    for draw in (bi_encoder_list, cross_encoder_list):
        assert _badges(draw(result, grades=grades)) == expected
        assert _badges(draw(result)) == {doc: None for doc in expected}  # no labels, no badges
        assert "<c>" not in draw(result, grades=grades)
    assert bi_encoder_list(result, grades=grades).count("class='grade grade-2'") == 1

    labels = {"corpus_name": "c.jsonl", "corpus_size": 3, "query": " q ", "grades": grades}
    assert result.grades_from(labels) == grades
    for other in ({**labels, "query": "another"}, {**labels, "corpus_name": "x.txt"}, {**labels, "corpus_size": 4}, None):
        assert result.grades_from(other) is None


def test_uploaded_corpus_is_written_for_compare_unchanged(labelled, tmp_path):
    back = read_corpus(write_corpus_jsonl(labelled.corpus, tmp_path / "c.jsonl"))
    assert [(d.id, d.text, d.title) for d in back.documents] == [(d.id, d.text, d.title) for d in labelled.corpus.documents]
    assert back.fingerprint == labelled.corpus.fingerprint


def test_bad_uploads_are_refused_with_the_file_named(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    bad_run = tmp_path / "prod.run"
    bad_run.write_text("q-snake Q0 snake 1 1.0 prod\nhalf a line\n")
    good = write_labelled_zip(tmp_path / "good.zip")
    cases = [
        (dict(label_source="Upload", labels_zip=str(broken)), r"broken\.zip is not a readable zip file"),
        (dict(label_source="Upload", corpus_file=str(tmp_path / "c.jsonl")), "Upload one BEIR zip"),
        (dict(label_source="Upload", labels_zip=str(good), run_files=[str(bad_run)]), r"prod\.run, line 2"),
        (dict(label_source="Upload", labels_zip=str(good), pipelines=["bm25"], baseline="bi"), "baseline 'bi' is not ticked"),
        (dict(label_source="Built-in set", builtin_corpus="../../etc"), "Unknown corpus"),
        (dict(label_source="Upload", labels_zip=str(good), pipelines=[]), "at least one pipeline"),
        (dict(label_source="Upload", labels_zip=str(good), top_k=0), "top-k"),
    ]
    for kwargs, message in cases:
        with pytest.raises(gr.Error, match=message):
            eval_tab.run_pipelines(**{"pipelines": ["bm25"], "baseline": "bm25", **kwargs}, progress=NO_PROGRESS)
    with pytest.raises(gr.Error, match="3,000"):
        eval_tab.run_pipelines("Built-in set", "python_docs", pipelines=["bi+cross", "bm25+cross", "hybrid+late+cross"],
                               baseline="bi+cross", top_k=100, progress=NO_PROGRESS)


def test_bm25_and_an_imported_run_on_the_page_and_the_click_through(tmp_path):
    good = write_labelled_zip(tmp_path / "myset.zip")
    run = tmp_path / "prod.run"
    run.write_text(format_run({qid: sorted(DOCUMENTS) for qid in QUERIES}, "prod"))
    out = eval_tab.run_pipelines("Upload", None, str(good), None, None, None, ["bm25"], "bm25", [str(run)], 5,
                                 progress=NO_PROGRESS)
    summary, metrics, note, significance, figure, runs_zip, a, b, table, data, report, labelled = out
    assert summary.startswith("**myset.zip**")
    assert [row[0] for row in metrics["value"]] == ["bm25 (baseline)", "prod (imported run)"]
    with zipfile.ZipFile(runs_zip) as archive:
        assert archive.namelist() == ["bm25.run"]
    assert (a["value"], b["value"]) == ("bm25", "prod")
    first = table["value"][0]
    event = gr.SelectData(None, {"index": [0, 1], "value": first[1], "row_value": first})
    selection = eval_tab.select_disagreement(labelled, "bm25", "prod", event)
    assert selection["query"] == QUERIES[first[0]]
    assert selection["labels"]["grades"] == QRELS[first[0]]
    assert (selection["first_stage"], selection["rerankers"]) == ("bm25", ["cross"])  # neither re-ranks
    corpus = read_corpus(selection["corpus_file"])
    assert corpus.name == selection["labels"]["corpus_name"] and len(corpus) == selection["labels"]["corpus_size"]


def test_compare_shows_the_pipeline_that_reranks():
    assert eval_tab._pipeline_for_compare("bi", "hybrid+late+cross") == ("hybrid", ["late", "cross"])
    assert eval_tab._pipeline_for_compare("bm25+cross", "bi") == ("bm25", ["cross"])
    assert eval_tab._pipeline_for_compare("bi", "bm25") == ("bm25", ["cross"])
