"""Every ordinary choice on the page runs (issue 21, section 6), and an error a visitor did not cause
is logged with its traceback and shown as a plain apology, never as Python's text.

The callbacks are called as gradio calls them (`run_comparison`, `run_inspection`, ...), without a
server; `guard_events` is checked on the built page.
"""

from __future__ import annotations

import csv
import json
import logging

import gradio as gr
import pytest

from explorer.engine.catalog import model_choices
from explorer.errors import ExplorerError
from explorer.ui import compare_tab
from explorer.ui.compare_tab import FIRST_STAGE_CHOICES, PRECISIONS, RERANKER_CHOICES, run_comparison
from explorer.ui.messages import APOLOGY, guard_events, guarded

CORPUS = "\n".join([
    "Cats purr when they are content.",
    "Ball pythons are popular pet snakes.",
    "Python is a programming language.",
    "The Berlin wall fell in 1989.",
])


def silent(*args, **kwargs):
    return None


def _outputs(*args, **kwargs) -> dict:
    out = run_comparison(*args, progress=silent, **kwargs)
    return next(o for o in out if isinstance(o, dict) and "stages" in o)


RERANKER_SETS = [[kind] for _, kind in RERANKER_CHOICES] + [[kind for _, kind in RERANKER_CHOICES]]


@pytest.mark.parametrize("score_all", [False, True])
@pytest.mark.parametrize("rerankers", RERANKER_SETS, ids="+".join)
@pytest.mark.parametrize("first_stage", [value for _, value in FIRST_STAGE_CHOICES])
def test_every_pipeline_choice_compares(first_stage, rerankers, score_all):
    data = _outputs("pet snakes", "Paste", CORPUS, top_k=2, first_stage=first_stage, rerankers=rerankers,
                    score_all=score_all, precision="fp32")
    # A choice is a kind, a kind read by passages ("cross:maxp": a cross-encoder stage named as MaxP), or a
    # kind at a named precision ("cross@int8-packed").
    kinds = [choice.partition(":")[0].partition("@")[0] for choice in rerankers]
    assert [stage["kind"] for stage in data["stages"][1:]] == kinds
    for stage, choice in zip(data["stages"][1:], rerankers):
        assert ("MaxP" in stage["name"]) == (choice == "cross:maxp"), stage["name"]
    first_kind = {"bi": "bi", "bm25": "lexical", "hybrid": "hybrid"}[first_stage]
    assert data["stages"][0]["kind"] == first_kind and len(data["stages"][0]["ranking"]) == 2
    # The last re-ranker's list: MaxSim has no probability (None), a logit has one in (0, 1).
    last = data[{"late": "late_interaction", "cross": "cross_encoder"}[kinds[-1]]]
    for hit in last:
        assert (hit["probability"] is None) == (kinds[-1] == "late")


