"""Head importance and patching (explorer/interpret/heads.py) against independent references.

The references are computed here, apart from the module's hooks: a hook written in this file
that zeroes a whole context layer or block output; a copy of the model whose head columns of
attention.output.dense are zeroed (transformers 5's BERT has no `head_mask` argument any more);
each head's context rebuilt from the eager model's attention weights times its value vectors;
the module's own plain forward and sentence-transformers' CrossEncoder.predict.
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch

from cli_support import run_cli
from explorer.errors import ExplorerError
from explorer.interpret import heads as heads_module
from explorer.interpret.heads import (
    Edit,
    ablated_logits,
    head_importance,
    head_patching,
    patch_positions,
    patched_logits,
)
from explorer.interpret.pair import encode_pair
from explorer.rankers.cross_encoder import CrossEncoder

QUERY = "python snake"
DOC_A = "The reticulated python is the world's longest snake, reaching more than six metres."
DOC_B = "Python is a programming language that lets you work quickly and integrate systems effectively."
HEAD_SIZE = 32  # 384 hidden / 12 heads
# Rows of one batched pass and a single-copy pass differ by float rounding only (matmul blocking).
BATCH_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def scorer(cross_model):
    return CrossEncoder(cross_model, "fp32")


@pytest.fixture(scope="module")
def pair_a(scorer):
    return encode_pair(scorer, QUERY, DOC_A)


@pytest.fixture(scope="module")
def pair_b(scorer):
    return encode_pair(scorer, QUERY, DOC_B)


@pytest.fixture(scope="module")
def grid_zero(scorer, pair_a):
    return head_importance(scorer, pair_a, "zero")


@pytest.fixture(scope="module")
def grid_mean(scorer, pair_a):
    return head_importance(scorer, pair_a, "mean")


@pytest.fixture(scope="module")
def patching(scorer, pair_a, pair_b):
    return head_patching(scorer, pair_a, pair_b, "query")


def plain_logit(module, features, hooks=()) -> float:
    """The module's own forward on one pair, with the given (submodule, kind, fn) hooks for this call only."""
    handles = [getattr(sub, f"register_forward_{kind}")(fn) for sub, kind, fn in hooks]
    try:
        with torch.inference_mode():
            return float(module(**features).logits[0, 0])
    finally:
        for handle in handles:
            handle.remove()


def layer_of(module, index):
    return module.bert.encoder.layer[index]


def test_ablating_nothing_is_the_models_own_forward(scorer, cross_model, pair_a, grid_zero):
    from sentence_transformers import CrossEncoder as STCrossEncoder

    plain = plain_logit(cross_model.module, pair_a.features)
    logit, unedited = ablated_logits(scorer, pair_a, [(), (), ()])
    assert logit == plain  # the reference pass is the plain forward, bit for bit
    assert grid_zero.logit == plain
    np.testing.assert_allclose(unedited, plain, atol=BATCH_TOLERANCE)
    assert grid_zero.batch_rounding <= BATCH_TOLERANCE
    st = STCrossEncoder(cross_model.source, device="cpu", activation_fn=torch.nn.Identity())
    assert float(st.predict([(QUERY, DOC_A)])[0]) == pytest.approx(plain, abs=1e-4)
    # The hooks stay installed on the shared module, but do nothing outside a computation.
    assert plain_logit(cross_model.module, pair_a.features) == plain


@pytest.mark.parametrize("layer", [0, 6, 11])
def test_zeroing_every_head_of_a_layer_equals_zeroing_its_context(scorer, cross_model, pair_a, layer):
    every = tuple(range(12))
    _, (all_heads,) = ablated_logits(scorer, pair_a, [(Edit(layer, "heads", every),)])
    zero_context = (layer_of(cross_model.module, layer).attention.output.dense, "pre_hook",
                    lambda _, args: (torch.zeros_like(args[0]),))
    reference = plain_logit(cross_model.module, pair_a.features, [zero_context])
    assert all_heads == pytest.approx(reference, abs=BATCH_TOLERANCE)
    assert abs(reference - plain_logit(cross_model.module, pair_a.features)) > 0.01  # it did remove something


