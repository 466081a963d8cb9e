"""The one batching routine both encoders use: length-sorted batches with dynamic padding.

Sorting by token count means each batch pads only to its own longest member, which on a
CPU saves most of the work that padding to a global maximum would waste.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Yield lists of item indices, longest first, each list at most `batch_size` long."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