def test_late_interaction_alone_writes_its_downloads(tmp_path):
    out = run_comparison("pet snakes", "Paste", CORPUS, top_k=2, rerankers=["late"], score_all=True,
                         precision="fp32", progress=silent)
    files = next(o for o in out if isinstance(o, list) and o and str(o[0]).endswith(".csv"))
    with open(files[0], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # Every document scored (whole corpus); MaxSim in the score column, no probability.
    assert len(rows) == 4 and all(row["cross_sigmoid_probability"] == "" for row in rows)
    assert all(float(row["cross_logit"]) > 0 for row in rows)
    saved = json.loads(open(files[1], encoding="utf-8").read())
    assert saved["late_interaction"][0]["probability"] is None


@pytest.mark.parametrize("precision", [value for _, value in PRECISIONS])
def test_every_precision_choice_compares(precision):
    data = _outputs("pet snakes", "Paste", CORPUS, top_k=2, precision=precision, rerankers=["late", "cross"])
    assert len(data["stages"]) == 3


@pytest.mark.parametrize("model", [c.id for c in model_choices("bi") if c.offline])
def test_every_offline_bi_encoder_choice_compares(model):
    data = _outputs("pet snakes", "Paste", CORPUS, top_k=2, bi_encoder=model, precision="fp32")
    assert data["stages"][0]["model"] == model


@pytest.mark.parametrize("model", [c.id for c in model_choices("cross") if c.offline])
def test_every_offline_cross_encoder_choice_compares(model):
    data = _outputs("pet snakes", "Paste", CORPUS, top_k=2, cross_encoder=model, precision="fp32")
    assert data["stages"][1]["kind"] == "cross"


@pytest.mark.parametrize("name", [value for _, value in compare_tab.builtin_corpus_choices()])
def test_every_builtin_corpus_choice_compares(name):
    data = _outputs("pet snakes", "Built-in", "", None, name, top_k=3, first_stage="bm25", rerankers=["cross"],
                    precision="fp32")
    assert len(data["stages"][0]["ranking"]) == 3


@pytest.mark.parametrize("suffix, content", [
    (".txt", CORPUS),
    (".jsonl", "\n".join(json.dumps({"id": f"d{i}", "text": t}) for i, t in enumerate(CORPUS.split("\n")))),
    (".csv", "id,text\n" + "\n".join(f"d{i},{t}" for i, t in enumerate(CORPUS.split("\n")))),
])
def test_every_upload_kind_compares(tmp_path, suffix, content):
    path = tmp_path / f"corpus{suffix}"
    path.write_text(content, encoding="utf-8")
    data = _outputs("pet snakes", "Upload", "", str(path), None, top_k=2, precision="fp32")
    assert data["corpus_size"] == 4


def test_no_reranker_ticked_is_a_message():
    with pytest.raises(gr.Error, match="Pick at least one re-ranker"):
        run_comparison("pet snakes", "Paste", CORPUS, rerankers=[], progress=silent)


# --- Inspect: emoji only, every view choice ------------------------------------------------------


@pytest.mark.parametrize("query, document", [("😀🎉", "Cats purr when they are content."),
                                             ("why do cats purr", "🐍🐍🐍"), ("😀", "😀")])
def test_inspect_emoji_only_text_shows_what_the_model_read(query, document):
    from explorer.ui.inspect_tab import draw_meeting, fit_choices, redraw, run_inspection

    steps = list(run_inspection(query, document, None, "mean", "mean", "query_to_doc", False, False, False, True))
    pair, meeting = steps[-1][0], steps[-1][-1]
    # The bi-encoder's view names the [UNK] tokens the emoji became, instead of failing on an empty axis.
    assert "[UNK]" in json.dumps(meeting.to_plotly_json()["data"][0]["text"])
    for direction in ("query_to_doc", "doc_to_query"):
        for special in (False, True):
            for word_level in (False, True):
                for renormalize in (False, True):
                    redraw(pair, "0", "mean", direction, special, word_level, renormalize)
    fit_choices(pair, "mean", "mean")
    draw_meeting(pair)


# --- the app's own faults: logged, apologised for ------------------------------------------------


def _failing(*args):
    raise ZeroDivisionError("division by zero in a private helper")


def _failing_generator(*args):
    yield "first"
    raise KeyError("an internal key")


def test_an_internal_error_is_logged_and_shown_as_an_apology(caplog):
    caplog.set_level(logging.ERROR, logger="explorer.ui.messages")
    with pytest.raises(gr.Error) as raised:
        guarded(_failing)()
    message = raised.value.message
    assert message.startswith(APOLOGY.split("{")[0]) and "division" not in message and "Zero" not in message
    reference = message.split("reference ")[1].split(".")[0]
    record = next(r for r in caplog.records if reference in r.getMessage())
    assert record.exc_info[0] is ZeroDivisionError  # the traceback is in the log
    with pytest.raises(gr.Error) as raised:
        list(guarded(_failing_generator)())
    assert "internal key" not in raised.value.message and raised.value.message.startswith("Sorry")


def test_a_user_error_keeps_its_message():
    def mistaken():
        raise ExplorerError("corpus.jsonl, line 3: not valid JSON (<b>).")

    with pytest.raises(gr.Error, match=r"corpus\.jsonl, line 3: not valid JSON \(&lt;b&gt;\)\."):
        guarded(mistaken)()


def test_every_event_on_the_page_is_guarded(monkeypatch):
    from explorer.ui.app import build_app

    app = build_app()
    events = [event for event in app.fns.values() if event.fn is not None]
    assert events and all(getattr(event.fn, "guarded", False) for event in events)
    assert guard_events(app) is app and all(not hasattr(e.fn.__wrapped__, "guarded") for e in events)  # once
    compare_event = next(event for event in events if event.name == "run_comparison")
    monkeypatch.setattr(compare_tab, "write_downloads", _failing)
    with pytest.raises(gr.Error) as raised:
        compare_event.fn("pet snakes", "Paste", CORPUS, None, None, 2, first_stage="bm25", rerankers=["cross"],
                         precision="fp32", progress=silent)
    assert raised.value.message.startswith("Sorry") and "division" not in raised.value.message


def test_every_evaluate_pipeline_choice_runs_in_one_evaluation():
    from explorer.ui.eval_tab import PIPELINE_CHOICES, run_pipelines

    out = run_pipelines("Built-in set", "negation", pipelines=list(PIPELINE_CHOICES), baseline="bi", top_k=5,
                        progress=silent)
    report = next(o for o in out if hasattr(o, "pipelines"))
    assert report.pipelines == PIPELINE_CHOICES
    assert all(0.0 <= report.metrics[name]["nDCG@10"] <= 1.0 for name in PIPELINE_CHOICES)
    assert any(note.startswith("Every mean is over 8 queries") for note in report.notes)
