"""The retrieval spectrum: bge-small offline, late interaction (MaxSim), the hybrid first stage,
and the CLI that chains them (`--first-stage`, `--rerankers`)."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from cli_support import run_cli, write_corpus
from explorer.cli import main
from explorer.data.builtin_corpora import load_set
from explorer.engine.catalog import BGE_SMALL, COLBERT_BACKBONE
from explorer.engine.loading import load_model
from explorer.engine.onnx_rebuild import BGE_SMALL as BGE_SPEC
from explorer.engine.onnx_rebuild import source_dir
from explorer.rankers.bi_encoder import BiEncoder
from explorer.rankers.bm25 import BM25
from explorer.rankers.hybrid import RRF_K, Hybrid
from explorer.rankers.late_interaction import NAME as LATE_NAME
from explorer.rankers.late_interaction import LateInteraction

TEXTS = [
    "what is the capital of France?",
    "Paris is the capital of France.",
    "London is the capital of England.",
    "The Eiffel Tower is in Paris.",
    "Cats purr when they are content.",
    "Ball pythons are popular pet snakes.",
    "Python is a programming language with dynamic typing.",
    "The Berlin wall fell in 1989.",
    "pasta recipe without cheese",
    "A quick tomato sauce needs garlic, olive oil and basil.",
    "How do I reverse a list in Python?",
    "Photosynthesis turns light into chemical energy in plants.",
    "The stock market fell sharply on Monday.",
    "Mount Everest is the highest mountain above sea level.",
    "Use list.sort() to sort a list in place.",
    "Whales are mammals, not fish.",
    "The mitochondria is the powerhouse of the cell.",
    "It rained all day, so the football match was cancelled.",
    "Dogs bark; cats meow.",
    "Quantum computers use qubits, which can be in superposition.",
]


@pytest.fixture(scope="module")
def bge():
    return load_model(BGE_SMALL, "bi")


def float_activation_graph() -> bytes:
    """The original graph with its int8 weights dequantised in place and its activations left in fp32.

    onnxruntime's dynamic int8 run also rounds every Linear's input to uint8, which our fp32
    rebuild does not; this graph is the same file's weights without that rounding. Each
    DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales) chain becomes one fp32 MatMul
    with the weight (q - zero_point) * scale.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source_dir(BGE_SPEC) / "model.onnx"))
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for value in node.input:
            consumers.setdefault(value, []).append(node)
    raw = {init.name: init for init in graph.initializer}
    drop, added = set(), []
    for node in [n for n in graph.node if n.op_type == "MatMulInteger"]:
        quantize = producer[node.input[0]]
        (cast,) = consumers[node.output[0]]
        (scale_mul,) = consumers[cast.output[0]]
        base = node.input[1].removesuffix("_quantized")
        weight = ((numpy_helper.to_array(raw[base + "_quantized"]).astype(np.int32)
                   - numpy_helper.to_array(raw[base + "_zero_point"]).astype(np.int32)).astype(np.float32)
                  * numpy_helper.to_array(raw[base + "_scale"]).astype(np.float32))
        graph.initializer.append(numpy_helper.from_array(weight, base + "_fp32"))
        added.append(helper.make_node("MatMul", [quantize.input[0], base + "_fp32"], [scale_mul.output[0]]))
        drop.update(id(n) for n in (node, cast, scale_mul))
    kept = [n for n in graph.node if id(n) not in drop]  # the quantizers are left unused
    del graph.node[:]
    graph.node.extend(kept + added)
    # Topological order for the checker: sort by when each node's inputs become available.
    return _topologically_sorted(model).SerializeToString()


def _topologically_sorted(model):
    graph = model.graph
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        progress = [n for n in pending if all(i in ready for i in n.input)]
        assert progress, "graph has a cycle or a missing input"
        for node in progress:
            ordered.append(node)
            ready.update(node.output)
        done = {id(n) for n in progress}
        pending = [n for n in pending if id(n) not in done]
    del graph.node[:]
    graph.node.extend(ordered)
    return model


