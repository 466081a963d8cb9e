"""Result tables that appear with their first results.

An empty `gr.Dataframe` shows Gradio's placeholder headers "1 2 3", which reads as a broken table, so every
results table starts hidden and the handler that fills it shows it.
"""

from __future__ import annotations

import gradio as gr


def results_table(label: str, elem_id: str, **kwargs) -> gr.Dataframe:
    """A read-only table, hidden until `filled` gives it rows; `kwargs` go to `gr.Dataframe` (wrap, ...)."""
    return gr.Dataframe(label=label, elem_id=elem_id, interactive=False, visible=False, **kwargs)


def filled(header: list[str], rows: list[list]) -> dict:
    """The update that gives a `results_table` its header and rows and shows it."""
    return gr.update(value=rows, headers=header, visible=True)
