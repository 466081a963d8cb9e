"""Padding-free ("packed") forward pass for BERT encoders: the bf16 and int8 fast paths' engine.

A padded batch spends arithmetic on [PAD] positions and needs an attention mask. Here the
tokens of many sequences are stacked into one (tokens, hidden) matrix instead, so each
linear layer is one large GEMM with no padding, and attention runs sequence by sequence
with no mask at all. More savings, all exact in real arithmetic:

- the query, key and value projections are a single GEMM on the three stacked weights,
  with the attention scale 1/sqrt(head size) folded into the query weights in fp32;
- a cross-encoder reads only the [CLS] vector, so its last layer computes the attention
  output and feed-forward block for that one token per sequence (keys and values still
  come from every token);
- each linear layer is one oneDNN primitive (the op torch's own compiler emits on CPU)
  with its weight packed once into oneDNN's layout, and the GELU done in the GEMM's
  epilogue instead of another pass over memory (a separate bf16 GELU cost about 6% of a
  re-ranking on the 2-core machine).

Only the linear layers run in the compute dtype (bf16: rounded inputs and weights, fp32
accumulation). The residual stream, LayerNorms, embeddings, pooler and classifier stay
fp32, as under autocast: against an all-bf16 forward that halved the mean difference from
fp32 logits for about 3% more time, and keeps near-tied passages in fp32's order.
Attention is fp32 too: its per-sequence products are small, fp32 ran as fast as bf16 there,
and fp32 products do not leave a compiled oneDNN kernel behind for every sequence length.

The int8 engine (dtype torch.int8) is the same pass with every linear layer replaced by
`int8.Int8Linear` (int8 weights, activations quantised per token at run time); the rest is
fp32 exactly as here.

Only plain `BertModel` / `BertForSequenceClassification` encoders are packed (the offline
models and most of the MS MARCO family); anything else runs its own padded forward. The
fp32 module is left untouched and its fp32 parts are used as they are; only the linear
weights are copied, once, into the compute dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F

from explorer.engine.int8 import Int8Linear, Int8Weight, quantize_per_channel

# Tokens per packed chunk. On the 2-core AVX-512 EPYC, int8 re-ranking ran 3-4% faster at 4,096 than at
# 2,048 (1,024: 6% slower, 512: 17%, 16,384: 30%), bf16 the same at both; a chunk's int8 feed-forward
# activations (4,096 x 1,536 fp32) are 25 MB.
TOKENS_PER_CHUNK = 4096
# oneDNN compiles and keeps a kernel for every distinct row count a linear layer sees, and
# each costs memory: a server fed varied texts grew by megabytes per request. Chunks are
# padded with zero rows to a multiple of this (small ones to a power of two), which bounds
# the distinct counts to a few dozen.
ROW_BUCKET = 64


def _padded_row_count(rows: int) -> int:
    """A multiple of ROW_BUCKET, or for fewer rows (a lone query) the next power of two."""
    if rows <= ROW_BUCKET:
        return 1 << (rows - 1).bit_length()
    return -(-rows // ROW_BUCKET) * ROW_BUCKET


def _pad_rows(x: torch.Tensor) -> torch.Tensor:
    """`x` with zero rows appended up to `_padded_row_count` rows."""
    missing = _padded_row_count(x.shape[0]) - x.shape[0]
    return F.pad(x, (0, 0, 0, missing)) if missing else x


def _encoder_of(module: torch.nn.Module):
    from transformers import BertModel

    base = module if isinstance(module, BertModel) else getattr(module, "bert", None)
    return base if isinstance(base, BertModel) else None


def supports(module: torch.nn.Module) -> bool:
    """Whether `module` is a plain BERT encoder (or a BERT sequence classifier) we can pack."""
    base = _encoder_of(module)
    if base is None:
        return False
    config = base.config
    return not config.is_decoder and not getattr(config, "add_cross_attention", False)


def _has_onednn_linear() -> bool:
    ops = torch.ops.mkldnn
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(ops, "_linear_pointwise")
        and hasattr(ops, "_reorder_linear_weight")
    )


def _onednn_takes(dtype: torch.dtype) -> bool:
    """oneDNN's bf16 linear needs AVX-512 (BW/VL/DQ) or AVX-NE-CONVERT; on a plain AVX2 CPU
    it raises, so bf16 there runs the same sums in plain torch (slow, but what was asked)."""
    return dtype != torch.bfloat16 or torch.cpu._is_avx512_supported()


class _Linear:
    """x W^T + b, optionally followed by exact GELU, in the compute dtype: one oneDNN primitive
    where this torch build has the fused linear, otherwise the same sums in plain torch."""

    def __init__(self, linear: torch.nn.Linear | tuple[torch.Tensor, torch.Tensor], dtype: torch.dtype, gelu: bool = False):
        weight, bias = (linear.weight, linear.bias) if isinstance(linear, torch.nn.Linear) else linear
        self.dtype, self.gelu, self.fused = dtype, gelu, _has_onednn_linear() and _onednn_takes(dtype)
        weight, self.bias = weight.detach().to(dtype), bias.detach().to(dtype)
        # The row count given to the reorder is only a hint for oneDNN's layout; any count works.
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, TOKENS_PER_CHUNK) if self.fused else weight

    def __call__(self, x: torch.Tensor, scratch: bool = False) -> torch.Tensor:
        """(rows, out) in the compute dtype; `scratch` (the caller will not read `x` again) is for the
        int8 layer's sake and changes nothing here."""
        x = x.to(self.dtype)
        if self.fused:
            activation = "gelu" if self.gelu else "none"
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, activation, [], "none")
        out = F.linear(x, self.weight, self.bias)
        return F.gelu(out) if self.gelu else out


