"""Long documents: where the model stops reading, and passage-level scoring by sliding windows.

A cross-encoder reads at most `max_length` (512) tokens of the pair, and only the document is
cut, so everything past one character offset never reaches the model: `truncation_point`
finds it from the tokenizer's own offsets. `passage_scores` scores the document window by
window instead (windows of `window` document tokens, starting every `stride` tokens, moved back
to whole words) and labels the best window's score as a passage-level score (MaxP): it is the
score of that window, not of the document.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from explorer.budgets import MAX_WINDOWS, check_query_tokens
from explorer.errors import ExplorerError
from explorer.interpret.pair import check_pair_texts
from explorer.rankers.cross_encoder import CrossEncoder
from explorer.rankers.passage_cross_encoder import window_ranges

WINDOW_TOKENS = 256  # document tokens per window (the pair adds the query and 3 special tokens)
STRIDE_TOKENS = 128  # a new window every this many document tokens: consecutive windows overlap by half


@dataclass
class Window:
    """One sliding window of a long document: its character and token span and the logit of (query, window
    text)."""
    start: int  # character span of the window in the document
    end: int
    first_token: int  # document token positions (no special tokens), end exclusive
    last_token: int
    score: float  # the logit of (query, this window's text)


@dataclass
class PassageScores:
    """A long document scored by windows (MaxP): every window's logit, the best one, and the whole document's
    logit as the model reads it (cut at max_length) for comparison."""
    window_tokens: int
    stride_tokens: int
    windows: list[Window]
    best: int  # index of the best window
    best_window_score: float  # passage-level score: the best window's logit (labelled as such)
    document_score: float  # the logit of the document as the model reads it (cut at max_length)
    document_tokens: int
    cut_char: int | None  # where the model stops reading the whole document; None: it reads all
    label: str = "best window's score (passage-level, MaxP), not the whole document's"

    def to_dict(self) -> dict:
        """Every field, as JSON-ready values (windows as dicts)."""
        return asdict(self)


def truncation_point(scorer: CrossEncoder, query: str, document: str) -> int | None:
    """The character offset in `document` after which the model reads nothing of it (the end of
    the last document token kept in a `max_length` pair), or None when the whole document fits."""
    tokenizer = scorer.model.tokenizer
    encoded = tokenizer(query, document, truncation="only_second", max_length=scorer.max_length,
                        return_offsets_mapping=True, return_overflowing_tokens=True, stride=0)
    if len(encoded["input_ids"]) == 1:  # no overflowing part: the document fits
        return None
    sequence_ids = encoded.sequence_ids(0)
    kept = [end for (start, end), sequence in zip(encoded["offset_mapping"][0], sequence_ids) if sequence == 1]
    return kept[-1] if kept else 0


def passage_scores(scorer: CrossEncoder, query: str, document: str,
                   window: int = WINDOW_TOKENS, stride: int = STRIDE_TOKENS) -> PassageScores:
    """Score every window of the document and the document itself, in one batch."""
    query, document = check_pair_texts(query, document)
    tokenizer = scorer.model.tokenizer
    query_tokens = len(tokenizer(query, add_special_tokens=False)["input_ids"])
    check_query_tokens(query_tokens, scorer.max_length)
    room = scorer.max_length - query_tokens - 3
    if not 1 <= window <= room:
        raise ExplorerError(f"A window of {window} tokens does not fit a pair with this query: "
                            f"choose 1 to {room} ({scorer.max_length} tokens less the query's {query_tokens} and 3 special).")
    if not 1 <= stride <= window:
        raise ExplorerError(f"The stride must be 1 to {window} tokens (the window), not {stride}.")
    encoded = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True)
    offsets, total = encoded["offset_mapping"], len(encoded["input_ids"])
    if not total:
        raise ExplorerError("The document has no text the model can read.")
    ranges = window_ranges(encoded.word_ids(), total, window, stride)
    if len(ranges) > MAX_WINDOWS:
        raise ExplorerError(f"The document makes {len(ranges)} windows of {window} tokens every {stride}; "
                            f"the limit is {MAX_WINDOWS}. Use a larger stride or a shorter document.")
    spans = [(offsets[first][0], offsets[last - 1][1]) for first, last in ranges]
    scores = scorer.score_query(query, [document] + [document[s:e] for s, e in spans]).logits
    windows = [Window(s, e, first, last, float(score))
               for (s, e), (first, last), score in zip(spans, ranges, scores[1:])]
    best = max(range(len(windows)), key=lambda k: windows[k].score)
    return PassageScores(
        window_tokens=window, stride_tokens=stride, windows=windows, best=best,
        best_window_score=windows[best].score, document_score=float(scores[0]),
        document_tokens=total, cut_char=truncation_point(scorer, query, document),
    )