def onnx_cls_embeddings(model, texts, graph: bytes | None = None):
    """onnxruntime on the original int8 ONNX file (or `graph`): [CLS] state, L2-normalised, one text at a time."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the rewritten graph's unused int8 initializers are not news
    session = onnxruntime.InferenceSession(graph or str(source_dir(BGE_SPEC) / "model.onnx"), options,
                                           providers=["CPUExecutionProvider"])
    rows = []
    for text in texts:
        encoded = model.tokenizer([text], truncation=True, max_length=512, return_tensors="np")
        feeds = {name: encoded[name].astype(np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}
        cls = session.run(["last_hidden_state"], feeds)[0][0, 0]
        rows.append(cls / np.linalg.norm(cls))
    return np.stack(rows)


def test_bge_loads_offline_as_a_named_int8_derived_copy(bge):
    assert bge.pooling == "cls" and bge.normalize
    assert "int8-derived offline copy" in bge.name
    assert BiEncoder(bge, "fp32").info.name == bge.name
    # The file has no pooler, and none was added at random.
    assert getattr(bge.module, "pooler", None) is None


def test_bge_embeddings_match_onnxruntime_on_the_original_file(bge):
    ours = BiEncoder(bge, "fp32").encode(TEXTS)
    # The file's own weights with fp32 activations: the rebuild is these weights, exactly.
    exact = (ours * onnx_cls_embeddings(bge, TEXTS, float_activation_graph())).sum(axis=1)
    assert exact.min() > 0.9999, exact
    # The file as onnxruntime runs it, int8 activations and all: measured 0.9965 to 0.9986 on
    # these texts, the rounding of every Linear's input to uint8 that the rebuild leaves out.
    as_shipped = (ours * onnx_cls_embeddings(bge, TEXTS)).sum(axis=1)
    assert as_shipped.min() > 0.995, as_shipped


def test_bge_ranks_a_labelled_set_like_onnxruntime(bge):
    labelled = load_set("negation")
    texts = labelled.corpus.texts
    encoder = BiEncoder(bge, "fp32")
    graph = float_activation_graph()
    ours = encoder.encode(texts)
    exact, shipped = onnx_cls_embeddings(bge, texts, graph), onnx_cls_embeddings(bge, texts)
    for query in labelled.queries:
        q = encoder.encode([query.text])[0]
        q_exact, q_shipped = onnx_cls_embeddings(bge, [query.text], graph)[0], onnx_cls_embeddings(bge, [query.text])[0]
        top = list(np.argsort(-(ours @ q), kind="stable")[:10])
        # The same top-10, in the same order, as the file's weights run by onnxruntime ...
        assert top == list(np.argsort(-(exact @ q_exact), kind="stable")[:10]), query.text
        # ... and nearly the same ten as the int8 run, whose activation rounding swaps near-ties
        # (on "pasta recipe without cheese" the 10th and 11th documents trade places).
        int8_top = list(np.argsort(-(shipped @ q_shipped), kind="stable")[:10])
        assert len(set(top) & set(int8_top)) >= 9 and top[0] == int8_top[0], query.text


# --- late interaction ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def late():
    return LateInteraction(load_model(COLBERT_BACKBONE, "late"), "fp32")


def brute_force_maxsim(model, query: str, document: str) -> float:
    """Token states straight from the module, [CLS]/[SEP] dropped, normalised, MaxSim in numpy loops."""

    def states(text):
        encoded = model.tokenizer(text, return_tensors="pt", truncation=True, max_length=512)
        with torch.no_grad():
            hidden = model.module(**encoded).last_hidden_state[0].numpy().astype(np.float64)
        hidden = hidden[1:-1]  # "[CLS] text [SEP]": the text's own tokens
        return hidden / np.linalg.norm(hidden, axis=1, keepdims=True)

    q, d = states(query), states(document)
    return sum(max(float(np.dot(qt, dt)) for dt in d) for qt in q)


def test_late_interaction_is_named_for_what_it_is(late):
    assert late.info.name == LATE_NAME
    assert "no projection head" in late.info.name and "int8-derived offline copy" in late.info.name
    assert "not the trained model" in late.info.name
    assert late.info.kind == "late" and late.info.score_name == "MaxSim"


def test_maxsim_equals_a_brute_force_recomputation(late):
    query = "what is the capital of France?"
    documents = TEXTS[1:8] + ["A document much longer than the others, about Paris, France, its museums and its river."]
    scored = late.score_query(query, documents)
    expected = [brute_force_maxsim(late.model, query, d) for d in documents]
    np.testing.assert_allclose(scored.scores, expected, rtol=1e-4, atol=1e-4)
    assert scored.probabilities is None
    assert int(np.argmax(scored.scores)) == 0  # the answer comes first


def test_maxsim_scores_do_not_depend_on_the_batch(late):
    query = "pet snakes"
    alone = [late.score_query(query, [d]).scores[0] for d in TEXTS[4:9]]
    together = late.score_query(query, TEXTS[4:9]).scores
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-4)


# --- hybrid first stage ------------------------------------------------------------------------


def _rrf_by_hand(bm25_scores: np.ndarray, cosines: np.ndarray) -> np.ndarray:
    """RRF (k 60) as stated: BM25 ranks only the documents it scored (> 0), equal scores share their best
    rank (scipy's "min" ranking); the bi-encoder ranks every document."""
    fused = 1.0 / (60 + rankdata(-cosines, method="min"))
    matched = bm25_scores > 0
    if matched.any():
        fused[matched] += 1.0 / (60 + rankdata(-bm25_scores[matched], method="min"))
    return fused


def test_hybrid_equals_rrf_computed_by_hand(bge):
    labelled = load_set("negation")
    texts, fingerprint = labelled.corpus.texts, labelled.corpus.fingerprint
    lexical, dense = BM25(), BiEncoder(load_model("sentence-transformers/all-MiniLM-L6-v2", "bi"), "fp32")
    hybrid = Hybrid(lexical, dense)
    assert RRF_K == 60 and "k=60" in hybrid.info.name and hybrid.info.kind == "hybrid"
    index, _ = hybrid.index_corpus(texts, fingerprint)
    n = len(texts)
    vectors = dense.encode(texts)  # the bi-encoder's own cosines: the fusion rule is what is checked here
    for query in [q.text for q in labelled.queries] + ["python snake", "xyzzy"]:
        bm25_scores = np.zeros(n)
        for p, score in lexical.rank(query, texts, fingerprint, n):
            bm25_scores[p] = score
        cosines = vectors @ dense.encode([query])[0]
        by_hand = _rrf_by_hand(bm25_scores, cosines)
        scores, positions = hybrid.search(index, hybrid.encode_queries([query]), n)
        np.testing.assert_allclose(scores[0], by_hand[positions[0]], rtol=1e-5)
        assert sorted(positions[0]) == list(range(n))
        # Best first; equal fused scores in corpus order.
        assert all((a > b) or (a == b and pa < pb) for a, b, pa, pb in
                   zip(scores[0], scores[0][1:], positions[0], positions[0][1:]))
    # A query BM25 cannot match: BM25 sits out, so the hybrid's order is the bi-encoder's, said in a note.
    encoded = hybrid.encode_queries(["xyzzy"])
    _, positions = hybrid.search(index, encoded, n)
    assert list(positions[0]) == [p for p, _ in dense.rank("xyzzy", texts, fingerprint, n)]
    assert "BM25 sat out the fusion" in hybrid.search_notes(index, encoded)[0]


def test_documents_bm25_did_not_score_get_no_positional_rank():
    """The unmatched documents' fused scores come from the bi-encoder alone, whatever their corpus position."""
    dense = BiEncoder(load_model("sentence-transformers/all-MiniLM-L6-v2", "bi"), "fp32")
    hybrid = Hybrid(BM25(), dense)
    texts = ["cats purr when content", "a tomato sauce needs garlic", "the stock market fell", "pet snakes shed skin"]
    for order in ([0, 1, 2, 3], [0, 3, 2, 1]):
        shuffled = [texts[i] for i in order]
        index, _ = hybrid.index_corpus(shuffled, f"rrf-{order}")
        scores, positions = hybrid.search(index, hybrid.encode_queries(["why do cats purr"]), 4)
        fused = {shuffled[p]: float(s) for p, s in zip(positions[0], scores[0])}
        cosines = dense.encode(shuffled) @ dense.encode(["why do cats purr"])[0]
        for p, text in enumerate(shuffled):
            if text != texts[0]:  # unmatched by BM25: only the bi-encoder's term
                assert fused[text] == pytest.approx(1.0 / (60 + rankdata(-cosines, method="min")[p]), rel=1e-5)


# --- the pipeline and the command line ---------------------------------------------------------

@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("spectrum"))


