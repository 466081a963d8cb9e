"""Every per-request limit, in one place: what one visitor may ask of a 2-core server.

Each limit is shown to the user when it bites (the message names it and the value given).
"""

from __future__ import annotations

import os
import unicodedata

from explorer.errors import ExplorerError

# Caps for anything a user hands us (pasted, uploaded or named on the command line).
MAX_DOCUMENTS = int(os.environ.get("EXPLORER_MAX_DOCUMENTS", "20000"))
MAX_CORPUS_BYTES = int(os.environ.get("EXPLORER_MAX_CORPUS_BYTES", str(10 * 1024 * 1024)))
MAX_QUERY_CHARS = 2000
# A query longer than this many tokens would leave the document almost no room in a
# 512-token pair (and the tokenizer cannot cut the query when only the document may be cut).
MAX_QUERY_TOKENS = 128
# Inspect: the document is cut to this many characters before tokenizing; the model reads
# at most 512 tokens (about 2,500 characters of English) anyway.
MAX_INSPECT_DOCUMENT_CHARS = 5000
# Occlusion rescoring passes per pair. A longer document is occluded a run of words at a time
# (and says so); word by word, a 512-token pair would take ~400 full passes.
MAX_OCCLUSION_PASSES = 64
# The contrast view's first look: each document occluded in at most this many runs of words (about
# a sentence each in a 150-token passage), so both are ready within a second on 2 CPU cores (0.73 s
# measured on an AVX2 EPYC in fp32); word-level occlusion follows it.
FIRST_VIEW_OCCLUSION_PASSES = 4
# Scoring the whole corpus costs queries x documents cross-encoder pairs, and one such job holds
# its endpoint. Measured on 2 cores (pairs of ~120 tokens): 16 pairs/s in fp32 on an AVX2 EPYC,
# 56 pairs/s in bf16 on an AVX-512 one, so 500 pairs is at most about 30 s; beyond it the page
# asks for the command line. Every shipped teaching set fits (at most 288 pairs).
MAX_WHOLE_CORPUS_PAIRS = 500
# Passage-level scoring: sliding windows scored per document; a longer one needs a larger stride.
MAX_WINDOWS = 64
MAX_EVAL_TOP_K = 100
# Bring-your-own labels and TREC runs (python -m explorer eval): caps on what is read.
MAX_EVAL_QUERIES = int(os.environ.get("EXPLORER_MAX_EVAL_QUERIES", "5000"))
MAX_QRELS = int(os.environ.get("EXPLORER_MAX_QRELS", "200000"))  # labelled (query, document) lines
MAX_QREL_GRADE = 100  # grades are whole numbers 0..this
MAX_LABELS_ZIP_BYTES = int(os.environ.get("EXPLORER_MAX_LABELS_ZIP_BYTES", str(20 * 1024 * 1024)))
MAX_LABELS_FILE_BYTES = int(os.environ.get("EXPLORER_MAX_LABELS_FILE_BYTES", str(20 * 1024 * 1024)))  # queries, qrels, runs
MAX_RUN_LINES = int(os.environ.get("EXPLORER_MAX_RUN_LINES", "1000000"))
MAX_EVAL_PIPELINES = 12
# The Evaluate tab's pipelines run holds its endpoint while re-rankers score every query's top-k:
# at the 16 to 56 pairs/s measured above, 3,000 pairs is one to three minutes. Past it, the CLI.
MAX_PAGE_EVAL_PAIRS = 3000

# Characters that print as nothing besides whitespace: every format character (zero-width space
# and joiners, word joiner, soft hyphen, byte-order mark, direction marks: Unicode "Cf"), controls,
# separators and unassigned code points, variation selectors, and the letters and symbols drawn
# blank (Hangul fillers, the braille blank). A query, a line or a field made only of these is empty.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cn", "Cs", "Zs", "Zl", "Zp"}
_INVISIBLE = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u034f",
              *map(chr, range(0xFE00, 0xFE10)), *map(chr, range(0xE0100, 0xE01F0))}


