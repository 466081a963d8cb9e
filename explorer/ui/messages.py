"""How an error a user can fix reaches the page."""

from __future__ import annotations

import html

import gradio as gr


def shown_error(error: Exception, title: str = "Error") -> gr.Error:
    """The message as text: the page renders an error's message as HTML, and messages quote what
    the user typed or uploaded (file names, ids, lines); quotes stay readable."""
    return gr.Error(html.escape(str(error), quote=False), title=title)