def test_block_removals_equal_zeroing_the_block_outputs(scorer, cross_model, pair_a, grid_zero):
    module = cross_model.module
    for layer in (2, 10):
        for block, changes in (("attention", grid_zero.attention), ("ffn", grid_zero.feed_forward)):
            dense = layer_of(module, layer).attention.output.dense if block == "attention" else layer_of(module, layer).output.dense
            zero_output = (dense, "hook", lambda _, __, output: torch.zeros_like(output))
            reference = plain_logit(module, pair_a.features, [zero_output]) - grid_zero.logit
            assert changes[layer] == pytest.approx(reference, abs=BATCH_TOLERANCE)


def _without_head_columns(module, layer, head, bias_shift=None):
    """A copy of the model whose attention.output.dense of `layer` never reads `head`'s 32 inputs
    (those weight columns zeroed); with `bias_shift`, that head's constant output folded into the bias."""
    edited = copy.deepcopy(module)
    dense = layer_of(edited, layer).attention.output.dense
    with torch.no_grad():
        columns = slice(head * HEAD_SIZE, (head + 1) * HEAD_SIZE)
        if bias_shift is not None:
            dense.bias += dense.weight[:, columns] @ bias_shift
        dense.weight[:, columns] = 0.0
    return edited


CELLS = [(0, 0), (2, 10), (7, 9), (11, 5)]


def test_zero_grid_cells_equal_rescoring_with_the_head_weights_zeroed(cross_model, pair_a, grid_zero):
    for layer, head in CELLS:
        reference = plain_logit(_without_head_columns(cross_model.module, layer, head), pair_a.features)
        assert grid_zero.logit + grid_zero.heads[layer][head] == pytest.approx(reference, abs=BATCH_TOLERANCE)
    assert max(abs(v) for row in grid_zero.heads for v in row) > 0.1  # some head matters for this pair


def _head_contexts(attention_model, features):
    """Every layer's per-head context (layers, heads, tokens, 32), rebuilt from the eager model's
    attention weights times each head's value vectors (never through attention.output.dense)."""
    module = attention_model.module
    with torch.inference_mode():
        out = module(**features, output_attentions=True, output_hidden_states=True)
        contexts = []
        for index, weights in enumerate(out.attentions):
            values = layer_of(module, index).attention.self.value(out.hidden_states[index])[0]  # (tokens, 384)
            values = values.view(values.shape[0], 12, HEAD_SIZE).transpose(0, 1)  # (heads, tokens, 32)
            contexts.append(weights[0] @ values)
    return torch.stack(contexts)


def test_mean_grid_cells_equal_rescoring_with_the_head_folded_into_the_bias(cross_model, attention_model, pair_a,
                                                                             grid_mean, grid_zero):
    contexts = _head_contexts(attention_model, pair_a.features)
    for layer, head in CELLS:
        mean = contexts[layer, head].mean(dim=0)
        edited = _without_head_columns(cross_model.module, layer, head, bias_shift=mean)
        reference = plain_logit(edited, pair_a.features)
        assert grid_mean.logit + grid_mean.heads[layer][head] == pytest.approx(reference, abs=BATCH_TOLERANCE)
    # A zero-ablation grid in disguise would pass nothing above, but check: the two modes differ.
    assert np.abs(np.array(grid_mean.heads) - np.array(grid_zero.heads)).max() > 0.01


def test_top_heads_are_the_largest_changes(grid_zero):
    top = grid_zero.top_heads(5)
    cells = sorted((abs(v) for row in grid_zero.heads for v in row), reverse=True)
    assert [abs(t["change"]) for t in top] == cells[:5]
    assert all(grid_zero.heads[t["layer"]][t["head"]] == t["change"] for t in top)


