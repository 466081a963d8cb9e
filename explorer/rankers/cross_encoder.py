"""Cross-encoder re-ranking: query and document go through one transformer together.

What a model's outputs mean comes from sentence-transformers' `CrossEncoder` (its
`activation_fn`, `num_labels`, the labels' names in the config's id2label, its maximum length
and prompt). The score that ranks is one logit per pair:

* one output (the MS MARCO family): that logit; the probability column is the model's own
  activation of it (sigmoid by default: "sigmoid(logit)"; Identity: "raw score");
* several outputs (pair classifiers, NLI): the chosen label's logit in the log-odds sense,
  log(p / (1 - p)) with p its softmax probability, so ranking by it is ranking by p, and
  sigmoid of it is p. For two labels that is l1 - l0. Every label's softmax probability
  is kept (`PairScores.label_probabilities`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from explorer.engine.loading import load_model
from explorer.engine.model import LoadedModel
from explorer.engine.packed_bert import packed_inputs
from explorer.engine.precision import Precision
from explorer.errors import ExplorerError
from explorer.rankers.base import PairScorer, PairScores, ProgressCallback, RankerInfo

# Pairs per padded forward pass. bf16 batches of 8 ran fastest on the 2-core AVX-512
# machine (after length sorting, smaller batches waste less padding); fp32 keeps the size
# its exact results were recorded with. BERT rerankers in bf16 and int8 are packed instead (no
# padding); int8 runs on the packed engine only, so its batch size is never used.
BATCH_SIZE = {"fp32": 16, "bf16": 8, "int8": 8}
# Pairs handed to `CrossEncoder.predict` per call, so progress can be reported between calls.
PREDICT_CHUNK = 256


def relevance_logits(raw, label: int | None = None):
    """One logit per row of a model's raw output (numpy or torch, (rows, outputs)).

    One output: that logit. Several: the log-odds of `label` (default: 1 for two outputs,
    else 0), log softmax_k - log(1 - softmax_k), computed stably as
    l_k - logsumexp(l_j, j != k); for two outputs exactly l1 - l0.
    """
    outputs = raw.shape[-1]
    if outputs == 1:
        return raw[..., 0]
    k = (1 if outputs == 2 else 0) if label is None else label
    if outputs == 2:
        return raw[..., k] - raw[..., 1 - k]
    tensor = raw if torch.is_tensor(raw) else torch.from_numpy(np.asarray(raw, dtype=np.float64))
    others = torch.cat([tensor[..., :k], tensor[..., k + 1:]], dim=-1)
    logit = tensor[..., k] - torch.logsumexp(others, dim=-1)
    return logit if torch.is_tensor(raw) else logit.numpy().astype(np.asarray(raw).dtype)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Elementwise logistic 1 / (1 + exp(-logit)), same shape as `logits`: the probability a relevance cross-
    encoder's logit stands for."""
    return 1.0 / (1.0 + np.exp(-logits))


def default_label(labels: Sequence[str]) -> int:
    """The output that ranks unless a label is chosen: the only one; else a label named like
    relevance or entailment; else 1 of two (the MS MARCO two-class convention), 0 of more."""
    if len(labels) == 1:
        return 0
    for wanted in ("relevant", "entailment", "positive", "yes", "true", "match"):
        for number, name in enumerate(labels):
            if name.strip().lower() == wanted:
                return number
    return 1 if len(labels) == 2 else 0


def activation_name(activation) -> str:
    """The probability column's name for a one-output model's activation."""
    kind = type(activation).__name__
    if kind == "Sigmoid":
        return "sigmoid(logit)"
    if kind == "Identity":
        return "raw score"
    return f"{kind.lower()}(logit)"