def test_cli_hybrid_then_late_then_cross(corpus_file):
    data = run_cli("compare", "--query", "python snake", "--corpus", corpus_file, "--top-k", "4",
                   "--first-stage", "hybrid", "--rerankers", "late,cross", "--precision", "fp32", "--json")
    stages = data["stages"]
    assert [s["kind"] for s in stages] == ["hybrid", "late", "cross"]
    ids = [{hit["id"] for hit in s["ranking"]} for s in stages]
    assert len(ids[0]) == 4 and ids[0] == ids[1] == ids[2]
    for stage in stages:
        assert set(stage) >= {"name", "kind", "model", "ms", "ranking"}
        assert [hit["rank"] for hit in stage["ranking"]] == [1, 2, 3, 4]
        scores = [hit["score"] for hit in stage["ranking"]]
        assert scores == sorted(scores, reverse=True)
    assert stages[1]["name"] == LATE_NAME and stages[1]["score_name"] == "MaxSim"
    assert "k=60" in stages[0]["name"]
    # The hit lists are the last re-ranker's (the cross-encoder's); models name every stage.
    assert [h["id"] for h in data["cross_encoder"]] == [h["id"] for h in stages[2]["ranking"]]
    assert set(data["models"]) == {"first_stage", "late_interaction", "cross_encoder"}
    assert data["timings_ms"]["rerank_late"] >= 0 and data["timings_ms"]["rerank"] >= 0
    # The hybrid's parts sit beside it: each equals that first stage run on its own.
    parts = data["first_stage_components"]
    assert [part["kind"] for part in parts] == ["lexical", "bi"]
    for part, first_stage in zip(parts, ("bm25", "bi")):
        alone = run_cli("compare", "--query", "python snake", "--corpus", corpus_file, "--top-k", "4",
                        "--first-stage", first_stage, "--rerankers", "none", "--precision", "fp32", "--json")
        assert part["ranking"] == alone["stages"][0]["ranking"]
    labels = {(a["a"], a["b"]) for a in data["agreement"]}
    assert ("0a:lexical", "0b:bi") in labels and ("0:hybrid", "2:cross") in labels and len(labels) == 10