def test_patching_nothing_gives_b_and_everything_at_the_query_segment_gives_a(scorer, cross_model, pair_a, pair_b):
    every = tuple(range(12))
    everything = tuple(Edit(layer, "heads", every) for layer in range(12))
    logit_a, logit_b, (unpatched, patched) = patched_logits(scorer, pair_a, pair_b, [(), everything], "query_segment")
    assert logit_a == plain_logit(cross_model.module, pair_a.features)
    assert logit_b == plain_logit(cross_model.module, pair_b.features)
    assert unpatched == pytest.approx(logit_b, abs=BATCH_TOLERANCE)
    # The stated bound: every head of every layer patched at [CLS], query and [SEP] gives A's logit.
    assert abs(logit_a - logit_b) > 1.0
    assert patched == pytest.approx(logit_a, abs=BATCH_TOLERANCE)


def _patch_all_contexts_hooks(module, source_contexts, positions):
    """Hooks (for plain_logit) that put A's whole context layer into B's run at `positions`, every layer."""
    def hook_for(index):
        def hook(_, args):
            context = args[0].clone()
            context[0, positions] = source_contexts[index][0, positions]
            return (context,)
        return hook
    return [(layer_of(module, i).attention.output.dense, "pre_hook", hook_for(i)) for i in range(12)]


def test_patching_everything_at_query_tokens_only_makes_query_states_equal_not_the_logit(
        cross_model, attention_model, pair_a, pair_b, patching):
    module = cross_model.module
    positions = patch_positions(pair_a, pair_b, "query")
    assert positions == [i for i, s in enumerate(pair_b.sequence_ids) if s == 0]
    captured = {}
    capture = [(layer_of(module, i).attention.output.dense, "pre_hook",
                (lambda i: lambda _, args: captured.__setitem__(i, args[0].clone()))(i)) for i in range(12)]
    plain_logit(module, pair_a.features, capture)
    handles = [layer_of(module, i).attention.output.dense.register_forward_pre_hook(fn)
               for i, (_, _, fn) in enumerate(_patch_all_contexts_hooks(module, captured, positions))]
    try:
        with torch.inference_mode():
            patched = module(**pair_b.features, output_hidden_states=True)
            original = module(**pair_a.features, output_hidden_states=True)
    finally:
        for handle in handles:
            handle.remove()
    reference = float(patched.logits[0, 0])
    assert patching.logit_b + patching.everything == pytest.approx(reference, abs=BATCH_TOLERANCE)
    # The bound at query tokens only: their states equal A's in every layer, the logit does not.
    for ours, theirs in zip(patched.hidden_states, original.hidden_states):
        torch.testing.assert_close(ours[0, positions], theirs[0, positions], atol=1e-4, rtol=0)
    assert abs(reference - patching.logit_a) > 0.01


def test_a_patched_head_equals_adding_its_context_difference_after_the_projection(cross_model, attention_model,
                                                                                     pair_a, pair_b, patching):
    """The patched cell, recomputed without hooks on the context: A's and B's head contexts come
    from attention weights x values; their difference at the query positions, sent through the
    head's 32 columns of the output projection, is added to B's attention output."""
    module = cross_model.module
    positions = patch_positions(pair_a, pair_b, "query")
    contexts_a = _head_contexts(attention_model, pair_a.features)
    contexts_b = _head_contexts(attention_model, pair_b.features)
    for layer, head in [(2, 10), (7, 9), (10, 1)]:
        dense = layer_of(module, layer).attention.output.dense
        columns = dense.weight[:, head * HEAD_SIZE:(head + 1) * HEAD_SIZE]
        difference = (contexts_a[layer, head, positions] - contexts_b[layer, head, positions]) @ columns.T

        def add(_, __, output, difference=difference):
            output = output.clone()
            output[0, positions] += difference
            return output
        reference = plain_logit(module, pair_b.features, [(dense, "hook", add)])
        assert patching.logit_b + patching.heads[layer][head] == pytest.approx(reference, abs=BATCH_TOLERANCE)


def test_patching_shares_and_top_heads(patching):
    assert patching.gap == pytest.approx(patching.logit_a - patching.logit_b)
    top = patching.top_heads(3)
    moves = sorted((v for row in patching.heads for v in row), reverse=patching.gap > 0)
    assert [t["change"] for t in top] == moves[:3]
    assert top[0]["share"] == pytest.approx(top[0]["change"] / patching.gap)
    assert patching.share(0.0) == 0.0
    assert patching.layers[0] != patching.layers[5]


