"""One (query, document) pair seen from inside the cross-encoder.

`inspect_pair` runs the chosen pair (never a batch), tokenized once, through the eager-attention
copy of the cross-encoder with `output_attentions=True`, in fp32, and keeps every layer's and
head's attention weights. `cross_attention_matrix` cuts the query/document block out of
that full self-attention, by layer, head and direction, optionally merged to words.

Attention weights show where the model looked, not why the score moved: the occlusion
attribution in `attribution.py` is what measures that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from explorer import caches
from explorer.errors import ExplorerError
from explorer.interpret.pair import EncodedPair, encode_pair, inspection_model
from explorer.rankers.cross_encoder import CrossEncoder, relevance_logits

Direction = Literal["query_to_doc", "doc_to_query"]
LayerChoice = int | Literal["mean"]
HeadChoice = int | Literal["mean", "max"]

ATTENTION_NOTE = (
    "Attention weights are not an explanation: they show where each token looked, not "
    "what changed the score. The occlusion attribution (logit change when a word is "
    "removed) is what moved the score."
)


@dataclass
class PairInspection:
    """Tokens and every attention weight of one (query, document) pair."""

    query: str
    document: str
    model_name: str
    tokens: list[str]  # the model input, in order, special tokens included
    segment: list[int]  # 0 for [CLS] + query + [SEP], 1 for document + [SEP]
    word_ids: list[int | None]  # word number within its own text; None for special tokens
    word_spans: list[tuple[int, int] | None]  # character span of each token in its own text
    query_index: list[int]  # positions in `tokens` of the query's tokens (no specials)
    doc_index: list[int]  # positions in `tokens` of the document's tokens (no specials)
    attentions: np.ndarray  # [layers, heads, seq, seq] float32, rows sum to 1
    score: float  # relevance logit of the pair
    probability: float  # the model's activation of the logit (`probability_name`)
    truncated: bool  # the pair was cut to the model's maximum length
    attention_ms: float  # time of the attention forward pass, ms
    probability_name: str = "sigmoid(logit)"  # what `probability` is (the cross-encoder's activation)

    @property
    def num_layers(self) -> int:
        return self.attentions.shape[0]

    @property
    def num_heads(self) -> int:
        return self.attentions.shape[1]

    def display_token(self, position: int) -> str:
        """A token as a person reads it: WordPiece continuations keep their '##'."""
        return self.tokens[position]


@dataclass
class AttentionBlock:
    """A rectangular cut of the attention: rows attend, columns are attended to."""

    row_labels: list[str]
    col_labels: list[str]
    values: np.ndarray  # (rows, cols) float32
    layer: LayerChoice
    head: HeadChoice
    direction: Direction
    word_level: bool
    renormalized: bool
    include_special: bool

    @property
    def unit(self) -> str:
        if self.renormalized:
            return "attention weight, renormalised to sum to 1 over the shown columns"
        return "attention weight (softmax over the full input)"


def inspect_pair(scorer: CrossEncoder, pair: EncodedPair) -> PairInspection:
    """Run the encoded pair once through the eager cross-encoder in fp32 and keep all attention weights."""
    model = scorer.model
    if not model.eager_attention:
        raise ValueError("inspection needs the eager-attention model (see pair.inspection_model)")
    started = time.perf_counter()
    with torch.inference_mode():
        output = model.module(**pair.features, output_attentions=True)
    attentions = torch.cat(output.attentions, dim=0).float().numpy()  # [layers, heads, seq, seq]
    attention_ms = (time.perf_counter() - started) * 1000.0
    logit = float(relevance_logits(output.logits.float(), scorer.label)[0])

    tokens = pair.tokens
    # Separators between the texts belong to the query's segment, trailing ones to the document's
    # (for BERT this is exactly token_type_ids).
    first_doc = next((i for i, s in enumerate(pair.sequence_ids) if s == 1), len(tokens))
    return PairInspection(
        query=pair.query,
        document=pair.document,
        model_name=model.name,
        tokens=tokens,
        segment=[int(i >= first_doc) for i in range(len(tokens))],
        word_ids=pair.word_ids,
        word_spans=[o if s is not None else None for o, s in zip(pair.offsets, pair.sequence_ids)],
        query_index=[i for i, s in enumerate(pair.sequence_ids) if s == 0],
        doc_index=[i for i, s in enumerate(pair.sequence_ids) if s == 1],
        attentions=attentions,
        score=logit,
        probability=float(scorer.probabilities(np.array([logit], dtype=np.float32))[0]),
        probability_name=scorer.probability_name,
        truncated=pair.truncated,
        attention_ms=attention_ms,
    )


def check_layer_head(inspection: PairInspection, layer, head) -> tuple[LayerChoice, HeadChoice]:
    """Parse and range-check a layer (int or 'mean') and head (int, 'mean' or 'max')."""
    layer = _parse_choice(layer, ("mean",), "layer", inspection.num_layers)
    head = _parse_choice(head, ("mean", "max"), "head", inspection.num_heads)
    return layer, head


def _parse_choice(value, words: tuple[str, ...], what: str, count: int):
    text = str(value).strip().lower()
    if text in words:
        return text
    try:
        number = int(text)
    except ValueError:
        raise ExplorerError(
            f"{what.capitalize()} {value!r} is not valid: give a number from 0 to {count - 1} "
            f"or {' / '.join(words)}."
        ) from None
    if not 0 <= number < count:
        raise ExplorerError(f"{what.capitalize()} {number} is out of range: this model has {count} {what}s (0 to {count - 1}).")
    return number


def full_attention(inspection: PairInspection, layer: LayerChoice, head: HeadChoice) -> np.ndarray:
    """The (seq, seq) attention for a layer (or the mean over layers) and head (or mean/max over heads)."""
    layer, head = check_layer_head(inspection, layer, head)
    per_layer = inspection.attentions.mean(axis=0) if layer == "mean" else inspection.attentions[layer]
    if head == "mean":
        return per_layer.mean(axis=0)
    if head == "max":
        return per_layer.max(axis=0)
    return per_layer[head]


def _segment_positions(inspection: PairInspection, segment: int, include_special: bool) -> list[int]:
    if not include_special:
        return inspection.query_index if segment == 0 else inspection.doc_index
    return [i for i, s in enumerate(inspection.segment) if s == segment]


def word_groups(inspection: PairInspection, positions: list[int], text: str) -> tuple[list[list[int]], list[str]]:
    """Group token positions into words: WordPieces of one word together, specials alone.

    Returns the groups (lists of indices into `positions`) and each word's text as typed.
    """
    groups: list[list[int]] = []
    labels: list[str] = []
    last_word = None
    for k, position in enumerate(positions):
        word = inspection.word_ids[position]
        if word is not None and word == last_word:
            groups[-1].append(k)
            start = inspection.word_spans[positions[groups[-1][0]]][0]
            labels[-1] = text[start : inspection.word_spans[position][1]]
        else:
            groups.append([k])
            span = inspection.word_spans[position]
            labels.append(inspection.tokens[position] if span is None else text[span[0] : span[1]])
        last_word = word
    return groups, labels


def merge_to_words(values: np.ndarray, row_groups: list[list[int]], col_groups: list[list[int]]) -> np.ndarray:
    """Word-level matrix: sum over the attended pieces (columns), mean over the attending pieces (rows).

    Summing columns keeps "how much of this row's attention went to the word"; averaging rows
    keeps each row a distribution, so rows of the full matrix still sum to 1 after merging.
    """
    summed = np.stack([values[:, group].sum(axis=1) for group in col_groups], axis=1)
    return np.stack([summed[group].mean(axis=0) for group in row_groups], axis=0)


def cross_attention_matrix(
    inspection: PairInspection,
    layer: LayerChoice = "mean",
    head: HeadChoice = "mean",
    direction: Direction = "query_to_doc",
    include_special: bool = False,
    word_level: bool = False,
    renormalize: bool = False,
) -> AttentionBlock:
    """The query-to-document (or document-to-query) block of the model's full self-attention."""
    if direction not in ("query_to_doc", "doc_to_query"):
        raise ExplorerError(f"Direction {direction!r} is not valid: use query_to_doc or doc_to_query.")
    layer, head = check_layer_head(inspection, layer, head)
    full = full_attention(inspection, layer, head)
    query_positions = _segment_positions(inspection, 0, include_special)
    doc_positions = _segment_positions(inspection, 1, include_special)
    rows, cols = (query_positions, doc_positions) if direction == "query_to_doc" else (doc_positions, query_positions)
    if not rows or not cols:
        raise ExplorerError("The query or the document has no tokens left to show.")
    values = full[np.ix_(rows, cols)].astype(np.float32)
    row_labels = [inspection.display_token(i) for i in rows]
    col_labels = [inspection.display_token(i) for i in cols]
    if word_level:
        texts = {0: inspection.query, 1: inspection.document}
        row_text = texts[0] if direction == "query_to_doc" else texts[1]
        col_text = texts[1] if direction == "query_to_doc" else texts[0]
        row_groups, row_labels = word_groups(inspection, rows, row_text)
        col_groups, col_labels = word_groups(inspection, cols, col_text)
        values = merge_to_words(values, row_groups, col_groups)
    if renormalize:
        totals = values.sum(axis=1, keepdims=True)
        values = values / np.where(totals > 0, totals, 1.0)
    return AttentionBlock(row_labels, col_labels, values, layer, head, direction, word_level, renormalize, include_special)


