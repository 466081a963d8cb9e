"""The offline models equal their references: sentence-transformers on the same weights,
and onnxruntime on the int8 ONNX file the cross-encoder was rebuilt from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.errors import ExplorerError
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.engine.loading import load_model, offline_cross_encoder_dir
from explorer.engine.onnx_rebuild import BUILD_MARKER, RERANKER_ONNX_SHA256, reranker_source_dir, sha256_of
from explorer.rankers.cross_encoder import CrossEncoder
from explorer.rankers.bi_encoder import BiEncoder
from engine_bounds import FP32_ATOL, INT8_LOGIT_ERROR, assert_same_order_beyond
from pair_sets import QUERY_SETS

ALL_PAIRS = [(query, passage) for query, passages in QUERY_SETS for passage in passages]


@pytest.fixture(scope="module")
def st_bi_encoder(bi_model):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(bi_model.source, device="cpu")


@pytest.fixture(scope="module")
def st_cross_encoder():
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(offline_cross_encoder_dir()), device="cpu", activation_fn=torch.nn.Identity())


def test_bi_encoder_cosines_equal_sentence_transformers(bi_model, st_bi_encoder):
    queries = [query for query, _ in QUERY_SETS]
    passages = [p for _, ps in QUERY_SETS for p in ps]
    ours = BiEncoder(bi_model, "fp32").encode(queries) @ BiEncoder(bi_model, "fp32").encode(passages).T
    q = st_bi_encoder.encode(queries, convert_to_numpy=True, normalize_embeddings=True)
    p = st_bi_encoder.encode(passages, convert_to_numpy=True, normalize_embeddings=True)
    reference = q @ p.T
    assert ours.shape == (len(queries), len(passages))
    # The same fp32 weights and pooling: measured within 1.8e-7 (AVX2 EPYC); 1e-5 leaves room for
    # other CPUs' summation order, and a pooling or normalisation slip moves cosines by 1e-2 or more.
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)


def test_cross_encoder_logits_equal_sentence_transformers(cross_model, st_cross_encoder):
    ours = CrossEncoder(cross_model, "fp32").score([q for q, _ in ALL_PAIRS], [p for _, p in ALL_PAIRS])
    reference = st_cross_encoder.predict(ALL_PAIRS, batch_size=8)
    # One fp32 forward each on the same weights: measured within 2.9e-6 (engine_bounds.FP32_ATOL).
    np.testing.assert_allclose(ours.logits, reference, rtol=0, atol=FP32_ATOL)
    np.testing.assert_allclose(ours.probabilities, 1 / (1 + np.exp(-reference)), rtol=0, atol=FP32_ATOL / 4)


def _onnx_logits(pairs):
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(reranker_source_dir() / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(reranker_source_dir()))
    logits = []
    for query, passage in pairs:
        # One pair per run: the int8 graph's scores move with padding length.
        features = tokenizer(query, passage, truncation=True, max_length=512, return_tensors="np")
        feed = {name: features[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
        logits.append(float(session.run(["logits"], feed)[0][0, 0]))
    return np.array(logits)


def test_rebuilt_cross_encoder_is_faithful_to_the_onnx_original(cross_model):
    """The fp32 rebuild against onnxruntime's int8 run of the file it came from: every logit within
    the int8 error bound, and every two passages further apart than twice it in the same order."""
    assert len(ALL_PAIRS) >= 30
    original = _onnx_logits(ALL_PAIRS)
    rebuilt = CrossEncoder(cross_model, "fp32").score([q for q, _ in ALL_PAIRS], [p for _, p in ALL_PAIRS]).logits
    assert np.abs(original - rebuilt).max() <= INT8_LOGIT_ERROR
    start = 0
    for query, passages in QUERY_SETS:
        a, b = original[start : start + len(passages)], rebuilt[start : start + len(passages)]
        start += len(passages)
        assert int(np.argmax(b)) == 0, query  # the written answer comes first in fp32
        assert_same_order_beyond(b, a, INT8_LOGIT_ERROR, at_least=20)


def test_rebuilt_directory_is_marked_with_the_source_checksum():
    import json

    folder = offline_cross_encoder_dir()
    assert sha256_of(reranker_source_dir() / "model.onnx") == RERANKER_ONNX_SHA256
    marker = json.loads((folder / BUILD_MARKER).read_text())
    assert marker["onnx_sha256"] == RERANKER_ONNX_SHA256
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()


def test_classic_capital_example_scores(cross_model):
    scores = CrossEncoder(cross_model, "fp32").score_query(
        "what is the capital of France?",
        ["Paris is the capital of France.", "London is the capital of England.", "The Eiffel Tower is in Paris."],
    ).logits
    assert scores[0] > 8 and scores[1] < 0 and scores[2] < 0


def test_models_load_once_per_process():
    assert load_model(DEFAULT_CROSS_ENCODER, "cross") is load_model(DEFAULT_CROSS_ENCODER, "cross")
    assert load_model(DEFAULT_BI_ENCODER, "bi") is load_model(f"  {DEFAULT_BI_ENCODER} ", "bi")


def test_models_are_named_for_what_they_are(cross_model, bi_model):
    assert cross_model.name == "ms-marco-MiniLM-L-12-v2 (int8-derived offline copy)"
    assert "all-MiniLM-L6-v2" in bi_model.name


def test_model_of_the_wrong_kind_is_refused_by_name():
    with pytest.raises(ExplorerError, match="not a cross-encoder"):
        load_model(DEFAULT_BI_ENCODER, "cross")
    with pytest.raises(ExplorerError, match="is a cross-encoder"):
        load_model(DEFAULT_CROSS_ENCODER, "bi")


def test_unknown_model_without_network_names_it_and_lists_offline_models(monkeypatch):
    import explorer.engine.loading as models

    monkeypatch.setattr(models, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(ExplorerError) as caught:
        load_model("cross-encoder/ms-marco-MiniLM-L-6-v2", "cross")
    message = str(caught.value)
    assert "cross-encoder/ms-marco-MiniLM-L-6-v2" in message and DEFAULT_CROSS_ENCODER in message


@pytest.mark.parametrize("name", ["../../etc", "/etc/passwd", "a/b/c", "", "x y"])
def test_paths_are_not_model_ids(name):
    with pytest.raises(ExplorerError):
        load_model(name, "cross")


@pytest.mark.parametrize("kind", ["bi", "cross"])
def test_concurrent_requests_tokenize_without_sharing_padding(kind, bi_model, cross_model):
    """Eight threads tokenize batches of different padding on the model's one tokenizer (as
    concurrent requests do, ours and sentence-transformers' predict/encode alike): every batch
    comes back padded as it asked. A fast tokenizer keeps its padding settings on one shared
    backend; without the load-time serialisation this failed in 6 of 8 threads here."""
    import threading

    tokenizer = (bi_model if kind == "bi" else cross_model).tokenizer
    wrong: list[tuple[int, set[int]]] = []

    def tokenize(thread: int) -> None:
        words = 5 + 20 * (thread % 2)
        texts = [" ".join(["word"] * words)] * 4 + ["x"]
        # Even threads pad to 64; odd ones to their longest text (words + [CLS] and [SEP]).
        padding, expected = ("max_length", 64) if thread % 2 == 0 else (True, words + 2)
        for _ in range(200):
            lengths = {len(ids) for ids in tokenizer(texts, padding=padding, max_length=64, truncation=True)["input_ids"]}
            if lengths != {expected}:
                wrong.append((thread, lengths))
                return

    threads = [threading.Thread(target=tokenize, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
