"""The Evaluate tab's "which moves paid" handlers: the sentence under the disagreement table and the
clicked query's two lists beside each moved document's contribution (`pipeline/move_gains.py`)."""

from __future__ import annotations

import gradio as gr

from explorer.pipeline.experiment import ExperimentReport
from explorer.views import moves_views


def moves_summary(report: ExperimentReport | None, labelled: dict | None, a: str | None, b: str | None):
    """The sentence under the disagreement table: b's nDCG@10 change over a, split over the moves."""
    if report is None or not labelled or a not in report.rankings or b not in report.rankings:
        return gr.update(value="")
    return gr.update(value=moves_views.moves_summary_markdown(report, a, b, labelled["qrels"]))


def show_moves(report: ExperimentReport | None, labelled: dict | None, a: str | None, b: str | None,
               event: gr.SelectData):
    """The clicked query's two top-10 lists beside each moved document's contribution to the nDCG@10 change."""
    if report is None or not labelled or event is None or not event.row_value or a not in report.rankings \
            or b not in report.rankings or str(event.row_value[0]) not in report.rankings[a]:
        return gr.update(value="")
    qid = str(event.row_value[0])
    return gr.update(value=moves_views.moves_html(report, a, b, qid, labelled["queries"].get(qid, ""),
                                                  labelled["qrels"].get(qid, {})))
