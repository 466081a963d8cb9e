"""Any model a visitor names computes what sentence-transformers computes.

Every model here is built inside the test (tiny, randomly initialised, `tiny_models.py`) and
saved as an ordinary folder; the reference is sentence-transformers loading that same folder
on its own (`CrossEncoder.predict`, `SentenceTransformer.encode_query` / `encode_document`).
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from explorer.data.corpus import Corpus, Document
from explorer.engine.loading import load_model
from explorer.engine.model import BoundEngine
from explorer.engine.packed_bert import PackedBert
from explorer.errors import ExplorerError
from explorer.interpret.attention import inspect_pair
from explorer.interpret.attribution import occlusion_attribution
from explorer.interpret.integrated_gradients import integrated_gradients
from explorer.interpret.pair import encode_pair, inspection_model, rescoring_model
from explorer.pipeline.compare import compare
from explorer.rankers.bi_encoder import BiEncoder
from explorer.rankers.cross_encoder import CrossEncoder
from tiny_models import CROSS_ARCHITECTURES, build_bi_encoder, build_cross_encoder

QUERY = "what is the capital of france"
DOCUMENTS = [
    "the capital of france is paris",
    "london is the capital of england",
    "the eiffel tower is tall",
    "cats and dogs play in the garden",
    "rivers flow into lakes and seas",
    "paris is a city in france and its capital",
]
FP32_BOUND = 1e-5
# bf16 rounds every activation to 8 bits of mantissa; on these tiny models (logits within +-3)
# the largest logit change measured was about 0.03. The stated bound leaves room above that.
BF16_LOGIT_BOUND = 0.1
NLI_LABELS = ["contradiction", "entailment", "neutral"]


def reference_cross_encoder(folder, **kwargs):
    from sentence_transformers import CrossEncoder as Reference

    return Reference(str(folder), device="cpu", **kwargs)


def raw_reference(folder, queries, documents, **kwargs) -> np.ndarray:
    return np.asarray(reference_cross_encoder(folder).predict(
        list(zip(queries, documents)), activation_fn=torch.nn.Identity(), **kwargs), dtype=np.float32)


@pytest.fixture(scope="module")
def cross_folders(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cross")
    return {arch: str(build_cross_encoder(arch, root / arch)) for arch in CROSS_ARCHITECTURES}


@pytest.fixture(scope="module")
def nli_folder(tmp_path_factory) -> str:
    return str(build_cross_encoder("bert", tmp_path_factory.mktemp("nli") / "nli", labels=NLI_LABELS, seed=3))


def corpus() -> Corpus:
    return Corpus([Document(f"d{i}", text) for i, text in enumerate(DOCUMENTS)], name="tiny")


# -- cross-encoders of every architecture ------------------------------------------------------

@pytest.mark.parametrize("arch", CROSS_ARCHITECTURES)
def test_compare_logits_equal_cross_encoder_predict(cross_folders, arch):
    folder = cross_folders[arch]
    expected = raw_reference(folder, [QUERY] * len(DOCUMENTS), DOCUMENTS)
    assert expected.std() > 0.05  # distinct scores, so equality below means something
    ranker = CrossEncoder(load_model(folder, "cross", allow_local_path=True), "fp32")
    scored = ranker.score([QUERY] * len(DOCUMENTS), DOCUMENTS)
    assert np.abs(scored.logits - expected).max() <= FP32_BOUND
    # The probability column is the model's own activation (sigmoid for these), named so.
    default = reference_cross_encoder(folder).predict([(QUERY, d) for d in DOCUMENTS])
    assert np.abs(scored.probabilities - default).max() <= FP32_BOUND
    assert ranker.info.probability_name == "sigmoid(logit)"
    # Through the Compare pipeline: the re-ranked hits carry the same logits.
    result = compare(QUERY, corpus(), top_k=len(DOCUMENTS), cross_encoder=folder, first_stage="bm25",
                     precision="fp32", allow_local_models=True)
    by_text = dict(zip(DOCUMENTS, expected))
    assert {hit.text: pytest.approx(float(by_text[hit.text]), abs=FP32_BOUND) for hit in result.reranked} == \
        {hit.text: hit.score for hit in result.reranked}
    assert [hit.text for hit in result.reranked] == [DOCUMENTS[i] for i in np.argsort(-expected, kind="stable")]


@pytest.mark.parametrize("arch", CROSS_ARCHITECTURES)
def test_bf16_logits_stay_within_the_stated_bound(cross_folders, arch):
    model = load_model(cross_folders[arch], "cross", allow_local_path=True)
    exact = CrossEncoder(model, "fp32").score([QUERY] * len(DOCUMENTS), DOCUMENTS).logits
    fast_ranker = CrossEncoder(model, "bf16")
    fast = fast_ranker.score([QUERY] * len(DOCUMENTS), DOCUMENTS).logits
    assert np.abs(fast - exact).max() <= BF16_LOGIT_BOUND
    # Plain BERT packs; every other architecture runs sentence-transformers' own forward.
    assert fast_ranker.info.engine == ("packed bf16" if arch == "bert" else "sentence-transformers forward")


@pytest.mark.parametrize("arch", CROSS_ARCHITECTURES)
def test_inspect_explain_and_gradients_score_what_compare_scores(cross_folders, arch):
    folder = cross_folders[arch]
    expected = float(raw_reference(folder, [QUERY], [DOCUMENTS[0]])[0])
    inspector = inspection_model(folder, allow_local_path=True)
    assert inspector.model.module.config._attn_implementation == "eager"  # attention weights need it
    pair = encode_pair(inspector, QUERY, DOCUMENTS[0])
    inspection = inspect_pair(inspector, pair)
    assert abs(inspection.score - expected) <= FP32_BOUND
    assert inspection.attentions.shape[0] == 2 and np.allclose(inspection.attentions.sum(-1), 1, atol=1e-4)
    rescorer = rescoring_model(folder, allow_local_path=True)
    assert abs(occlusion_attribution(rescorer, encode_pair(rescorer, QUERY, DOCUMENTS[0])).full_logit - expected) <= FP32_BOUND
    assert abs(integrated_gradients(rescorer, pair, steps=4).score - expected) <= FP32_BOUND


@pytest.mark.parametrize("arch", ["roberta", "xlm-roberta", "deberta-v2", "modernbert"])
def test_query_and_document_tokens_are_told_apart_by_sequence_ids(cross_folders, arch):
    model = load_model(cross_folders[arch], "cross", allow_local_path=True)
    pair = encode_pair(model, QUERY, DOCUMENTS[1])
    tokenizer = model.tokenizer
    query_positions = [i for i, s in enumerate(pair.sequence_ids) if s == 0]
    document_positions = [i for i, s in enumerate(pair.sequence_ids) if s == 1]
    ids = pair.features["input_ids"][0].tolist()
    assert tokenizer.decode([ids[i] for i in query_positions]) == QUERY
    assert tokenizer.decode([ids[i] for i in document_positions]) == DOCUMENTS[1]
    separators = [t for i, t in enumerate(pair.tokens) if pair.sequence_ids[i] is None]
    if arch in ("roberta", "xlm-roberta"):  # <s> q </s></s> d </s>: both middle separators belong to neither text
        assert separators == ["<s>", "</s>", "</s>", "</s>"]
    else:
        assert separators == ["[CLS]", "[SEP]", "[SEP]"]
    # Integrated Gradients' baseline empties exactly the document's tokens.
    from explorer.interpret.integrated_gradients import baseline_ids

    changed = (baseline_ids(pair, tokenizer.pad_token_id)[0] != pair.features["input_ids"][0]).nonzero().flatten().tolist()
    assert set(changed) <= set(document_positions) and len(changed) >= len(document_positions) - 1


def test_a_deberta_folder_loads_with_its_own_attention(cross_folders):
    model = load_model(cross_folders["deberta-v2"], "cross", allow_local_path=True)
    assert model.module.config._attn_implementation == "eager"  # it has no SDPA; asking for it raised
    assert load_model(cross_folders["bert"], "cross", allow_local_path=True).module.config._attn_implementation == "sdpa"


def test_an_identity_activation_shows_raw_scores(cross_folders, tmp_path):
    folder = tmp_path / "identity"
    reference_cross_encoder(cross_folders["bert"], activation_fn=torch.nn.Identity()).save(str(folder))
    ranker = CrossEncoder(load_model(str(folder), "cross", allow_local_path=True), "fp32")
    scored = ranker.score([QUERY] * 3, DOCUMENTS[:3])
    assert ranker.info.probability_name == "raw score"
    expected = reference_cross_encoder(folder).predict([(QUERY, d) for d in DOCUMENTS[:3]])  # its own activation
    assert np.abs(scored.probabilities - expected).max() <= FP32_BOUND
    assert np.abs(scored.probabilities - scored.logits).max() == 0


# -- pair classification (several labels) ------------------------------------------------------

def test_label_probabilities_equal_predict_with_softmax(nli_folder):
    ranker = CrossEncoder(load_model(nli_folder, "cross", allow_local_path=True), "fp32")
    scored = ranker.score([QUERY] * len(DOCUMENTS), DOCUMENTS)
    expected = reference_cross_encoder(nli_folder).predict([(QUERY, d) for d in DOCUMENTS], apply_softmax=True)
    assert scored.labels == NLI_LABELS
    assert np.abs(scored.label_probabilities - expected).max() <= FP32_BOUND
    assert ranker.label_name == "entailment"  # chosen by name when none is asked for
    assert np.abs(scored.probabilities - expected[:, 1]).max() <= FP32_BOUND
    assert ranker.info.score_name == "logit of 'entailment'"
    assert ranker.info.probability_name == "softmax P(entailment)"


@pytest.mark.parametrize("label", NLI_LABELS)
def test_the_chosen_label_ranks(nli_folder, label):
    expected = reference_cross_encoder(nli_folder).predict([(QUERY, d) for d in DOCUMENTS], apply_softmax=True)
    column = expected[:, NLI_LABELS.index(label)]
    assert len(set(np.round(column, 4))) == len(DOCUMENTS)  # no ties: the order is decided
    ranker = CrossEncoder(load_model(nli_folder, "cross", allow_local_path=True), "fp32", label=label)
    assert [i for i, _ in ranker.rank(QUERY, DOCUMENTS)] == np.argsort(-column, kind="stable").tolist()
    result = compare(QUERY, corpus(), top_k=len(DOCUMENTS), cross_encoder=nli_folder, first_stage="bm25",
                     precision="fp32", allow_local_models=True, cross_label=label)
    assert [hit.text for hit in result.reranked] == [DOCUMENTS[i] for i in np.argsort(-column, kind="stable")]
    assert [hit.probability for hit in result.reranked] == pytest.approx(sorted(column, reverse=True), abs=FP32_BOUND)
    # Explanations explain that label's logit.
    rescorer = rescoring_model(nli_folder, allow_local_path=True, label=label)
    full = occlusion_attribution(rescorer, encode_pair(rescorer, QUERY, DOCUMENTS[0])).full_logit
    p = column[0]
    assert full == pytest.approx(float(np.log(p / (1 - p))), abs=1e-4)
    # So does head importance: its unablated logit is that label's.
    from explorer.interpret.heads import head_importance

    heads = head_importance(rescorer, encode_pair(rescorer, QUERY, DOCUMENTS[0]), "zero")
    assert heads.logit == pytest.approx(float(np.log(p / (1 - p))), abs=1e-4)


def test_an_unknown_label_is_refused_with_the_labels_listed(nli_folder):
    with pytest.raises(ExplorerError, match="contradiction, entailment, neutral"):
        CrossEncoder(load_model(nli_folder, "cross", allow_local_path=True), "fp32", label="relevant")


# -- load errors say what happened -------------------------------------------------------------

def test_load_errors_say_what_really_happened(cross_folders, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ExplorerError, match="not a model folder") as caught:
        load_model(str(empty), "cross", allow_local_path=True)
    messages = [str(caught.value)]

    no_weights = tmp_path / "no-weights"
    shutil.copytree(cross_folders["bert"], no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ExplorerError, match="not a complete model folder") as caught:
        load_model(str(no_weights), "cross", allow_local_path=True)
    messages.append(str(caught.value))

    damaged = tmp_path / "damaged"
    shutil.copytree(cross_folders["bert"], damaged)
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ExplorerError, match="damaged file") as caught:
        load_model(str(damaged), "cross", allow_local_path=True)
    messages.append(str(caught.value))

    bi_encoder = build_bi_encoder(tmp_path / "bi")
    with pytest.raises(ExplorerError, match="not a cross-encoder") as caught:
        load_model(str(bi_encoder), "cross", allow_local_path=True)
    messages.append(str(caught.value))
    assert not any("not available offline" in message for message in messages)


# -- bi-encoders: every pooling mode, Dense, Normalize, prompts ---------------------------------

PROMPTS = {"query": "query: ", "document": "passage: "}
BI_VARIANTS = {
    "max pooling": dict(pooling="max"),
    "last-token pooling, no Normalize": dict(pooling="lasttoken", normalize=False),
    "Dense layer": dict(pooling="mean", dense=True),
    "prompts": dict(pooling="cls", prompts=PROMPTS),
    "weighted mean, default prompt, RoBERTa": dict(architecture="roberta", pooling="weightedmean",
                                                   prompts={"instruct": "represent this: "},
                                                   default_prompt_name="instruct", normalize=False),
    "prompt left out of the pooling": dict(pooling="mean", prompts=PROMPTS, include_prompt=False),
}
PACKS = {"max pooling": True, "last-token pooling, no Normalize": True, "Dense layer": True, "prompts": True,
         "weighted mean, default prompt, RoBERTa": False, "prompt left out of the pooling": False}


@pytest.fixture(scope="module")
def bi_folders(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bi")
    return {name: str(build_bi_encoder(root / f"bi{i}", seed=i, **settings))
            for i, (name, settings) in enumerate(BI_VARIANTS.items())}


def reference_bi_encoder(folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


@pytest.mark.parametrize("variant", BI_VARIANTS)
def test_embeddings_equal_sentence_transformers(bi_folders, variant):
    folder = bi_folders[variant]
    reference = reference_bi_encoder(folder)
    encoder = BiEncoder(load_model(folder, "bi", allow_local_path=True), "fp32")
    queries, documents = [QUERY, "cats in a garden"], DOCUMENTS
    assert np.abs(encoder.embed(queries, "query") - reference.encode_query(queries)).max() <= FP32_BOUND
    assert np.abs(encoder.embed(documents, "document") - reference.encode_document(documents)).max() <= FP32_BOUND
    # The retriever's score is the model's own similarity of those embeddings.
    expected = reference.similarity(reference.encode_query([QUERY]), reference.encode_document(DOCUMENTS))[0].numpy()
    ranked = encoder.rank(QUERY, DOCUMENTS, corpus().fingerprint + variant, len(DOCUMENTS))
    assert {i: s for i, s in ranked} == pytest.approx(dict(enumerate(expected.tolist())), abs=FP32_BOUND)


@pytest.mark.parametrize("variant", BI_VARIANTS)
def test_the_packed_engine_reproduces_the_module_stack_or_steps_aside(bi_folders, variant):
    folder = bi_folders[variant]
    model = load_model(folder, "bi", allow_local_path=True)
    assert model.packs_exactly() == PACKS[variant]
    fast = BiEncoder(model, "bf16")
    if not PACKS[variant]:
        assert fast.info.engine == "sentence-transformers forward"
        return
    assert fast.info.engine == "packed bf16"
    reference = reference_bi_encoder(folder)
    # In fp32 the packed engine and the model's own modules give sentence-transformers' numbers...
    exact_packed = BiEncoder(model, "fp32")
    exact_packed.engine = BoundEngine("fp32", PackedBert(model.module, torch.float32), None, None)
    for side, encode in (("query", reference.encode_query), ("document", reference.encode_document)):
        assert np.abs(exact_packed.embed(DOCUMENTS, side) - encode(DOCUMENTS)).max() <= FP32_BOUND
        # ...and in bf16 they stay within its bound (cosine to the exact vectors).
        exact, rounded = encode(DOCUMENTS), fast.embed(DOCUMENTS, side)
        cosine = (exact * rounded).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(rounded, axis=1)
        assert cosine.min() >= 0.999


def test_prompts_are_read_from_the_model_and_shown(bi_folders):
    model = load_model(bi_folders["prompts"], "bi", allow_local_path=True)
    assert (model.prompt("query"), model.prompt("document")) == ("query: ", "passage: ")
    # sentence-transformers 6 always holds "query" and "document" prompts ("" unless saved), so
    # encode_query / encode_document never fall back to the default prompt; nor do we.
    default = load_model(bi_folders["weighted mean, default prompt, RoBERTa"], "bi", allow_local_path=True)
    assert default.library.default_prompt_name == "instruct"
    assert (default.prompt("query"), default.prompt("document"), default.prompts_text()) == ("", "", "")
    result = compare(QUERY, corpus(), top_k=3, bi_encoder=bi_folders["prompts"], rerankers="none",
                     precision="fp32", allow_local_models=True)
    assert result.stages[0].prompts == "query prompt: 'query: ' · document prompt: 'passage: '"


def test_the_command_line_ranks_by_the_named_label_and_explains_it(nli_folder, tmp_path):
    from cli_support import run_cli

    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("\n".join(DOCUMENTS) + "\n")
    expected = reference_cross_encoder(nli_folder).predict([(QUERY, d) for d in DOCUMENTS], apply_softmax=True)
    neutral = expected[:, NLI_LABELS.index("neutral")]
    shown = run_cli("compare", "--query", QUERY, "--corpus", str(corpus_file), "--first-stage", "bm25",
                    "--cross-encoder", nli_folder, "--label", "neutral", "--precision", "fp32", "--top-k", "6", "--json")
    assert [hit["text"] for hit in shown["cross_encoder"]] == [DOCUMENTS[i] for i in np.argsort(-neutral, kind="stable")]
    top = shown["cross_encoder"][0]
    assert top["label_probabilities"] == pytest.approx(dict(zip(NLI_LABELS, expected[DOCUMENTS.index(top["text"])])),
                                                       abs=FP32_BOUND)
    inspected = run_cli("inspect", "--query", QUERY, "--doc", DOCUMENTS[0], "--cross-encoder", nli_folder,
                        "--label", "neutral", "--json")
    assert inspected["probability"] == pytest.approx(float(neutral[0]), abs=FP32_BOUND)
    assert inspected["probability_unit"] == "softmax P(neutral)"


def test_the_page_names_the_label_the_activation_and_the_prompts(nli_folder, bi_folders):
    from board_support import first_column as bi_encoder_list, shown_column as cross_encoder_list

    result = compare(QUERY, corpus(), top_k=3, bi_encoder=bi_folders["prompts"], cross_encoder=nli_folder,
                     precision="fp32", allow_local_models=True, cross_label="entailment")
    cross = cross_encoder_list(result)
    assert "logit of &#39;entailment&#39;" in cross and "title='softmax P(entailment)'>p = " in cross
    assert "contradiction 0." in cross and "neutral 0." in cross  # every label's probability, by name
    first = bi_encoder_list(result)
    assert "query prompt: &#39;query: &#39; · document prompt: &#39;passage: &#39;" in first
    assert "sentence-transformers forward" in first or "packed bf16" in first  # what ran, in its runs-on text
