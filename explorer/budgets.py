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

# ---- Work: what one request makes the models read ---------------------------------------------
# Work is counted in tokens read by a model, summed over its passes: scoring one 120-token pair
# costs 120, encoding a corpus costs its documents' tokens (each cut at the model's maximum
# length), occluding a 512-token pair 64 times costs 64 x 512. A count of pairs or documents says
# nothing of their length (500 pairs of 2,500-character documents take 81 s, of one line 10 s).
# Measured on 2 cores: the cross-encoder (12 layers) reads ~1,900 tokens/s in fp32 on an AVX2
# EPYC (16 pairs/s of ~120 tokens) and ~6,700 in bf16 on an AVX-512 one; the bi-encoder (6
# layers) about twice that.
def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


# Scoring the whole corpus with the cross-encoder (Compare's checkbox, Evaluate's stage c): the
# pairs' tokens. 60,000 is about 30 s on the AVX2 machine; every shipped teaching set fits.
MAX_WHOLE_CORPUS_TOKENS = _env_int("EXPLORER_MAX_WHOLE_CORPUS_TOKENS", 60_000)
# Encoding a pasted or uploaded corpus with the bi-encoder (its first stage, bi or hybrid): the
# documents' tokens. 250,000 (about 2,500 passages of 480 characters) is about a minute on the AVX2
# machine; a 10 MB upload of 20,000 such passages is 2 million (231 s measured on an AVX-512 EPYC).
# BM25 encodes nothing, and a prebuilt index (`python app.py --index`) was encoded beforehand.
MAX_ENCODE_TOKENS = _env_int("EXPLORER_MAX_ENCODE_TOKENS", 250_000)
# A request past this much work is a long job: long jobs run one at a time in their own lane
# (`ui/lanes.py`), so short requests beside them are answered in seconds. 20,000 is about 10 s on
# the AVX2 machine; a comparison of a few pasted documents is a few hundred.
LONG_JOB_TOKENS = _env_int("EXPLORER_LONG_JOB_TOKENS", 20_000)
# Long jobs waiting for the lane beyond the one running; past this a request is refused at once
# ("busy, try again") instead of holding a worker for minutes.
LONG_JOBS_WAITING = _env_int("EXPLORER_LONG_JOBS_WAITING", 2)
# Short jobs that run at once per kind of request (compare, inspect, contrast, evaluate).
SHORT_JOBS_AT_ONCE = 2
# Integrated Gradients: steps x the pair's tokens, per document (50 steps of a full 512-token
# pair is 25,600), and the tokens of one captum forward/backward batch (its internal_batch_size
# is this divided by the pair's tokens): a backward pass keeps every layer's activations, about
# 175 MB per 512-token pair. Measured on a 512-token pair, 25 steps, fp32, 2-core AVX2 EPYC: 25
# pairs a batch (the old fixed size) peaked at 4,809 MB of RSS (+4,410 MB), 8 pairs (4,096 tokens)
# at 1,942 MB (+1,543), 4 pairs at 1,256 MB (+857) but 1.5x slower again.
MAX_IG_STEP_TOKENS = _env_int("EXPLORER_MAX_IG_STEP_TOKENS", 50 * 512)
IG_BATCH_TOKENS = _env_int("EXPLORER_IG_BATCH_TOKENS", 4096)
# The contrast panel's edited document: what Inspect reads of a document, and the words its diff
# compares (difflib is quadratic in the worst case; past this, the change is reported as one block).
MAX_EDIT_CHARS = 5000
MAX_DIFF_WORDS = 2000
# TREC runs uploaded beside the pipelines (Evaluate): how many, and their bytes together (a run
# held in memory takes about four times its file size).
MAX_UPLOADED_RUNS = _env_int("EXPLORER_MAX_UPLOADED_RUNS", 6)
MAX_UPLOADED_RUNS_BYTES = _env_int("EXPLORER_MAX_UPLOADED_RUNS_BYTES", 40 * 1024 * 1024)
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


def token_counts(tokenizer, texts, max_length: int, pair_with: str | None = None) -> list[int]:
    """Tokens a model reads of each text (special tokens included, cut at `max_length`); with
    `pair_with`, of each (query, text) pair as a cross-encoder reads it (only the text is cut).
    `tokenizer` is a Hugging Face fast tokenizer; for 20,000 passages this takes about a second."""
    texts = list(texts)
    if not texts:
        return []
    if pair_with is None:
        encoded = tokenizer(texts, truncation=True, max_length=max_length)
    else:
        encoded = tokenizer([pair_with] * len(texts), texts, truncation="only_second", max_length=max_length)
    return [len(ids) for ids in encoded["input_ids"]]