def check_whole_corpus_pairs(pairs: int, what: str, way_out: str) -> None:
    """Refuse a whole-corpus cross-encoder pass past the app's pair budget; `way_out` says what to do instead."""
    if pairs > MAX_WHOLE_CORPUS_PAIRS:
        raise ExplorerError(
            f"Scoring the whole of {what} with the cross-encoder means {pairs:,} (query, document) pairs; "
            f"the app stops at {MAX_WHOLE_CORPUS_PAIRS:,}. {way_out}"
        )


def check_query_tokens(tokens: int, max_length: int) -> None:
    """A pair holds at most MAX_QUERY_TOKENS query tokens: past that the query itself would be cut."""
    if tokens > MAX_QUERY_TOKENS:
        raise ExplorerError(
            f"The query is {tokens:,} tokens long; a pair can hold at most {MAX_QUERY_TOKENS} query tokens "
            f"(the model reads {max_length} tokens in all, and only the document may be cut). Shorten the query."
        )


def is_blank(text: str) -> bool:
    """True for text with no visible character: whitespace (no-break spaces too), zero-width and other
    format characters, controls, variation selectors, Hangul fillers (see `_INVISIBLE`). Every reader
    treats such a line or field as blank."""
    return all(ch.isspace() or ch in _INVISIBLE or unicodedata.category(ch) in _INVISIBLE_CATEGORIES
               for ch in text or "")


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
    return text


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

# `python -m explorer index` (command line only, never the app): the corpus it reads. The app's
# caps above do not apply; a prebuilt index is opened without re-reading the corpus file.
MAX_INDEX_DOCUMENTS = int(os.environ.get("EXPLORER_MAX_INDEX_DOCUMENTS", "20000000"))
MAX_INDEX_CORPUS_BYTES = int(os.environ.get("EXPLORER_MAX_INDEX_CORPUS_BYTES", str(20 * 1024 ** 3)))

# Head importance and patching (interpret/heads.py) run one edited copy of the pair per head or
# block: the cost is tokens x copies ("token passes"). The full grid of the 12 x 12 cross-encoder is
# 169 copies (158 for patching). Measured (bench --heads): a 64-token grid, ~10,800 token passes,
# took 7.7 CPU s per thread in fp32 on the 2-core AVX2 EPYC, so 40,000 token passes are about 30 s
# there (less on AVX-512 / AMX machines): every head of a pair up to ~236 tokens. A longer pair gets
# the per-layer view (25 copies: any 512-token pair fits).
MAX_HEAD_TOKEN_PASSES = int(os.environ.get("EXPLORER_MAX_HEAD_TOKEN_PASSES", "40000"))
# Tokens in one batched pass of edited copies: bounds the attention scores held at once (copies x
# 12 heads x tokens^2 floats: 2048 tokens of a 64-token pair are 32 copies, 6 MB a layer), and sets
# how often the page's progress bar moves (a 64-token grid is 6 passes).
MAX_HEAD_BATCH_TOKENS = 2048


def check_head_passes(tokens: int, full_copies: int, per_layer_copies: int, what: str) -> str | None:
    """None when the full grid fits MAX_HEAD_TOKEN_PASSES; else why only the per-layer view is given.

    Raises ExplorerError when even the per-layer view (per_layer_copies) does not fit.
    """
    if tokens * full_copies <= MAX_HEAD_TOKEN_PASSES:
        return None
    if tokens * per_layer_copies > MAX_HEAD_TOKEN_PASSES:
        raise ExplorerError(
            f"The {what} of a {tokens:,}-token pair needs {tokens * per_layer_copies:,} token passes even per layer; "
            f"the limit is {MAX_HEAD_TOKEN_PASSES:,}. Shorten the document."
        )
    return (f"the full {what} of this {tokens:,}-token pair would be {full_copies} copies x {tokens:,} tokens = "
            f"{tokens * full_copies:,} token passes, past the limit of {MAX_HEAD_TOKEN_PASSES:,}: per layer only "
            f"({per_layer_copies} copies). Shorten the document to about "
            f"{MAX_HEAD_TOKEN_PASSES // full_copies} tokens for every head.")
