"""How every command prints its result: one JSON object with --json, else the readable text."""

from __future__ import annotations

import json
import sys


def print_json(data) -> None:
    """`data` as indented JSON on stdout (non-ASCII kept as is)."""
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def emit(args, data, text) -> None:
    """One result: `data` as JSON when `args.json`, else the string `text()` returns (built only then)."""
    if args.json:
        print_json(data)
    else:
        print(text())