def test_cli_late_only_and_none(corpus_file):
    late = run_cli("compare", "--query", "python snake", "--corpus", corpus_file, "--top-k", "3",
                   "--rerankers", "late", "--precision", "fp32", "--json")
    assert [s["kind"] for s in late["stages"]] == ["bi", "late"]
    assert "cross_encoder" not in late and "cross_encoder" not in late["models"]
    assert [h["id"] for h in late["late_interaction"]] == [h["id"] for h in late["stages"][1]["ranking"]]
    assert all(h["probability"] is None for h in late["late_interaction"])
    none = run_cli("compare", "--query", "python snake", "--corpus", corpus_file, "--top-k", "3",
                   "--first-stage", "bm25", "--rerankers", "none", "--json")
    assert [s["kind"] for s in none["stages"]] == ["lexical"]
    assert not {"cross_encoder", "late_interaction", "cross_encoder_full"} & set(none)
    assert set(none["models"]) == {"first_stage"}


def test_cli_default_keys_are_unchanged(corpus_file):
    data = run_cli("compare", "--query", "python snake", "--corpus", corpus_file, "--top-k", "3",
                   "--precision", "fp32", "--json")
    assert list(data) == ["query", "top_k", "corpus_name", "corpus_size", "models", "precision", "bi_encoder",
                          "cross_encoder", "cross_encoder_full", "stages", "timings_ms",
                          "corpus_embeddings_cached", "notes", "agreement"]
    assert list(data["models"]) == list(data["precision"]) == ["bi_encoder", "cross_encoder"]
    assert [s["kind"] for s in data["stages"]] == ["bi", "cross"]
    assert set(data["cross_encoder"][0]) == {"id", "text", "score", "probability", "rank", "first_stage_rank", "first_stage_score",
                                             "in_first_stage_top_k", "move", "shared_rank", "tied"}  # ties: added keys


def test_cli_bge_bi_encoder_offline(corpus_file, monkeypatch):
    import explorer.engine.loading as loading

    monkeypatch.setattr(loading, "hub_reachable", lambda *a, **k: False)
    data = run_cli("compare", "--query", "python snake", "--corpus", corpus_file, "--top-k", "3",
                   "--bi-encoder", BGE_SMALL, "--rerankers", "none", "--precision", "fp32", "--json")
    assert data["stages"][0]["model"] == BGE_SMALL
    assert "int8-derived offline copy" in data["models"]["bi_encoder"]


