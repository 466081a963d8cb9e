"""What several command-line tests share: a small two-sense corpus and running the CLI for its JSON."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

from explorer.cli import main

# Python the snake and Python the language, and a few bystanders.
SNAKE_CORPUS = [
    "Ball pythons are popular pet snakes.",
    "Python is a programming language.",
    "The snake shed its skin.",
    "Monty Python was a comedy group.",
    "Cats purr when they are content.",
    "Pythons are large constricting snakes found in Africa and Asia.",
    "Snakes smell with their tongues.",
]


def run_cli(*argv: str) -> dict:
    """Run `python -m explorer ARGV` in-process; it must exit 0; return the JSON it printed."""
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(list(argv)) == 0
    return json.loads(buffer.getvalue())


def write_corpus(folder: Path) -> str:
    path = folder / "corpus.txt"
    path.write_text("\n".join(SNAKE_CORPUS) + "\n")
    return str(path)
