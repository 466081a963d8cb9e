"""Every per-request limit, in one place: what one visitor may ask of a 2-core server.

Each limit is shown to the user when it bites (the message names it and the value given).
"""

from __future__ import annotations

import unicodedata

from explorer.errors import ExplorerError

MAX_QUERY_CHARS = 2000
# A query longer than this many tokens would leave the document almost no room in a
# 512-token pair (and the tokenizer cannot cut the query when only the document may be cut).
MAX_QUERY_TOKENS = 128
# Inspect: the document is cut to this many characters before tokenizing; the model reads
# at most 512 tokens (about 2,500 characters of English) anyway.
MAX_INSPECT_DOCUMENT_CHARS = 5000
# Scoring the whole corpus costs queries x documents cross-encoder pairs: a public app must
# not start a job of hours, so beyond this the page asks for the command line.
MAX_WHOLE_CORPUS_PAIRS = 20_000
MAX_EVAL_TOP_K = 100

# Characters that print as nothing: a query made only of these is empty.
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}


def is_blank(text: str) -> bool:
    """True for text with nothing visible in it (spaces, zero-width characters, soft hyphens)."""
    return all(ch.isspace() or ch in _INVISIBLE for ch in text or "")


def check_encodable(text: str, what: str) -> str:
    """Text as given, or a message naming what cannot be read (a lone surrogate cannot be UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        bad = text[error.start]
        raise ExplorerError(
            f"The {what} holds a character that is not valid Unicode text (U+{ord(bad):04X} at position "
            f"{error.start + 1}); remove it and try again."
        ) from None
    return unicodedata.normalize("NFC", text)


def check_whole_number(value, what: str) -> int:
    """An int from an int, a whole float or a numeric string; a message for anything else."""
    if isinstance(value, bool) or value is None:
        raise ExplorerError(f"{what} must be a whole number, not {value!r}.")
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ExplorerError(f"{what} must be a whole number, not {value!r}.") from None
    if not number.is_integer():
        raise ExplorerError(f"{what} must be a whole number, not {value!r}.")
    return int(number)
