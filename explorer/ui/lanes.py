"""Long jobs in their own lane, so one visitor's big request does not hold everyone's short one.

gradio queues each event on its own: a 231 s comparison of a big upload made a two-document one
wait 217 s behind it. Here every request is measured first in tokens of model work (`budgets.py`);
past `LONG_JOB_TOKENS` it is a long job and runs in the one long-job lane shared by every tab:
one at a time (two cores cannot run two faster than one after the other), at most
`LONG_JOBS_WAITING` waiting in order, each told its place through gradio's progress, and
one more refused at once with a message. Short requests run beside it. For that, each event that
may run a long job gets `concurrency_limit=EVENT_CONCURRENCY` (the long job, those waiting for the
lane, and SHORT_JOBS_AT_ONCE short ones), which `event_lane(name)` hands to `.click(...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from explorer.budgets import LONG_JOB_TOKENS, LONG_JOBS_WAITING, SHORT_JOBS_AT_ONCE
from explorer.pipeline.work import Lane, ProgressFn, give_back_memory

LONG_JOBS = Lane("long-job", running=1, waiting=LONG_JOBS_WAITING)
# Per event: the long job, those waiting for the lane, and the short jobs beside them.
EVENT_CONCURRENCY = LONG_JOBS.running + LONG_JOBS.waiting + SHORT_JOBS_AT_ONCE


def event_lane(name: str) -> dict:
    """`concurrency_limit` and `concurrency_id` for an event whose requests may be long jobs; every
    event given the same `name` shares one group (the same button reached from several places)."""
    return {"concurrency_limit": EVENT_CONCURRENCY, "concurrency_id": name}


@contextmanager
def by_work(tokens: int, what: str, progress: ProgressFn | None = None) -> Iterator[bool]:
    """Run the block in the long-job lane when `tokens` of work exceed LONG_JOB_TOKENS, else at
    once; yields whether it went to the lane. After a long job the freed heap goes back to the
    system (`give_back_memory`)."""
    if tokens > LONG_JOB_TOKENS:
        try:
            with LONG_JOBS.slot(f"{what} ({tokens:,} tokens of model work)", progress):
                yield True
        finally:
            give_back_memory()
    else:
        yield False


def gradio_progress(progress) -> ProgressFn:
    """A lane's messages shown by a gradio `Progress` (as its description, no fraction)."""
    return lambda message: progress(None, desc=message)