class _Layer:
    """One BertLayer: its linear weights in the compute dtype (or int8), its own fp32 LayerNorms.

    `int8_weight` gives a Linear's int8 weight; given, every linear layer runs `int8.Int8Linear`."""

    def __init__(self, layer: torch.nn.Module, dtype: torch.dtype,
                 int8_weight: Callable[[torch.nn.Linear], Int8Weight] | None = None):
        attention = layer.attention.self
        intermediate = layer.intermediate
        exact_gelu = type(intermediate.intermediate_act_fn).__name__ == "GELUActivation"
        with torch.no_grad():
            # Scaling the query projection scales q, hence q k^T: the softmax needs no multiply.
            bias = torch.cat([attention.query.bias * attention.scaling, attention.key.bias, attention.value.bias])
            if int8_weight is None:
                weight = torch.cat([attention.query.weight * attention.scaling, attention.key.weight,
                                    attention.value.weight])
                self.qkv = _Linear((weight, bias), dtype)
            else:  # int8: the scaling goes into the query rows' fp32 scales; the int8 values stay as shipped
                query = int8_weight(attention.query)
                query = Int8Weight(query.values, query.scale * attention.scaling)
                self.qkv = Int8Linear(Int8Weight.concatenated(
                    [query, int8_weight(attention.key), int8_weight(attention.value)]), bias)
        if int8_weight is None:
            self.attention_output = _Linear(layer.attention.output.dense, dtype)
            self.intermediate = _Linear(intermediate.dense, dtype, gelu=exact_gelu)
            self.output = _Linear(layer.output.dense, dtype)
        else:
            self.attention_output = Int8Linear(int8_weight(layer.attention.output.dense), layer.attention.output.dense.bias)
            self.intermediate = Int8Linear(int8_weight(intermediate.dense), intermediate.dense.bias, gelu=exact_gelu)
            self.output = Int8Linear(int8_weight(layer.output.dense), layer.output.dense.bias)
        self.attention_norm = layer.attention.output.LayerNorm
        # Any other activation runs as the module's own function after the GEMM.
        self.other_activation = None if exact_gelu else intermediate.intermediate_act_fn
        self.output_norm = layer.output.LayerNorm

    def feed_forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """BertIntermediate and BertOutput (dropout is off in eval); `hidden` is fp32."""
        inner = self.intermediate(hidden)
        if self.other_activation is not None:
            inner = self.other_activation(inner)
        # `inner` and the output are this pass's own scratch: the int8 layer may quantise `inner` in place,
        # and the residual is added in place (int8: the layer's fresh fp32 output; bf16: .float()'s copy).
        return self.output_norm(self.output(inner, scratch=True).float().add_(hidden))


