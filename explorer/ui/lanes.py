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

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from explorer.budgets import LONG_JOB_TOKENS, LONG_JOBS_WAITING, SHORT_JOBS_AT_ONCE
from explorer.errors import ExplorerError

ProgressFn = Callable[[str], None]  # told what the job is doing (gradio progress's desc)


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


def gradio_progress(progress) -> ProgressFn:
    """A lane's messages shown by a gradio `Progress` (as its description, no fraction)."""
    return lambda message: progress(None, desc=message)