@dataclass
class CrossExplanation:
    """A cross-encoder's score of one pair and where its length limit cuts the document."""

    score: float  # the logit (the ranking label's), at the bound precision
    probability: float | None
    score_name: str
    max_length: int  # tokens of the pair the model reads
    document_tokens: int  # the document's tokens (no special tokens)
    tokens_read: int  # of those, the ones inside the pair's max_length
    cut_char: int | None  # character offset where the model stops reading; None: it reads all
    cut_token: str | None  # the first document token it does not read

    @property
    def cut(self) -> bool:
        """Whether part of the document is never read."""
        return self.cut_char is not None

    def to_dict(self) -> dict:
        """Every field, JSON-ready."""
        return asdict(self) | {"cut": self.cut}


class CrossEncoder(PairScorer):
    """A cross-encoder bound to one precision, engine and ranking label; never asks for attention weights.

    bf16 and int8 on a plain BERT reranker run packed, padding-free chunks (`packed_bert`), which
    reproduce sentence-transformers' forward; everything else runs sentence-transformers'
    own `CrossEncoder.predict` (raw logits, Identity activation) on its own length-sorted
    batches. fp32 is exactly `CrossEncoder.predict`. int8 exists on the packed engine only.
    """

    def __init__(self, model: LoadedModel, precision: Precision = "auto", batch_size: int | None = None,
                 label: int | str | None = None):
        self.model = model
        self.engine = model.bind(precision)
        self.precision = self.engine.precision
        self.batch_size = batch_size or BATCH_SIZE[self.precision]
        self.label = self.resolve_label(model, label)
        self.info = RankerInfo(model.id, model.name, "cross", self.score_name, self.precision,
                               engine=self.engine.name, probability_name=self.probability_name,
                               prompts=model.prompts_text(), precision_note=self.engine.note)

    @staticmethod
    def resolve_label(model: LoadedModel, label: int | str | None) -> int:
        """The output number of `label` (a name from id2label, or a number); ExplorerError if none."""
        labels = model.labels
        if label is None or (isinstance(label, str) and not label.strip()):
            return default_label(labels)
        text = str(label).strip()
        if text in labels:
            return labels.index(text)
        lowered = [name.lower() for name in labels]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        if text.isdigit() and int(text) < len(labels):
            return int(text)
        raise ExplorerError(f"{model.name} has no label {text!r}; its labels are: {', '.join(labels)}.")

    @property
    def label_name(self) -> str:
        """The name of the output label whose logit is the score (from the model config's id2label)."""
        return self.model.labels[self.label]

    @property
    def score_name(self) -> str:
        """"logit", or for a classifier "logit of 'entailment'" (the log-odds of that label)."""
        return "logit" if self.model.num_labels == 1 else f"logit of {self.label_name!r}"

    @property
    def probability_name(self) -> str:
        """What the probability column holds: the activation's name, or the chosen label's softmax."""
        if self.model.num_labels == 1:
            return activation_name(self.model.activation)
        return f"softmax P({self.label_name})"

    @property
    def tokenizer(self):
        """The loaded model's Hugging Face tokenizer (the one sentence-transformers uses for the pair)."""
        return self.model.tokenizer

    @property
    def max_length(self) -> int:  # sentence-transformers' max_seq_length (tokenizer and position table)
        """Most tokens of one (query, document) pair the model reads; longer pairs are cut."""
        return self.model.max_length

    def raw_outputs(self, queries: Sequence[str], documents: Sequence[str],
                    progress: ProgressCallback | None = None) -> tuple[np.ndarray, int]:
        """(pairs, outputs) float32 raw logits as `CrossEncoder.predict(..., activation_fn=Identity())`
        gives them, and how many pairs were cut to the maximum length."""
        model = self.model
        prompt = model.prompt("query")
        prompted = [prompt + q for q in queries] if prompt else list(queries)
        encoded = model.tokenizer(prompted, list(documents), truncation=True, max_length=model.max_length)
        truncated = sum(len(ids) >= model.max_length for ids in encoded["input_ids"])
        raw = np.empty((len(documents), model.num_labels), dtype=np.float32)
        with torch.inference_mode():
            if self.engine.packed is not None:
                for chunk, chunk_ids, chunk_types in packed_inputs(encoded, progress):
                    raw[chunk] = self.engine.packed.classify(chunk_ids, chunk_types).numpy()
            else:
                library, pairs = self.engine.library, list(zip(queries, documents))
                for start in range(0, len(pairs), PREDICT_CHUNK):
                    piece = library.predict(pairs[start:start + PREDICT_CHUNK], batch_size=self.batch_size,
                                            activation_fn=torch.nn.Identity(), convert_to_tensor=True,
                                            show_progress_bar=False)
                    raw[start:start + len(piece)] = piece.float().reshape(len(piece), -1).numpy()
                    if progress:
                        progress(min(start + PREDICT_CHUNK, len(pairs)), len(pairs))
        return raw, truncated

    def explain(self, query: str, document: str) -> CrossExplanation:
        """The logit of the pair and where the `max_length` cut falls in the document (from the tokenizer's
        offsets of the document alone: the pair keeps its first max_length - query tokens - specials)."""
        scored = self.score_query(query, [document])
        return cross_explanation(self, query, document, float(scored.scores[0]),
                                 None if scored.probabilities is None else float(scored.probabilities[0]))

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The probability column for these scores: the model's activation of a one-output logit,
        or sigmoid of the chosen label's log-odds (= its softmax probability)."""
        if self.model.num_labels == 1:
            with torch.inference_mode():
                return self.model.activation(torch.from_numpy(np.asarray(logits, dtype=np.float32))).numpy()
        return sigmoid(np.asarray(logits, dtype=np.float64)).astype(np.float32)

    def score(self, queries: Sequence[str], documents: Sequence[str],
              progress: ProgressCallback | None = None) -> PairScores:
        """Each (query, document) pair's relevance logit (the ranking label's), shape (pairs,), float32, with
        the model's own activation of it as `probabilities`, and, for a classifier, the softmax over its
        labels; pairs longer than the model's limit are cut (document side only) and counted."""
        if (empty := self.no_pairs(queries, documents)) is not None:
            return empty
        raw, truncated = self.raw_outputs(queries, documents, progress)
        logits = relevance_logits(raw, self.label).astype(np.float32)
        label_probabilities = None
        if self.model.num_labels > 1:
            label_probabilities = torch.softmax(torch.from_numpy(raw), dim=-1).numpy()
        labels = self.model.labels if label_probabilities is not None else None
        return PairScores(logits, self.probabilities(logits).astype(np.float32), truncated,
                          label_probabilities=label_probabilities, labels=labels)


