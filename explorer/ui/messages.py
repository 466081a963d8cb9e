"""How an error reaches the page: a user's mistake as its message, anything else as an apology.

An `ExplorerError` (something the visitor can fix) is shown as its message, escaped. Any other
exception is the app's own fault: its traceback goes to the log under a short reference, and
the visitor sees a plain apology naming that reference, never Python's text. `guard_events`
applies this to every event of the page once it is built, so no callback can forget it.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import uuid
from collections.abc import Callable

import gradio as gr

from explorer.errors import ExplorerError

LOG = logging.getLogger(__name__)
APOLOGY = ("Sorry: something went wrong inside the app, not with what you gave it. The details are in the "
           "server's log under reference {reference}. Try again, or try other settings.")


def shown_error(error: Exception, title: str = "Error") -> gr.Error:
    """The message as text: the page renders an error's message as HTML, and messages quote what
    the user typed or uploaded (file names, ids, lines); quotes stay readable."""
    return gr.Error(html.escape(str(error), quote=False), title=title)


def internal_error(error: BaseException, where: str) -> gr.Error:
    """Log `error` with its traceback under a fresh reference; the apology that names it."""
    reference = uuid.uuid4().hex[:8]
    LOG.error("internal error in %s (reference %s)", where, reference, exc_info=error)
    return gr.Error(APOLOGY.format(reference=reference), title="Sorry")


def _for_the_page(error: Exception, where: str) -> gr.Error:
    if isinstance(error, gr.Error):  # already written for the visitor
        return error
    if isinstance(error, ExplorerError):
        return shown_error(error)
    return internal_error(error, where)


def guarded(fn: Callable) -> Callable:
    """`fn` (plain, generator, async or async generator) with every exception made fit for the page."""
    where = getattr(fn, "__qualname__", repr(fn))
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                async for item in fn(*args, **kwargs):
                    yield item
            except Exception as error:
                raise _for_the_page(error, where) from None
    elif inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as error:
                raise _for_the_page(error, where) from None
    elif inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except Exception as error:
                raise _for_the_page(error, where) from None
    else:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as error:
                raise _for_the_page(error, where) from None
    wrapper.guarded = True
    return wrapper


def guard_events(blocks: gr.Blocks) -> gr.Blocks:
    """Wrap every Python callback of a built page in `guarded` (JavaScript-only events have none)."""
    for event in blocks.fns.values():
        if event.fn is not None and not getattr(event.fn, "guarded", False):
            event.fn = guarded(event.fn)
    return blocks