class _Chunk:
    """Where each sequence of a packed chunk lives: its first row and its length."""

    def __init__(self, lengths: list[int]):
        self.lengths = lengths
        self.starts = [0]
        for length in lengths[:-1]:
            self.starts.append(self.starts[-1] + length)
        self.tokens = sum(lengths)


class PackedBert:
    """A BERT module's weights, run over packed sequences (see the module docstring).

    dtype: the linear layers' compute dtype (torch.bfloat16 or torch.float32), or torch.int8 for the
    int8 engine (`engine/int8.py`), whose weights are `int8_weights[name]` for each Linear named in it
    (names as in `module.named_modules()`) and the others quantised per output channel here.
    Raises ValueError for a module that is not a plain BERT encoder.
    """

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype = torch.bfloat16,
                 int8_weights: Mapping[str, Int8Weight] | None = None):
        if not supports(module):
            raise ValueError(f"{type(module).__name__} is not a plain BERT encoder")
        self.module = module
        self.dtype = dtype
        encoder = _encoder_of(module)
        self.embeddings, self.pooler = encoder.embeddings, encoder.pooler
        attention = encoder.encoder.layer[0].attention.self
        self.heads, self.head_size = attention.num_attention_heads, attention.attention_head_size
        int8_weight = None
        self.shipped_int8 = bool(int8_weights)  # int8 engine: True where every weight came as shipped int8
        self.int8_weights: dict[str, Int8Weight] = {}  # the int8 weights it runs, by module name
        if dtype == torch.int8:
            names = {id(m): name for name, m in module.named_modules()}
            given = int8_weights or {}

            def weight_of(linear: torch.nn.Linear) -> Int8Weight:
                """The shipped int8 weight of `linear`, else its weight quantised here; recorded by name."""
                name = names[id(linear)]
                weight = given[name] if name in given else quantize_per_channel(linear.weight)
                self.int8_weights[name] = weight
                return weight

            int8_weight = weight_of

        self.layers = [_Layer(layer, dtype, int8_weight) for layer in encoder.encoder.layer]

    def _embed(self, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None):
        ids = torch.tensor([token for row in input_ids for token in row], dtype=torch.long)
        positions = torch.cat([torch.arange(len(row)) for row in input_ids])
        if token_type_ids is None:
            types = torch.zeros_like(ids)
        else:
            types = torch.tensor([t for row in token_type_ids for t in row], dtype=torch.long)
        # The same additions in the same order as BertEmbeddings.forward, on its own fp32 tables.
        embeddings = self.embeddings
        hidden = embeddings.word_embeddings(ids) + embeddings.token_type_embeddings(types)
        return embeddings.LayerNorm(hidden + embeddings.position_embeddings(positions))

    def _attend(self, qkv: torch.Tensor, chunk: _Chunk, first_tokens: bool = False) -> torch.Tensor:
        """softmax(q k^T) v per sequence (q already scaled), for packed (rows, 3 * hidden) projections; returns
        (rows, hidden) fp32 in the same token-major rows (padding rows zero), or with `first_tokens` the
        output for each sequence's first token only, (sequences, hidden) (a cross-encoder's last layer).

        Each sequence's query, key and value heads are strided views of its rows, which the batched matrix
        products read in place; gathering them into contiguous per-sequence blocks first (and the context
        back after) cost 2% more on the AVX-512 EPYC. Sequence by sequence, with no mask: a padded batch with
        a key mask was slower even for chunk-mates of near-equal length (docs/benchmarks.md)."""
        projections = qkv.float().view(-1, 3, self.heads, self.head_size)
        context = torch.empty(len(chunk.lengths) if first_tokens else projections.shape[0], self.heads, self.head_size)
        if not first_tokens:
            context[chunk.tokens :] = 0
        for number, (start, length) in enumerate(zip(chunk.starts, chunk.lengths)):
            sequence = projections[start : start + length]  # (length, 3, heads, head_size)
            queries = sequence[: 1 if first_tokens else length, 0].transpose(0, 1)  # (heads, queries, head_size)
            keys_transposed = sequence[:, 1].permute(1, 2, 0)  # (heads, head_size, length)
            values = sequence[:, 2].transpose(0, 1)
            probabilities = torch.bmm(queries, keys_transposed).softmax(dim=-1)
            rows = context[number : number + 1] if first_tokens else context[start : start + length]
            rows.transpose(0, 1).copy_(torch.bmm(probabilities, values))
        return context.view(context.shape[0], -1)

    def hidden_states(
        self,
        input_ids: Sequence[Sequence[int]],
        token_type_ids: Sequence[Sequence[int]] | None = None,
        cls_only: bool = False,
    ) -> torch.Tensor:
        """fp32 last-layer states: (total tokens, hidden) packed in input order, or
        (sequences, hidden) for the first token of each sequence when `cls_only`."""
        chunk = _Chunk([len(row) for row in input_ids])
        hidden = _pad_rows(self._embed(input_ids, token_type_ids))
        for number, layer in enumerate(self.layers):
            qkv = layer.qkv(hidden)
            if cls_only and number == len(self.layers) - 1:
                context = _pad_rows(self._attend(qkv, chunk, first_tokens=True))
                hidden = _pad_rows(hidden[chunk.starts])
            else:
                context = self._attend(qkv, chunk)
            # BertSelfOutput (dropout is off in eval), then the feed-forward block.
            hidden = layer.attention_norm(layer.attention_output(context, scratch=True).float().add_(hidden))
            hidden = layer.feed_forward(hidden)
        return hidden[: len(input_ids) if cls_only else chunk.tokens]

    def classify(
        self, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None = None
    ) -> torch.Tensor:
        """(sequences, num_labels) fp32 logits of a sequence classifier: its own fp32 pooler and
        head on the [CLS] states."""
        cls_states = self.hidden_states(input_ids, token_type_ids, cls_only=True)
        return self.module.classifier(self.pooler(cls_states[:, None, :]))


def packed_chunks(
    lengths: Sequence[int],
    tokens_per_chunk: int = TOKENS_PER_CHUNK,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[list[int]]:
    """Consecutive item indices, each list holding about `tokens_per_chunk` tokens (at least one item);
    `progress(done, total)` after each."""
    chunk: list[int] = []
    tokens = done = 0
    for index, length in enumerate(lengths):
        if chunk and tokens + length > tokens_per_chunk:
            yield chunk
            done += len(chunk)
            if progress:
                progress(done, len(lengths))
            chunk, tokens = [], 0
        chunk.append(index)
        tokens += length
    if chunk:
        yield chunk
        if progress:
            progress(len(lengths), len(lengths))


def packed_inputs(
    encoded: Mapping[str, Sequence[Sequence[int]]], progress: Callable[[int, int], None] | None = None
) -> Iterator[tuple[list[int], list[Sequence[int]], list[Sequence[int]] | None]]:
    """Per chunk of a tokenizer's output: (item indices, their input ids, their token type ids or None)."""
    ids, types = encoded["input_ids"], encoded.get("token_type_ids")
    for chunk in packed_chunks([len(row) for row in ids], progress=progress):
        yield chunk, [ids[i] for i in chunk], None if types is None else [types[i] for i in chunk]