def every_pair_tokens(tokenizer, max_length: int, queries, texts) -> int:
    """Tokens of every (query, text) pair a cross-encoder would read, [CLS] q [SEP] t [SEP] cut at
    `max_length`: counted per text and per query, not per pair (5,000 x 20,000 pairs is one sum)."""
    import numpy as np

    documents = np.array(token_counts(tokenizer, texts, max_length), dtype=np.int64)  # [CLS] t [SEP]
    query_tokens = [len(ids) - 2 for ids in tokenizer(list(queries))["input_ids"]] if queries else []
    return sum(int(np.minimum(documents + q + 1, max_length).sum()) for q in query_tokens)


def check_whole_corpus_tokens(tokens: int, pairs: int, what: str, way_out: str) -> None:
    """Refuse a whole-corpus cross-encoder pass whose `pairs` hold more than MAX_WHOLE_CORPUS_TOKENS
    tokens in all; `way_out` says what to do instead."""
    if tokens > MAX_WHOLE_CORPUS_TOKENS:
        raise ExplorerError(
            f"Scoring the whole of {what} with the cross-encoder means {pairs:,} (query, document) pairs of "
            f"{tokens:,} tokens in all; the app's whole-corpus budget is {MAX_WHOLE_CORPUS_TOKENS:,} tokens "
            f"(EXPLORER_MAX_WHOLE_CORPUS_TOKENS). {way_out}"
        )


def check_encode_tokens(tokens: int, documents: int) -> None:
    """Refuse to encode a pasted or uploaded corpus past MAX_ENCODE_TOKENS with the bi-encoder."""
    if tokens > MAX_ENCODE_TOKENS:
        raise ExplorerError(
            f"Encoding this corpus with the bi-encoder means reading {tokens:,} tokens ({documents:,} documents); "
            f"one request may encode at most {MAX_ENCODE_TOKENS:,} tokens on this server "
            "(EXPLORER_MAX_ENCODE_TOKENS). Pick BM25 as the first stage (it encodes nothing), use fewer or "
            "shorter documents, or build an index with `python -m explorer index` and start the app with --index."
        )


def check_ig_steps(steps: int, tokens: int) -> None:
    """Refuse Integrated Gradients past MAX_IG_STEP_TOKENS (steps x the pair's tokens)."""
    if steps * tokens > MAX_IG_STEP_TOKENS:
        raise ExplorerError(
            f"Integrated Gradients with {steps} steps over a {tokens}-token pair is {steps * tokens:,} token-steps; "
            f"the budget is {MAX_IG_STEP_TOKENS:,} (EXPLORER_MAX_IG_STEP_TOKENS). Use fewer steps or a shorter document."
        )


def check_edit_chars(text: str) -> None:
    """The contrast panel's edited document may be as long as Inspect reads, no longer."""
    if len(text) > MAX_EDIT_CHARS:
        raise ExplorerError(
            f"The edited document is {len(text):,} characters long; the limit is {MAX_EDIT_CHARS:,} "
            "(the model reads 512 tokens, about 2,500 characters). Shorten it."
        )


def check_uploaded_runs(sizes: list[int]) -> None:
    """At most MAX_UPLOADED_RUNS TREC run files, of at most MAX_UPLOADED_RUNS_BYTES together."""
    if len(sizes) > MAX_UPLOADED_RUNS:
        raise ExplorerError(f"{len(sizes)} TREC runs were uploaded; the page evaluates at most "
                            f"{MAX_UPLOADED_RUNS} at once (EXPLORER_MAX_UPLOADED_RUNS). Upload fewer.")
    if sum(sizes) > MAX_UPLOADED_RUNS_BYTES:
        raise ExplorerError(f"The uploaded TREC runs are {sum(sizes) / 2**20:.1f} MB together; the limit is "
                            f"{MAX_UPLOADED_RUNS_BYTES / 2**20:.0f} MB (EXPLORER_MAX_UPLOADED_RUNS_BYTES). Upload fewer "
                            "or cut each run to the top 100 per query.")


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

