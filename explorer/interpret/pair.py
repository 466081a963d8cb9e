"""One (query, document) pair, tokenized once, and the model that every interpretation reads.

Attention, attributions and the token views all take the same `EncodedPair` and the same
bound model: the eager-attention copy of the cross-encoder in fp32 (SDPA returns no
attention weights), so the pair is never re-tokenized or the model loaded again per view.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from explorer.budgets import (
    MAX_INSPECT_DOCUMENT_CHARS,
    MAX_QUERY_CHARS,
    check_encodable,
    check_query_tokens,
    is_blank,
)
from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
from explorer.engine.loading import load_model
from explorer.engine.model import LoadedModel
from explorer.errors import ExplorerError
from explorer.rankers.cross_encoder import CrossEncoder


def inspection_model(cross_encoder: str = DEFAULT_CROSS_ENCODER, allow_local_path: bool = False,
                     label: int | str | None = None) -> CrossEncoder:
    """The cross-encoder bound for interpretation: eager attention, fp32 (exact scores), explaining
    the logit of `label` (the default label when None; see `CrossEncoder.resolve_label`)."""
    model = load_model(cross_encoder, "cross", eager_attention=True, allow_local_path=allow_local_path)
    return CrossEncoder(model, "fp32", label=label)


def rescoring_model(cross_encoder: str = DEFAULT_CROSS_ENCODER, allow_local_path: bool = False,
                    label: int | str | None = None) -> CrossEncoder:
    """The cross-encoder for rescoring, occlusion and gradients: fp32 (exact scores), the same
    model re-ranking uses. Its default attention (SDPA where the architecture has it) returns no
    weights and runs faster than the eager copy, so only the attention views need `inspection_model`."""
    return CrossEncoder(load_model(cross_encoder, "cross", allow_local_path=allow_local_path), "fp32", label=label)


@dataclass
class EncodedPair:
    """The tokenizer's encoding of one pair, cut to the model's maximum length, with offsets."""

    query: str
    document: str
    features: dict[str, torch.Tensor]  # input_ids, attention_mask, token_type_ids: (1, tokens)
    tokens: list[str]  # special tokens included
    sequence_ids: list[int | None]  # 0 query, 1 document, None special
    word_ids: list[int | None]  # word number within its own text
    offsets: list[tuple[int, int]]  # character span of each token in its own text
    document_words_total: int  # document words before truncation
    document_chars_cut: int = 0  # characters past MAX_INSPECT_DOCUMENT_CHARS, never tokenized

    @property
    def truncated(self) -> bool:
        """True when the model does not read the whole document: characters were cut before tokenising, or
        words fell past the maximum length."""
        return self.document_chars_cut > 0 or len(self.document_word_tokens()) < self.document_words_total

    def document_word_tokens(self) -> dict[int, tuple[list[int], tuple[int, int]]]:
        """Each kept document word's token positions and character span, in word order."""
        return _document_word_tokens(self.word_ids, self.sequence_ids, self.offsets)

    def document_word_spans(self) -> list[tuple[int, int]]:
        """Character (start, end) of every document word the model reads, in reading order."""
        return [span for _, span in self.document_word_tokens().values()]

    @property
    def cut_char(self) -> int | None:
        """The character offset in `document` after which the model reads nothing (the end of the
        last document token kept), or None when it reads the whole document."""
        if not self.truncated:
            return None
        kept = [end for (_, end), sequence in zip(self.offsets, self.sequence_ids) if sequence == 1]
        return kept[-1] if kept else 0

    @property
    def words_cut(self) -> int:
        """Document words past the model's maximum length."""
        return self.document_words_total - len(self.document_word_tokens())


def _document_word_tokens(word_ids, sequence_ids, offsets) -> dict[int, tuple[list[int], tuple[int, int]]]:
    words: dict[int, tuple[list[int], list[int]]] = {}
    for position, (word, sequence, (start, end)) in enumerate(zip(word_ids, sequence_ids, offsets)):
        if sequence == 1 and word is not None:
            positions, span = words.setdefault(word, ([], [start, end]))
            positions.append(position)
            span[1] = end
    return {word: (positions, (span[0], span[1])) for word, (positions, span) in sorted(words.items())}


def check_pair_texts(query: str, document: str) -> tuple[str, str]:
    """The pair as the model will read it; a message for empty, unreadable or oversized text."""
    query, document = check_encodable(query or "", "query"), check_encodable(document or "", "document")
    if is_blank(query):
        raise ExplorerError("The query is empty: type a query to inspect.")
    if is_blank(document):
        raise ExplorerError("The document is empty: paste or pick a document to inspect.")
    if len(query) > MAX_QUERY_CHARS:
        raise ExplorerError(f"The query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,}.")
    return query, document


def encode_pair(model: LoadedModel | CrossEncoder, query: str, document: str) -> EncodedPair:
    """Tokenize the pair once, cut to the model's maximum length (only the document is cut)."""
    query, document = check_pair_texts(query, document)
    model = model.model if isinstance(model, CrossEncoder) else model
    check_query_tokens(len(model.tokenizer(query, add_special_tokens=False)["input_ids"]), model.max_length)
    # Past this the model would not read the text anyway; cutting first bounds the tokenizer's work.
    chars_cut = max(0, len(document) - MAX_INSPECT_DOCUMENT_CHARS)
    document = document[:MAX_INSPECT_DOCUMENT_CHARS]
    # A cross-encoder's prompt goes before the query, as `CrossEncoder.predict` puts it; its
    # tokens belong to neither text (sequence id None below), and query offsets are the query's own.
    prompt = model.prompt("query")
    encoded = model.tokenizer(
        prompt + query, document, truncation="only_second", max_length=model.max_length,
        return_offsets_mapping=True, return_tensors="pt",
    )
    # Which text each token came from is the tokenizer's own word: its sequence ids (0 query,
    # 1 document, None special), whatever the layout ([CLS] q [SEP] d [SEP], <s> q </s></s> d </s>, ...).
    sequence_ids = encoded.sequence_ids(0)
    word_ids = encoded.word_ids(0)
    offsets = [tuple(o) for o in encoded.pop("offset_mapping")[0].tolist()]
    if prompt:
        in_prompt = [s == 0 and end <= len(prompt) for s, (_, end) in zip(sequence_ids, offsets)]
        sequence_ids = [None if cut else s for s, cut in zip(sequence_ids, in_prompt)]
        offsets = [(0, 0) if cut else (max(0, a - len(prompt)), b - len(prompt)) if s == 0 else (a, b)
                   for s, cut, (a, b) in zip(sequence_ids, in_prompt, offsets)]
    # The untruncated encoding only counts the document's words, to say how many were cut.
    whole = model.tokenizer(prompt + query, document, return_offsets_mapping=True)
    total = len(_document_word_tokens(whole.word_ids(), whole.sequence_ids(), whole["offset_mapping"]))
    # Only what the model's forward takes (ModernBERT has no token types), as sentence-transformers passes it.
    accepted = inspect.signature(model.module.forward).parameters
    features = {k: v for k, v in encoded.items()
                if k in ("input_ids", "attention_mask", "token_type_ids") and k in accepted}
    return EncodedPair(
        query=query,
        document=document,
        features=features,
        tokens=model.tokenizer.convert_ids_to_tokens(features["input_ids"][0].tolist()),
        sequence_ids=sequence_ids,
        word_ids=[w if s is not None else None for w, s in zip(word_ids, sequence_ids)],
        offsets=offsets,
        document_words_total=total,
        document_chars_cut=chars_cut,
    )