def inspection_to_dict(inspection: PairInspection, layer, head, attribution=None) -> dict:
    """The JSON the command line prints (`python -m explorer inspect --json`)."""
    layer, head = check_layer_head(inspection, layer, head)
    block = cross_attention_matrix(inspection, layer, head, "query_to_doc")
    return {
        "query": inspection.query,
        "document": inspection.document,
        "model": inspection.model_name,
        "tokens": inspection.tokens,
        "query_index": inspection.query_index,
        "doc_index": inspection.doc_index,
        "layer": layer,
        "head": head,
        "cross_attention": block.values.tolist(),
        "cross_attention_unit": block.unit,
        "score": inspection.score,
        "score_unit": "logit",
        "probability": inspection.probability,
        "probability_unit": inspection.probability_name,
        "truncated": inspection.truncated,
        "attribution": [] if attribution is None else attribution.to_list(),
        "attribution_unit": "logit change when the word is removed (occluded minus full)",
        "note": ATTENTION_NOTE,
    }


def format_inspection(inspection: PairInspection, layer, head, attribution) -> str:
    """What the command line prints without --json: score, top attended words, attribution."""
    block = cross_attention_matrix(inspection, layer, head, "query_to_doc", word_level=True)
    lines = [
        f"Model: {inspection.model_name}",
        f"Score: {inspection.score:.3f} logit ({inspection.probability_name} {inspection.probability:.3f})",
    ]
    if inspection.truncated:
        lines.append("Note: the pair was cut to the model's maximum length.")
    lines.append(f"\nQuery-to-document attention, layer {layer}, head {head}, words (rows: query, columns: top 5 document words):")
    for label, row in zip(block.row_labels, block.values):
        top = np.argsort(-row)[:5]
        lines.append(f"  {label:>16}: " + ", ".join(f"{block.col_labels[j]} {row[j]:.3f}" for j in top))
    lines.append("\nOcclusion attribution (logit change when the word is removed; negative = the word helped):")
    lines.extend(f"  {item.delta:+8.3f}  {item.word}" for item in sorted(attribution.words, key=lambda w: w.delta))
    lines.append(f"\n{ATTENTION_NOTE}")
    return "\n".join(lines)


def inspected_pair(query: str, document: str, cross_encoder: str) -> tuple[CrossEncoder, EncodedPair, PairInspection]:
    """The inspection model for `cross_encoder`, the pair tokenized once, and its attention (`inspect_pair`),
    kept for the last few pairs (caches.INSPECTED_PAIRS) so redrawing a view runs no model.

    Raises ExplorerError for a pair that cannot be encoded or a model that cannot be loaded.
    """
    key = (query, document, cross_encoder)
    if (kept := caches.INSPECTED_PAIRS.get(key)) is not None:
        return kept
    scorer = inspection_model(cross_encoder)
    pair = encode_pair(scorer, query, document)
    found = (scorer, pair, inspect_pair(scorer, pair))
    caches.INSPECTED_PAIRS.put(key, found)
    return found
