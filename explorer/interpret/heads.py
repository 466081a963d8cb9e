"""Which heads and blocks of the cross-encoder matter for one pair: ablation and patching.

Attention weights say where a head looked; these say what its output did to the logit.

* **Head importance** (`head_importance`): for every layer and head, the pair is scored again
  with that head's output removed, and the change in the logit is kept. "Removed" is one of
  two named modes: *zero* (the head's 32-wide slice of the attention context, the input of
  `attention.output.dense`, set to 0) or *mean* (set, at every token, to that slice's mean over
  the pair's tokens in the unedited run, [CLS] and [SEP] included). Per layer, the whole
  attention block and the whole feed-forward block are removed the same way: the output of
  their last Linear (bias included) is zeroed or meaned, so only the residual and LayerNorm
  remain.
* **Patching** (`head_patching`): for two documents A and B with the same query, B is run with
  one head's (or one layer's) context taken from A's run at the query positions, which hold
  the same tokens in both pairs. The logit's move from B's, divided by the gap A - B, is the
  share of the gap that head carries.

Every edited copy of the pair is one row of a batched forward pass through the bound model
(the same module its scorer re-ranks with, fp32 unless bound otherwise), edited by forward
hooks that act only for the calling thread's context: another request scoring with the same
shared module at the same time is untouched. One unedited copy rides in the first batch;
its distance to the plain forward's logit (`batch_rounding`) is the float floor under every
change shown.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch

from explorer.budgets import MAX_HEAD_BATCH_TOKENS, check_head_passes
from explorer.errors import ExplorerError
from explorer.interpret.pair import EncodedPair
from explorer.rankers.base import ProgressCallback
from explorer.rankers.cross_encoder import CrossEncoder, relevance_logits

AblationMode = Literal["zero", "mean"]
Site = Literal["heads", "attention", "ffn"]
PatchPositions = Literal["query", "query_segment"]
MODES: dict[str, str] = {
    "zero": "zero-ablation: the head's output set to 0",
    "mean": "mean-ablation: the head's output set to its mean over the pair's tokens",
}
POSITIONS: dict[str, str] = {
    "query": "the query's tokens",
    "query_segment": "[CLS], the query's tokens and the [SEP] after them",
}
# A gap smaller than this (logits) has no meaningful shares: B already scores like A.
MIN_GAP = 1e-3
# The full-patch bound, said wherever patching results are shown (and asserted in the tests).
FULL_PATCH_NOTE = (
    "The logit is read from the last layer's [CLS] state, and the only way other tokens reach [CLS] is "
    "the attention context at [CLS]. So patching every head of every layer at [CLS], the query and its "
    "[SEP] ('query_segment') gives B exactly A's logit, up to float rounding. Patching at the query's "
    "tokens only ('query') makes B's query-token states equal A's in every layer, but [CLS] and the "
    "document's tokens still read B's document: the logit is not A's in general (it may fall short or "
    "overshoot), and 'every head of every layer' shows where it lands."
)


@dataclass(frozen=True)
class Edit:
    """One change to one copy of the pair: a set of heads of a layer, or a whole block of it."""

    layer: int
    site: Site = "heads"
    heads: tuple[int, ...] = ()  # 0-based; only for site "heads"


Row = tuple[Edit, ...]  # every edit applied to one copy (an empty row is the unedited pair)


def _encoder_layers(module: torch.nn.Module):
    """The transformer layers of a BERT-style classifier, whose blocks the hooks edit."""
    base = getattr(module, getattr(module, "base_model_prefix", ""), None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None or not all(
        hasattr(getattr(getattr(layer, "attention", None), "output", None), "dense") and hasattr(layer, "output")
        for layer in layers
    ):
        raise ExplorerError(
            f"Head importance covers BERT-style encoders (encoder.layer[i].attention.output.dense); "
            f"{type(module).__name__} is built differently."
        )
    return layers


# ---- hooks: installed once per module, acting only while `_forward` has set a plan in this context ----

_plan: contextvars.ContextVar[_Plan | None] = contextvars.ContextVar("head_edit_plan", default=None)
_hook_lock = threading.Lock()
# Set on a module whose hooks are in: a deepcopy (the bf16 copy) carries both the flag and the hooks.
_HOOKED = "_explorer_head_edit_hooks"


@dataclass
class _Plan:
    """What the hooks do during one forward pass of the calling context.

    `replace[(layer, site)]` is (rows: (batch, 1, width) bool of the columns to replace per row,
    positions: (1, tokens, 1) bool, source: a tensor broadcastable to (batch, tokens, width)).
    `capture` collects each (layer, site)'s tensor of a single-copy pass.
    """

    replace: dict[tuple[int, Site], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    capture: dict[tuple[int, Site], torch.Tensor] | None = None

    def apply(self, layer: int, site: Site, tensor: torch.Tensor) -> torch.Tensor:
        if self.capture is not None:
            self.capture[(layer, site)] = tensor.detach().clone()
        edit = self.replace.get((layer, site))
        if edit is None:
            return tensor
        rows, positions, source = edit
        # torch.where keeps every untouched value bit for bit (x * 1 + 0 could still round).
        return torch.where(rows & positions, source.to(tensor.dtype), tensor)


def _install_hooks(module: torch.nn.Module) -> None:
    with _hook_lock:
        if getattr(module, _HOOKED, False):
            return
        for index, layer in enumerate(_encoder_layers(module)):
            def context_hook(_, args, index=index):
                plan = _plan.get()
                return None if plan is None else (plan.apply(index, "heads", args[0]), *args[1:])

            def block_hook(site):
                def hook(_, __, output, index=index):
                    plan = _plan.get()
                    return None if plan is None else plan.apply(index, site, output)
                return hook

            # The context layer (all heads side by side) is the input of attention.output.dense.
            layer.attention.output.dense.register_forward_pre_hook(context_hook)
            layer.attention.output.dense.register_forward_hook(block_hook("attention"))
            layer.output.dense.register_forward_hook(block_hook("ffn"))
        setattr(module, _HOOKED, True)


def _forward(module: torch.nn.Module, features: dict[str, torch.Tensor], copies: int, plan: _Plan,
             label: int | None) -> torch.Tensor:
    """Relevance logits (copies,) of `copies` copies of one pair, with the plan's edits; for a
    model with several labels, the ranking label's (`CrossEncoder.label`), as every other view."""
    batch = {name: value.expand(copies, -1) for name, value in features.items()}
    token = _plan.set(plan)
    try:
        with torch.inference_mode():
            return relevance_logits(module(**batch).logits.float(), label)
    finally:
        _plan.reset(token)


