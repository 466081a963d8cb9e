"""Read one column out of the board's HTML (`views/board.py`), as tests read the page."""

from __future__ import annotations

import re

from explorer.views.board import board_html


def columns(fragment: str) -> list[tuple[str, str]]:
    """(data-role, html) of each board column, left to right."""
    parts = fragment.split("<div class='board-column")[1:]
    return [(re.search(r"data-role='([^']*)'", part).group(1), part) for part in parts]


def first_column(result, **options) -> str:
    """The first stage's column of `result`'s board (what the bi-encoder list was)."""
    return next(html for role, html in columns(board_html(result, **options)) if role == "first")


def shown_column(result, **options) -> str:
    """The last re-ranker's shown top-k: the whole-corpus column when scored, else the last re-ranker's."""
    drawn = [(role, html) for role, html in columns(board_html(result, **options)) if role in ("rerank", "full")]
    return drawn[-1][1]
