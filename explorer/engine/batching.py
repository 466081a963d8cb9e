"""The one batching routine both encoders use: length-sorted batches with dynamic padding.

Sorting by token count means each batch pads only to its own longest member, which on a
CPU saves most of the work that padding to a global maximum would waste.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Yield lists of item indices, longest first, each list at most `batch_size` long."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def pad_batch(tokenizer, encoded: Mapping[str, Sequence[Sequence[int]]], batch: Sequence[int]) -> dict[str, torch.Tensor]:
    """Tensors for the items `batch` of `tokenizer`'s output, padded to the batch's longest.

    Right padding (BERT-style tokenizers) is done here, giving the same tensors as
    `tokenizer.pad` without its per-call overhead; anything else goes to `tokenizer.pad`.
    """
    if tokenizer.padding_side != "right" or tokenizer.pad_token_id is None:
        return tokenizer.pad({key: [encoded[key][i] for i in batch] for key in encoded.keys()}, return_tensors="pt")
    ids = encoded["input_ids"]
    width = max(len(ids[i]) for i in batch)
    features = {}
    for key in encoded.keys():
        rows = encoded[key]
        filler = tokenizer.pad_token_id if key == "input_ids" else 0
        tensor = torch.full((len(batch), width), filler, dtype=torch.long)
        for row, i in enumerate(batch):
            tensor[row, : len(rows[i])] = torch.tensor(rows[i], dtype=torch.long)
        features[key] = tensor
    return features


def padded_batches(
    tokenizer,
    encoded: Mapping[str, Sequence[Sequence[int]]],
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """(item indices, padded tensors) per length-sorted batch; `progress(done, total)` after each."""
    lengths = [len(ids) for ids in encoded["input_ids"]]
    done = 0
    for batch in length_sorted_batches(lengths, batch_size):
        yield batch, pad_batch(tokenizer, encoded, batch)
        done += len(batch)
        if progress:
            progress(done, len(lengths))