def test_a_long_pair_gets_the_per_layer_view_with_the_reason(scorer, pair_a, grid_zero, monkeypatch):
    import explorer.budgets as budgets

    tokens = pair_a.features["input_ids"].shape[1]
    monkeypatch.setattr(budgets, "MAX_HEAD_TOKEN_PASSES", tokens * 30)  # 25 per-layer copies fit, 169 do not
    calls = []
    result = head_importance(scorer, pair_a, "zero", progress=lambda done, total: calls.append((done, total)))
    assert result.heads is None and result.top_heads() == []
    assert "per layer only" in result.per_layer_reason and f"{tokens * 30:,}" in result.per_layer_reason
    np.testing.assert_allclose(result.attention, grid_zero.attention, atol=BATCH_TOLERANCE)
    np.testing.assert_allclose(result.feed_forward, grid_zero.feed_forward, atol=BATCH_TOLERANCE)
    assert calls and calls[-1] == (25, 25)
    monkeypatch.setattr(budgets, "MAX_HEAD_TOKEN_PASSES", tokens * 10)
    with pytest.raises(ExplorerError, match="Shorten the document"):
        head_importance(scorer, pair_a, "zero")


def test_user_errors(scorer, pair_a, pair_b):
    with pytest.raises(ExplorerError, match="ablation mode"):
        head_importance(scorer, pair_a, "half")
    with pytest.raises(ExplorerError, match="Layer 12"):
        ablated_logits(scorer, pair_a, [(Edit(12, "heads", (0,)),)])
    with pytest.raises(ExplorerError, match="Head 12"):
        ablated_logits(scorer, pair_a, [(Edit(3, "heads", (12,)),)])
    other = encode_pair(scorer, "python language", DOC_B)
    with pytest.raises(ExplorerError, match="same query"):
        head_patching(scorer, pair_a, other)
    with pytest.raises(ExplorerError, match="patch positions"):
        patch_positions(pair_a, pair_b, "document")


def test_edits_do_not_reach_another_thread(scorer, cross_model, pair_a):
    """The hooks read a context variable: a plan set here does nothing to a forward in another thread."""
    plain = plain_logit(cross_model.module, pair_a.features)
    plan = heads_module._Plan()
    plan.replace[(0, "heads")] = (torch.ones(1, 1, 384, dtype=torch.bool), torch.ones(1, 1, 1, dtype=torch.bool),
                                  torch.zeros(1, 1, 384))
    token = heads_module._plan.set(plan)
    try:
        here = plain_logit(cross_model.module, pair_a.features)
        there = []
        thread = threading.Thread(target=lambda: there.append(plain_logit(cross_model.module, pair_a.features)))
        thread.start()
        thread.join()
    finally:
        heads_module._plan.reset(token)
    assert here != pytest.approx(plain, abs=1e-3)  # the plan acts in this context
    assert there == [plain]


def test_cli_gives_the_same_numbers(grid_zero, patching):
    data = run_cli("heads", "--query", QUERY, "--doc", DOC_A, "--mode", "zero", "--json")
    np.testing.assert_allclose(data["heads"], grid_zero.heads, atol=1e-6)
    np.testing.assert_allclose(data["attention"], grid_zero.attention, atol=1e-6)
    assert data["model"].startswith("ms-marco-MiniLM-L-12-v2") and "int8" in data["model"]
    assert [(t["layer"], t["head"]) for t in data["top_heads"][:5]] == [(t["layer"], t["head"]) for t in grid_zero.top_heads(5)]
    versus = run_cli("heads", "--query", QUERY, "--doc", DOC_A, "--versus", DOC_B, "--json")
    np.testing.assert_allclose(versus["patching"]["heads"], patching.heads, atol=1e-6)
    assert versus["patching"]["gap"] == pytest.approx(patching.gap)
    np.testing.assert_allclose(versus["heads"], grid_zero.heads, atol=1e-6)