# ---- The workbench's cases (store/): one SQLite file under paths.data_dir() -----------------------
# Cases in the database, and per case: queries, judgments, snapshots. A judgment row is ~100 bytes
# plus its reason; a snapshot of 50 queries x 4 columns x 100 documents is ~1 MB of JSON.
MAX_CASES = _env_int("EXPLORER_MAX_CASES", 10_000)
MAX_CASE_QUERIES = _env_int("EXPLORER_MAX_CASE_QUERIES", 500)
MAX_CASE_JUDGMENTS = _env_int("EXPLORER_MAX_CASE_JUDGMENTS", 20_000)
MAX_CASE_SNAPSHOTS = _env_int("EXPLORER_MAX_CASE_SNAPSHOTS", 50)
# The database file (with its write-ahead log): past this nothing new is written; what is there stays.
MAX_DATABASE_MB = _env_int("EXPLORER_MAX_DATABASE_MB", 2048)
MAX_CASE_NAME_CHARS = 200  # a case's or a snapshot's name
MAX_REASON_CHARS = 2000  # a judgment's reason
MAX_DOC_ID_CHARS = 1000  # a judged document id (ids come from the corpus; this bounds a forged one)
MAX_SETTINGS_CHARS = 64 * 1024  # the page's settings, as JSON
# A case's links stop working this many days after they were made; 0 keeps them for ever.
CASE_LINK_DAYS = float(os.environ.get("EXPLORER_CASE_LINK_DAYS", "0"))
# A case zip (case_zip.py): the file, and everything in it unpacked together.
MAX_CASE_ZIP_BYTES = _env_int("EXPLORER_MAX_CASE_ZIP_BYTES", 64 * 1024 * 1024)
MAX_CASE_ZIP_UNPACKED_BYTES = _env_int("EXPLORER_MAX_CASE_ZIP_UNPACKED_BYTES", 256 * 1024 * 1024)
MAX_CASE_ZIP_MEMBERS = 2 + 4 + MAX_CASE_SNAPSHOTS * 16  # manifest, corpus, queries, qrels, runs (<= 16 columns)


def check_case_count(cases: int) -> None:
    """Refuse a new case when the database already holds MAX_CASES."""
    if cases >= MAX_CASES:
        raise ExplorerError(f"This server keeps at most {MAX_CASES:,} cases (EXPLORER_MAX_CASES) and holds {cases:,}: "
                            "no new case can be saved here. Ask its operator to make room.")


def check_case_queries(queries: int) -> None:
    """A case holds at most MAX_CASE_QUERIES queries."""
    if queries > MAX_CASE_QUERIES:
        raise ExplorerError(f"A case holds at most {MAX_CASE_QUERIES:,} queries (EXPLORER_MAX_CASE_QUERIES); this one "
                            f"would have {queries:,}. Remove a query first, or start another case.")


def check_case_judgments(judgments: int) -> None:
    """A case holds at most MAX_CASE_JUDGMENTS judgments."""
    if judgments > MAX_CASE_JUDGMENTS:
        raise ExplorerError(f"A case holds at most {MAX_CASE_JUDGMENTS:,} judgments (EXPLORER_MAX_CASE_JUDGMENTS); this "
                            f"one would have {judgments:,}. Export it and start another case for more.")


def check_case_snapshots(snapshots: int) -> None:
    """A case keeps at most MAX_CASE_SNAPSHOTS snapshots."""
    if snapshots > MAX_CASE_SNAPSHOTS:
        raise ExplorerError(f"A case keeps at most {MAX_CASE_SNAPSHOTS} snapshots (EXPLORER_MAX_CASE_SNAPSHOTS); save "
                            "this one under the name of an old one to replace it.")


def check_database_size(size_bytes: int) -> None:
    """Nothing new is written once the database file is past MAX_DATABASE_MB."""
    if size_bytes > MAX_DATABASE_MB * 2**20:
        raise ExplorerError(f"The workbench database is full ({size_bytes / 2**20:,.0f} MB; the limit is "
                            f"{MAX_DATABASE_MB:,} MB, EXPLORER_MAX_DATABASE_MB): nothing new can be saved. What is "
                            "saved stays readable; ask the operator to make room.")


def check_case_text(text, what: str, limit: int, blank_ok: bool = False) -> str:
    """A case's name, a snapshot's name, a reason or a document id: a string of at most `limit` characters
    that UTF-8 can hold, kept exactly as given (nothing stripped); blank only when `blank_ok`."""
    if not isinstance(text, str):
        raise ExplorerError(f"The {what} must be text, not {type(text).__name__}.")
    check_encodable(text, what)
    if not blank_ok and is_blank(text):
        raise ExplorerError(f"The {what} is empty: give it a few words.")
    if len(text) > limit:
        raise ExplorerError(f"The {what} is {len(text):,} characters long; the limit is {limit:,}. Shorten it.")
    return text