def cross_explanation(scorer: PairScorer, query: str, document: str, score: float,
                      probability: float | None) -> CrossExplanation:
    """The cut of one pair for a scorer's tokenizer and length: the document keeps max_length less the
    (prompted) query's tokens and the pair's special tokens; the rest is never read."""
    tokenizer = scorer.tokenizer
    prompt = scorer.model.prompt("query") if hasattr(scorer, "model") else ""
    query_ids = tokenizer(prompt + query, add_special_tokens=False)["input_ids"]
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    encoded = tokenizer(document, add_special_tokens=False, return_offsets_mapping=True)
    total = len(encoded["input_ids"])
    room = max(0, scorer.max_length - len(query_ids) - specials)
    read = min(total, room)
    cut_char = cut_token = None
    if read < total:
        cut_char = int(encoded["offset_mapping"][read - 1][1]) if read else 0
        cut_token = tokenizer.convert_ids_to_tokens(encoded["input_ids"][read])
    return CrossExplanation(score, probability, scorer.info.score_name, scorer.max_length, total, read, cut_char,
                            cut_token)


def load_cross_encoder(model_id: str, precision: Precision = "auto", allow_local_path: bool = False,
                       label: int | str | None = None) -> CrossEncoder:
    """A cross-encoder by model id, bound to a precision and the label that ranks (the model's
    weights load once per process)."""
    return CrossEncoder(load_model(model_id, "cross", allow_local_path=allow_local_path), precision, label=label)