def test_bad_reranker_list_is_a_message(corpus_file, capsys):
    assert main(["compare", "--query", "q", "--corpus", corpus_file, "--rerankers", "cross,bm25"]) == 2
    assert "late, cross" in capsys.readouterr().err
    assert main(["compare", "--query", "q", "--corpus", corpus_file, "--rerankers", "late@int8"]) == 2


def test_page_shows_agreement_and_costs_for_every_stage():
    """The projection covers each stage that ran and names the one that dominates a query;
    the agreement table holds every pair of stages with scipy's tau."""
    from scipy.stats import kendalltau

    from explorer.data.corpus import corpus_from_text
    from explorer.pipeline.compare import compare
    from explorer.pipeline.costs import dominant_stage, per_query_parts, projection_rows, unit_costs
    from explorer.views.results_html import agreement_html

    result = compare("pet snakes", corpus_from_text("\n".join(TEXTS)), top_k=6, precision="fp32",
                     first_stage="bm25", rerankers=["late", "cross"])
    costs = unit_costs(result)
    first, late_stage, cross_stage = result.stages
    assert costs.rerankers == [["late interaction", late_stage.ms / 6], ["cross-encoder", cross_stage.ms / 6]]
    parts = per_query_parts(costs)
    assert [ms for _, ms in parts] == pytest.approx([first.ms, late_stage.ms, cross_stage.ms])
    name, share = dominant_stage(costs)
    assert share == pytest.approx(max(first.ms, late_stage.ms, cross_stage.ms) / sum(ms for _, ms in parts))
    rows = {task: seconds for task, _, seconds in projection_rows(costs, 1000)}
    assert rows["One query: the whole pipeline"] == pytest.approx((first.ms + late_stage.ms + cross_stage.ms) / 1000)
    assert rows["One query: cross-encoder over all N"] == pytest.approx(1000 * cross_stage.ms / 6 / 1000)
    assert "Index N documents: BM25 (once)" in rows and "Cluster N sentences: BM25" not in rows

    page = agreement_html(result)
    assert page.count("<tr data-a=") == 3
    ranks = [[hit.id for hit in stage.ranking] for stage in result.stages]
    late_rank = {doc: i for i, doc in enumerate(ranks[1])}
    tau = kendalltau(range(6), [late_rank[doc] for doc in ranks[0]]).statistic
    assert f"{tau:.2f}" in page.split("data-b='1:late'")[1].split("</tr>")[0]


def test_document_token_vectors_are_kept_between_queries(late, monkeypatch):
    from explorer import caches

    caches.LATE_DOCUMENT_VECTORS.clear()
    documents = TEXTS[1:9]
    first = late.score_query("capital of France", documents).scores
    encoded = []
    original = late.token_vectors
    monkeypatch.setattr(late, "token_vectors", lambda texts, progress=None: (encoded.append(list(texts)), original(texts, progress))[1])
    again = late.score_query("capital of France", documents + [TEXTS[10]])
    np.testing.assert_array_equal(again.scores[:-1], first)
    # Only the query and the one new document went through the model.
    assert encoded == [["capital of France"], [TEXTS[10]]]
    assert again.scores[-1] == pytest.approx(brute_force_maxsim(late.model, "capital of France", TEXTS[10]), abs=1e-4)
    # Bounded in bytes, least recently used out first: room for three 10-token documents.
    tiny = caches.BoundedCache("test", 3 * 384 * 4 * 10, getsizeof=caches.late_vectors_size)
    for i in range(4):
        tiny.put(("k", i), (np.zeros((10, 384), dtype=np.float32), False))
        if i == 2:
            assert tiny.get(("k", 0)) is not None  # used: now ("k", 1) is the least recent
    assert len(tiny) == 3 and tiny.get(("k", 1)) is None and tiny.get(("k", 0)) is not None
    assert tiny.currsize == 3 * 384 * 4 * 10
    tiny.put(("k", "huge"), (np.zeros((40, 384), dtype=np.float32), False))  # larger than the whole cache
    assert ("k", "huge") not in tiny and len(tiny) == 3
