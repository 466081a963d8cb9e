"""Work: what one request makes the models read, in tokens (`budgets.py` says why tokens), and
the lane long work runs in, one job at a time, so short requests beside it stay short.

The app (`ui/lanes.py`) measures each request with these functions before running it; a request
past a budget is refused with a message naming the budget.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from explorer import caches
from explorer.budgets import check_encode_tokens, check_whole_corpus_tokens, every_pair_tokens, token_counts
from explorer.data.corpus import Corpus
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.errors import ExplorerError
from explorer.pipeline.compare import first_stage_ranker, reranker
from explorer.rankers.bi_encoder import BiEncoder, load_bi_encoder
from explorer.rankers.hybrid import Hybrid

ProgressFn = Callable[[str], None]  # told what a job in a lane is doing


# Pair tokens assumed per re-ranked candidate when the corpus was not counted (it is cached).
_ASSUMED_PAIR_TOKENS = 128


def comparison_work(query: str, corpus: Corpus, first_stage: str, kinds: list[str], bi_encoder: str,
                    cross_encoder: str, precision: str, score_all: bool, top_k, shipped: bool, prebuilt: bool) -> int:
    """Tokens of model work this comparison causes (budgets.py), refusing one past a budget:
    encoding the corpus with the bi-encoder (unless it is cached or prebuilt; a pasted or uploaded
    one at most MAX_ENCODE_TOKENS), the whole corpus scored by the last re-ranker (at most
    MAX_WHOLE_CORPUS_TOKENS), and the top-k re-ranked by each re-ranker (estimated from the mean
    document length)."""
    work, mean_tokens = 0, _ASSUMED_PAIR_TOKENS
    if first_stage in ("bi", "hybrid") and not prebuilt:
        ranker = first_stage_ranker(first_stage, bi_encoder, precision, False)
        encoder = ranker.dense if isinstance(ranker, Hybrid) else ranker
        if isinstance(encoder, BiEncoder) and (encoder.model.id, encoder.precision, corpus.fingerprint) not in caches.CORPUS_INDEXES:
            counts = token_counts(encoder.model.tokenizer, corpus.texts, encoder.model.max_length)
            if not shipped:
                check_encode_tokens(sum(counts), len(counts))
            work += sum(counts)
            mean_tokens = sum(counts) / len(counts) if counts else mean_tokens
    if score_all and kinds:
        last = reranker(kinds[-1], cross_encoder, precision, False)
        counts = token_counts(last.tokenizer, corpus.texts, last.max_length, pair_with=query)
        check_whole_corpus_tokens(
            sum(counts), len(counts), "this corpus",
            "Untick \"Also score the whole corpus\", or run `python -m explorer compare --all` from the command line.",
        )
        work += sum(counts)
        mean_tokens = sum(counts) / len(counts) if counts else mean_tokens
    try:
        candidates = min(int(top_k or 10), len(corpus))
    except (TypeError, ValueError):
        candidates = 10  # compare() says what is wrong with it
    return int(work + len(kinds) * candidates * mean_tokens)


def labelled_work(corpus, queries, top_k: int, rerank_chains: int, score_all: bool, encodes: bool,
                  uploaded: bool) -> int:
    """Tokens of model work to evaluate `queries` on `corpus` (budgets.py): encoding the corpus with
    the default bi-encoder (`encodes`; an `uploaded` one at most MAX_ENCODE_TOKENS, else refused),
    each re-ranking chain's top-k per query (at the mean pair length), and with `score_all` every
    (query, document) pair (its budget is checked where it runs, `evaluate_shipped_set`)."""
    work = 0
    if encodes:
        bi = load_bi_encoder(DEFAULT_BI_ENCODER, "fp32").model
        counts = token_counts(bi.tokenizer, corpus.texts, bi.max_length)
        if uploaded:
            check_encode_tokens(sum(counts), len(counts))
        work += sum(counts)
    pairs = len(queries) * len(corpus)
    if pairs:
        cross = reranker("cross", DEFAULT_CROSS_ENCODER, "auto", False)
        every_pair = every_pair_tokens(cross.tokenizer, cross.max_length, [q.text for q in queries], corpus.texts)
        work += int(rerank_chains * len(queries) * min(top_k, len(corpus)) * every_pair / pairs)
        work += every_pair if score_all else 0
    return work


class Lane:
    """At most `running` jobs at once, at most `waiting` more in line (first come, first served);
    a job that finds the line full gets an ExplorerError at once."""

    def __init__(self, name: str, running: int, waiting: int):
        self.name = name
        self.running = running
        self.waiting = waiting
        self._condition = threading.Condition()
        self._line: deque[object] = deque()
        self._busy = 0

    @contextmanager
    def slot(self, what: str, progress: ProgressFn | None = None) -> Iterator[None]:
        """Run the `with` block in the lane; `what` names the job in the busy message and progress."""
        report = progress or (lambda message: None)
        ticket = object()
        with self._condition:
            if self._busy >= self.running and len(self._line) >= self.waiting:
                raise ExplorerError(
                    f"The server is busy with long jobs ({self._busy} running, {len(self._line)} waiting, "
                    f"at most {self.waiting} may wait; {what} is one). Try again in a minute, or ask for "
                    "less: fewer or shorter documents, BM25 as the first stage, or the command line."
                )
            self._line.append(ticket)
            try:
                while self._busy >= self.running or self._line[0] is not ticket:
                    report(f"Waiting for the {self.name} lane: {self._line.index(ticket) + self._busy} job(s) ahead")
                    self._condition.wait()
            finally:
                self._line.remove(ticket)
                self._condition.notify_all()  # the next in line may now be first
            self._busy += 1
        try:
            report(f"Running in the {self.name} lane: {what}")
            yield
        finally:
            with self._condition:
                self._busy -= 1
                self._condition.notify_all()

    def state(self) -> dict[str, int]:
        """Jobs running and waiting now."""
        with self._condition:
            return {"running": self._busy, "waiting": len(self._line)}


def give_back_memory() -> bool:
    """Return the heap's free memory to the system (glibc's `malloc_trim`); False where there is none.

    glibc keeps what a process frees for its next allocation, so a long job's temporaries stay in
    the RSS: after Integrated Gradients on a 512-token pair the RSS stayed at 1,849 MB, and went to
    539 MB once trimmed (measured, fp32, 2-core AVX2 EPYC). A trim takes milliseconds.
    """
    try:
        import ctypes

        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0) or True)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return False