def _module_of(scorer: CrossEncoder) -> torch.nn.Module:
    module = scorer.model.module_for(scorer.precision)
    _install_hooks(module)
    return module


# ---- the batched engine ----

@dataclass
class _Reference:
    """One unedited single-copy pass: its logit and every site's tensor (batch 1)."""

    logit: float
    tensors: dict[tuple[int, Site], torch.Tensor]


def _reference(module: torch.nn.Module, features: dict[str, torch.Tensor], label: int | None) -> _Reference:
    plan = _Plan(capture={})
    logit = float(_forward(module, features, 1, plan, label)[0])
    return _Reference(logit, plan.capture)


def _column_mask(module: torch.nn.Module, edit: Edit, width: int) -> torch.Tensor:
    mask = torch.zeros(width, dtype=torch.bool)
    if edit.site != "heads":
        mask[:] = True
        return mask
    heads = module.config.num_attention_heads
    size = width // heads
    for head in edit.heads:
        mask[head * size:(head + 1) * size] = True
    return mask


def _run_rows(module, features, rows: Sequence[Row], sources: dict[tuple[int, Site], torch.Tensor],
              positions: torch.Tensor, label: int | None,
              progress: Callable[[int], None] | None = None) -> list[float]:
    """The logit of every row, in batches of at most MAX_HEAD_BATCH_TOKENS tokens.

    `sources[(layer, site)]` is what replaces the edited columns (broadcastable to
    (copies, tokens, width)); `positions` (tokens,) bool says at which tokens.
    """
    tokens = features["input_ids"].shape[1]
    per_pass = max(1, MAX_HEAD_BATCH_TOKENS // tokens)
    logits: list[float] = []
    if progress:
        progress(0)
    for start in range(0, len(rows), per_pass):
        chunk = rows[start:start + per_pass]
        plan = _Plan()
        for (layer, site), source in sources.items():
            width = source.shape[-1]
            mask = torch.zeros(len(chunk), 1, width, dtype=torch.bool)
            for i, row in enumerate(chunk):
                for edit in row:
                    if (edit.layer, edit.site) == (layer, site):
                        mask[i, 0] |= _column_mask(module, edit, width)
            if mask.any():
                plan.replace[(layer, site)] = (mask, positions.view(1, -1, 1), source)
        logits.extend(float(x) for x in _forward(module, features, len(chunk), plan, label))
        if progress:
            progress(len(logits))
    return logits


def _check_rows(module: torch.nn.Module, rows: Sequence[Row], sites: set[Site]) -> None:
    """A message for an edit of a layer, head or site the model (or the method) does not have."""
    layers, heads = len(_encoder_layers(module)), module.config.num_attention_heads
    for edit in (edit for row in rows for edit in row):
        if not 0 <= edit.layer < layers:
            raise ExplorerError(f"Layer {edit.layer} does not exist: the model has layers 0 to {layers - 1}.")
        if edit.site not in sites:
            raise ExplorerError(f"This method edits {', '.join(sorted(sites))}, not {edit.site!r}.")
        for head in edit.heads:
            if not 0 <= head < heads:
                raise ExplorerError(f"Head {head} does not exist: the model has heads 0 to {heads - 1}.")


def _ablation_sources(reference: _Reference, mode: AblationMode) -> dict[tuple[int, Site], torch.Tensor]:
    return {
        key: (torch.zeros_like(tensor[:, :1]) if mode == "zero" else tensor.mean(dim=1, keepdim=True))
        for key, tensor in reference.tensors.items()
    }


def ablated_logits(scorer: CrossEncoder, pair: EncodedPair, rows: Sequence[Row], mode: AblationMode = "zero",
                   progress: Callable[[int], None] | None = None) -> tuple[float, list[float]]:
    """The pair's plain logit and its logit under each row of edits (zero- or mean-ablation).

    Mean-ablation uses each site's mean over the pair's tokens in the unedited run. Raises
    ExplorerError for a layer or head the model lacks.
    """
    module = _module_of(scorer)
    _check_rows(module, rows, {"heads", "attention", "ffn"})
    if mode not in MODES:
        raise ExplorerError(f"Unknown ablation mode {mode!r}: use zero or mean.")
    reference = _reference(module, pair.features, scorer.label)
    sources = _ablation_sources(reference, mode)
    everywhere = torch.ones(pair.features["input_ids"].shape[1], dtype=torch.bool)
    return reference.logit, _run_rows(module, pair.features, rows, sources, everywhere, scorer.label, progress)


def patch_positions(pair_a: EncodedPair, pair_b: EncodedPair, positions: PatchPositions = "query") -> list[int]:
    """Token positions that hold the same token in both pairs: the query's tokens (by the
    tokenizer's sequence ids), and with "query_segment" also [CLS] and the [SEP] after the query."""
    if positions not in POSITIONS:
        raise ExplorerError(f"Unknown patch positions {positions!r}: use query or query_segment.")
    if pair_a.query != pair_b.query:
        raise ExplorerError("Patching needs the same query in both pairs.")
    chosen = [i for i, s in enumerate(pair_b.sequence_ids) if s == 0]
    if positions == "query_segment":
        chosen = [0, *chosen, chosen[-1] + 1 if chosen else 1]
    ids_a, ids_b = pair_a.features["input_ids"][0], pair_b.features["input_ids"][0]
    if any(i >= len(ids_a) or ids_a[i] != ids_b[i] for i in chosen):
        raise ExplorerError("The two pairs do not hold the same query tokens at the same positions.")
    return chosen


def patched_logits(scorer: CrossEncoder, pair_a: EncodedPair, pair_b: EncodedPair, rows: Sequence[Row],
                   positions: PatchPositions = "query", progress: Callable[[int], None] | None = None
                   ) -> tuple[float, float, list[float]]:
    """A's and B's plain logits, and B's logit under each row with the edited heads' context
    taken from A's run at `patch_positions` (only site "heads" can be patched)."""
    module = _module_of(scorer)
    _check_rows(module, rows, {"heads"})
    chosen = patch_positions(pair_a, pair_b, positions)
    reference_a, reference_b = _reference(module, pair_a.features, scorer.label), _reference(module, pair_b.features, scorer.label)
    tokens_b = pair_b.features["input_ids"].shape[1]
    sources = {}
    for (layer, site), tensor in reference_a.tensors.items():
        if site == "heads":
            source = torch.zeros(1, tokens_b, tensor.shape[-1], dtype=tensor.dtype)
            source[0, chosen] = tensor[0, chosen]
            sources[(layer, site)] = source
    mask = torch.zeros(tokens_b, dtype=torch.bool)
    mask[chosen] = True
    return reference_a.logit, reference_b.logit, _run_rows(module, pair_b.features, rows, sources, mask, scorer.label,
                                                           progress)


# ---- the two results the page, the CLI and the JSON show ----

def _cell_list(values: list[float], layers: int, heads: int) -> list[list[float]]:
    return [values[layer * heads:(layer + 1) * heads] for layer in range(layers)]


def _top(grid: list[list[float]] | None, k: int, key) -> list[dict]:
    if grid is None:
        return []
    cells = [(layer, head, value) for layer, row in enumerate(grid) for head, value in enumerate(row)]
    cells.sort(key=lambda cell: key(cell[2]), reverse=True)
    return [{"layer": layer, "head": head, "change": value} for layer, head, value in cells[:k]]


def _progress_bridge(progress: ProgressCallback | None, total: int) -> Callable[[int], None] | None:
    return None if progress is None else (lambda done: progress(done, total))


@dataclass
class HeadImportance:
    """Logit changes of one pair when each head, attention block or feed-forward block is removed.

    Every change is (logit with the part removed) - (the pair's logit), in logits: negative
    means the part was pushing the pair up.
    """

    query: str
    document: str
    model: str
    precision: str
    mode: str  # "zero" or "mean", see MODES
    tokens: int  # tokens of the pair, special tokens included
    logit: float  # the pair's logit, the module's own forward
    heads: list[list[float]] | None  # [layer][head]; None when only the per-layer view fitted the budget
    attention: list[float]  # [layer]: the attention block's output removed
    feed_forward: list[float]  # [layer]: the feed-forward block's output removed
    copies: int  # edited copies of the pair run (one batched row each), plus one unedited
    passes: int  # batched forward passes, plus one single-copy reference pass
    batch_rounding: float  # |unedited copy in a batch - logit|: the float floor under every change
    per_layer_reason: str | None  # why the head grid was left out, when it was
    elapsed_ms: float  # wall time, time.perf_counter

    def top_heads(self, k: int = 5) -> list[dict]:
        """The k heads whose removal moves the logit most (either way): {layer, head, change}."""
        return _top(self.heads, k, abs)

    def to_dict(self) -> dict:
        """Every field as `heads --json` prints it, plus `mode_meaning` (what the ablation mode does) and
        `top_heads`: the 10 heads whose removal moves the logit most, {layer, head, change} in logits."""
        return {**asdict(self), "mode_meaning": MODES[self.mode], "top_heads": self.top_heads(10)}


def grid_work(scorer: CrossEncoder, pair: EncodedPair) -> int:
    """Tokens of model work a head grid or a patching run on this pair costs at most: its tokens
    x (layers x (heads + 2) + 2) copies; the long-job lane measures requests in this unit."""
    config = scorer.model.module.config
    copies = config.num_hidden_layers * (config.num_attention_heads + 2) + 2
    return pair.features["input_ids"].shape[1] * copies


def head_importance(scorer: CrossEncoder, pair: EncodedPair, mode: AblationMode = "zero",
                    progress: ProgressCallback | None = None, per_layer_only: bool = False) -> HeadImportance:
    """Every head's, attention block's and feed-forward block's effect on one pair's logit.

    Costs one single-copy pass plus layers x (heads + 2) + 1 copies in batches; a pair whose
    tokens x copies exceed MAX_HEAD_TOKEN_PASSES gets the per-layer view only (and says why),
    and one too long even for that raises ExplorerError. `progress(done, total)` counts copies.
    """
    started = time.perf_counter()
    config = _module_of(scorer).config
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    tokens = pair.features["input_ids"].shape[1]
    head_rows = [(Edit(layer, "heads", (head,)),) for layer in range(layers) for head in range(heads)]
    block_rows = [(Edit(layer, site),) for site in ("attention", "ffn") for layer in range(layers)]
    reason = check_head_passes(tokens, 1 + len(head_rows) + len(block_rows), 1 + len(block_rows), "head grid")
    if per_layer_only and reason is None:
        reason = "only the per-layer view was asked for"
    rows: list[Row] = [(), *block_rows, *([] if reason else head_rows)]
    logit, logits = ablated_logits(scorer, pair, rows, mode, _progress_bridge(progress, len(rows)))
    changes = [value - logit for value in logits]
    per_pass = max(1, MAX_HEAD_BATCH_TOKENS // tokens)
    return HeadImportance(
        query=pair.query, document=pair.document, model=scorer.info.name, precision=scorer.precision,
        mode=mode, tokens=tokens, logit=logit,
        heads=None if reason else _cell_list(changes[1 + 2 * layers:], layers, heads),
        attention=changes[1:1 + layers], feed_forward=changes[1 + layers:1 + 2 * layers],
        copies=len(rows) - 1, passes=1 + -(-len(rows) // per_pass), batch_rounding=abs(changes[0]),
        per_layer_reason=reason, elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )


@dataclass
class HeadPatching:
    """How much of the gap between A and B each head carries, by patching A's head outputs into B.

    `heads[l][h]` and `layers[l]` are (B's logit with that head's / every head of layer l's context
    taken from A at `positions`) - B's logit, in logits; `everything` patches every head of every
    layer. A share is that move divided by `gap` (None when |gap| < MIN_GAP).
    """

    query: str
    document_a: str
    document_b: str
    model: str
    precision: str
    positions: str  # "query" or "query_segment", see POSITIONS
    patched_positions: list[int]  # token positions patched (the same in both pairs)
    logit_a: float
    logit_b: float
    heads: list[list[float]] | None  # [layer][head]; None when only the per-layer view fitted the budget
    layers: list[float]  # [layer]: all heads of the layer patched
    everything: float  # all heads of all layers patched
    copies: int
    passes: int
    batch_rounding: float  # |unpatched copy of B in a batch - logit_b|
    per_layer_reason: str | None
    elapsed_ms: float

    @property
    def gap(self) -> float:
        """The logit gap the patching explains: logit of A minus logit of B (fp32 logits)."""
        return self.logit_a - self.logit_b

    def share(self, move: float) -> float | None:
        """`move` as a fraction of the gap A - B (1.0: that patch alone closes it)."""
        return None if abs(self.gap) < MIN_GAP else move / self.gap

    def top_heads(self, k: int = 5) -> list[dict]:
        """The k heads whose patch moves B furthest towards A: {layer, head, change, share}."""
        sign = 1.0 if self.gap >= 0 else -1.0
        return [{**cell, "share": self.share(cell["change"])} for cell in _top(self.heads, k, lambda v: sign * v)]

    def to_dict(self) -> dict:
        """Every field as `heads --json` prints it, plus `gap`, what the patched positions mean, the share of
        the gap patching everything closes (None when the gap is too small to divide by), the 10 heads that
        move B furthest towards A, and the note on patching everything."""
        return {**asdict(self), "gap": self.gap, "positions_meaning": POSITIONS[self.positions],
                "everything_share": self.share(self.everything), "top_heads": self.top_heads(10),
                "full_patch_note": FULL_PATCH_NOTE}


def head_patching(scorer: CrossEncoder, pair_a: EncodedPair, pair_b: EncodedPair,
                  positions: PatchPositions = "query", progress: ProgressCallback | None = None,
                  per_layer_only: bool = False) -> HeadPatching:
    """Patch each head (and each layer's heads, and everything) from A's run into B's at the
    query positions; B's logit moves, as a share of the gap A - B. Budgeted like `head_importance`
    (on B's tokens)."""
    started = time.perf_counter()
    config = _module_of(scorer).config
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    tokens = pair_b.features["input_ids"].shape[1]
    every = tuple(range(heads))
    layer_rows = [(Edit(layer, "heads", every),) for layer in range(layers)]
    everything: Row = tuple(Edit(layer, "heads", every) for layer in range(layers))
    head_rows = [(Edit(layer, "heads", (head,)),) for layer in range(layers) for head in range(heads)]
    reason = check_head_passes(tokens, 2 + len(layer_rows) + len(head_rows), 2 + len(layer_rows), "patching grid")
    if per_layer_only and reason is None:
        reason = "only the per-layer view was asked for"
    rows: list[Row] = [(), everything, *layer_rows, *([] if reason else head_rows)]
    logit_a, logit_b, logits = patched_logits(scorer, pair_a, pair_b, rows, positions,
                                              _progress_bridge(progress, len(rows)))
    moves = [value - logit_b for value in logits]
    per_pass = max(1, MAX_HEAD_BATCH_TOKENS // tokens)
    return HeadPatching(
        query=pair_b.query, document_a=pair_a.document, document_b=pair_b.document, model=scorer.info.name,
        precision=scorer.precision, positions=positions,
        patched_positions=patch_positions(pair_a, pair_b, positions), logit_a=logit_a, logit_b=logit_b,
        heads=None if reason else _cell_list(moves[2 + layers:], layers, heads),
        layers=moves[2:2 + layers], everything=moves[1], copies=len(rows) - 1,
        passes=2 + -(-len(rows) // per_pass), batch_rounding=abs(moves[0]), per_layer_reason=reason,
        elapsed_ms=(time.perf_counter() - started) * 1000.0,
    )


# ---- plain text for the command line ----

def _cost_line(result) -> str:
    return (f"{result.copies} edited copies in {result.passes} passes, {result.elapsed_ms:.0f} ms "
            f"({result.precision}); batch rounding {result.batch_rounding:.1e} logit")


def format_head_importance(result: HeadImportance, k: int = 8) -> str:
    """The grid's largest changes and the per-layer blocks, as lines of text."""
    lines = [f"{result.model}: logit {result.logit:.3f} for a {result.tokens}-token pair; {MODES[result.mode]}.",
             _cost_line(result)]
    if result.per_layer_reason:
        lines.append(f"Heads left out: {result.per_layer_reason}")
    else:
        lines.append("Heads that move the logit most when removed (change in logit):")
        lines.extend(f"  layer {t['layer']:>2} head {t['head']:>2}  {t['change']:+.3f}" for t in result.top_heads(k))
    lines.append("Per layer, block removed: attention / feed-forward (change in logit)")
    lines.extend(f"  layer {layer:>2}  {a:+.3f} / {f:+.3f}"
                 for layer, (a, f) in enumerate(zip(result.attention, result.feed_forward)))
    return "\n".join(lines)


def _share_text(share: float | None) -> str:
    return "n/a" if share is None else f"{share + 0.0:.0%}"


def format_head_patching(result: HeadPatching, k: int = 8) -> str:
    """Which heads, patched from A into B at the query positions, carry most of the gap."""
    lines = [f"Patching A into B at {POSITIONS[result.positions]}: logit A {result.logit_a:.3f}, "
             f"B {result.logit_b:.3f}, gap {result.gap:+.3f}.", _cost_line(result),
             f"Every head of every layer patched: B moves {result.everything:+.3f} "
             f"({_share_text(result.share(result.everything))} of the gap).", FULL_PATCH_NOTE]
    if result.per_layer_reason:
        lines.append(f"Heads left out: {result.per_layer_reason}")
    else:
        lines.append("Heads carrying most of the gap (B's logit move, share of the gap):")
        lines.extend(f"  layer {t['layer']:>2} head {t['head']:>2}  {t['change']:+.3f}  {_share_text(t['share'])}"
                     for t in result.top_heads(k))
    lines.append("Per layer, all heads patched:")
    lines.extend(f"  layer {layer:>2}  {move:+.3f}  {_share_text(result.share(move))}"
                 for layer, move in enumerate(result.layers))
    return "\n".join(lines)
