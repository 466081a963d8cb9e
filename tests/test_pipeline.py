"""The retrieve-then-rerank pipeline and its command line, on the real offline models."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from explorer.pipeline.compare import compare
from explorer.data.corpus import Corpus, Document, parse_txt
from explorer.errors import ExplorerError
from explorer.rankers.cross_encoder import CrossEncoder
from explorer.caches import CORPUS_INDEXES
from explorer.rankers.bi_encoder import BiEncoder, build_index, search
from pair_sets import QUERY_SETS

SNAKE_CORPUS = [
    "Ball pythons are among the most popular pet snakes: they stay small, are calm when handled and eat a thawed mouse every week or two.",
    "Python tutorial: install Python 3, write your first script with print('hello'), and learn variables, loops and functions.",
    "Pandas is a Python library for loading, cleaning and analysing tables of data.",
    "Monty Python was a British comedy troupe famous for Flying Circus.",
    "Garter snakes are common in North American gardens and are harmless to people.",
    "PyCharm is an integrated development environment for Python programmers.",
]


@pytest.fixture(scope="module")
def passages_corpus():
    texts = [p for _, ps in QUERY_SETS for p in ps]
    return Corpus([Document(str(i), t) for i, t in enumerate(texts)], name="passages")


def test_faiss_top_k_equals_brute_force(bi_model):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.choice(5000, 5)] + 0.1 * rng.standard_normal((5, 384)).astype(np.float32)
    scores, positions = search(build_index(vectors), queries, 20)
    brute = queries @ vectors.T
    for row in range(5):
        expected = np.argsort(-brute[row], kind="stable")[:20]
        np.testing.assert_array_equal(positions[row], expected)
        np.testing.assert_allclose(scores[row], brute[row, expected], rtol=1e-5, atol=1e-5)


def test_pipeline_rankings_equal_direct_computation(passages_corpus, bi_model, cross_model):
    query = "when did the Berlin Wall fall?"
    result = compare(query, passages_corpus, top_k=8, precision="fp32")
    cosines = BiEncoder(bi_model, "fp32").encode(passages_corpus.texts) @ BiEncoder(bi_model, "fp32").encode([query])[0]
    expected_bi = np.argsort(-cosines, kind="stable")[:8]
    assert [hit.id for hit in result.first_stage] == [str(i) for i in expected_bi]
    np.testing.assert_allclose([hit.score for hit in result.first_stage], cosines[expected_bi], atol=1e-5)

    logits = CrossEncoder(cross_model, "fp32").score_query(query, [passages_corpus.texts[i] for i in expected_bi]).logits
    expected_cross = [str(expected_bi[i]) for i in np.argsort(-logits, kind="stable")]
    assert [hit.id for hit in result.reranked] == expected_cross
    # The written answer wins after reranking.
    assert result.reranked[0].text.startswith("The Berlin Wall fell on the night of 9 November 1989")
    for hit in result.reranked:
        assert hit.move == hit.first_rank - hit.rank
        assert hit.probability == pytest.approx(1 / (1 + np.exp(-hit.score)), abs=1e-6)
    assert [hit.rank for hit in result.reranked] == list(range(1, 9))


def test_python_snake_reranks_the_pet_passage_first():
    corpus = Corpus([Document(str(i + 1), t) for i, t in enumerate(SNAKE_CORPUS)], name="snakes")
    result = compare("python snake", corpus, top_k=6, precision="fp32")
    ranks = {hit.id: hit.rank for hit in result.reranked}
    assert result.reranked[0].id == "1", [h.text[:40] for h in result.reranked]
    assert ranks["1"] < ranks["2"]


def test_second_query_on_same_corpus_reuses_embeddings(passages_corpus):
    CORPUS_INDEXES.clear()
    first = compare("why is the sky blue", passages_corpus, top_k=3)
    second = compare("symptoms of vitamin D deficiency", passages_corpus, top_k=3)
    assert not first.corpus_index_cached and second.corpus_index_cached
    for result in (first, second):
        assert set(result.timings_ms) >= {"corpus_encoding", "query_encoding", "search", "rerank", "total"}
        assert all(ms >= 0 for ms in result.timings_ms.values())


def test_whole_corpus_scoring_shows_what_the_first_stage_missed(passages_corpus, cross_model):
    query = "how to reverse a list in python"
    result = compare(query, passages_corpus, top_k=3, score_all=True, precision="fp32")
    full = result.reranked_full
    assert len(full) == len(passages_corpus)
    assert sorted(hit.id for hit in full) == sorted(doc.id for doc in passages_corpus.documents)
    logits = CrossEncoder(cross_model, "fp32").score_query(query, passages_corpus.texts).logits
    assert [hit.id for hit in full] == [str(i) for i in np.argsort(-logits, kind="stable")]
    assert {hit.id for hit in full if hit.in_candidates} == {hit.id for hit in result.first_stage}
    assert sorted(hit.first_rank for hit in full) == list(range(1, len(passages_corpus) + 1))


def test_top_k_larger_than_corpus_is_clamped_and_said():
    corpus = parse_txt("one document about cats\nanother about dogs\n")
    result = compare("cats", corpus, top_k=50)
    assert result.top_k == 2 and len(result.reranked) == 2
    assert any("clamped" in note for note in result.notes)


@pytest.mark.parametrize(
    "query, top_k, message",
    [("   ", 3, "query is empty"), ("cats", 0, "at least 1"), ("cats", "many", "whole number")],
)
def test_bad_arguments_are_explained(query, top_k, message):
    with pytest.raises(ExplorerError, match=message):
        compare(query, parse_txt("cats purr\n"), top_k=top_k)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "explorer", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_compare_json_contract(tmp_path):
    path = tmp_path / "snakes.txt"
    path.write_text("\n".join(SNAKE_CORPUS) + "\n")
    run = _cli("compare", "--query", "python snake", "--corpus", str(path), "--top-k", "4", "--all", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["models"] == {
        "bi_encoder": "all-MiniLM-L6-v2 (offline, exact weights)",
        "cross_encoder": "ms-marco-MiniLM-L-12-v2 (int8-derived offline copy)",
    }
    assert [row["rank"] for row in data["bi_encoder"]] == [1, 2, 3, 4]
    assert all(set(row) >= {"id", "text", "score", "rank"} for row in data["bi_encoder"])
    cross = data["cross_encoder"]
    assert {row["id"] for row in cross} == {row["id"] for row in data["bi_encoder"]}
    assert all(set(row) >= {"id", "text", "score", "probability", "rank", "first_stage_rank"} for row in cross)
    assert [row["score"] for row in cross] == sorted((row["score"] for row in cross), reverse=True)
    assert cross[0]["id"] == "1"
    assert len(data["cross_encoder_full"]) == len(SNAKE_CORPUS)
    assert all(isinstance(ms, float) for ms in data["timings_ms"].values())


def test_cli_compare_reads_a_builtin_set(bi_model, cross_model, capsys):
    from explorer.data.builtin_corpora import load_set
    from explorer.cli import main

    assert main(["compare", "--query", "a drink that is not hot", "--corpus", "builtin:negation", "--top-k", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    negation_ids = {document.id for document in load_set("negation").corpus.documents}
    assert data["corpus_size"] == len(negation_ids)
    assert {row["id"] for row in data["cross_encoder"]} <= negation_ids
    assert main(["compare", "--query", "tea", "--corpus", "builtin:no_such_set"]) == 2
    assert "no_such_set" in capsys.readouterr().err


def test_cli_table_and_errors(tmp_path):
    path = tmp_path / "snakes.txt"
    path.write_text("\n".join(SNAKE_CORPUS) + "\n")
    table = _cli("compare", "--query", "python snake", "--corpus", str(path), "--top-k", "3")
    assert table.returncode == 0 and "cross-encoder (logit / prob)" in table.stdout
    missing = _cli("compare", "--query", "x", "--corpus", str(tmp_path / "nope.txt"), "--json")
    assert missing.returncode == 2 and "nope.txt" in missing.stderr and missing.stdout == ""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": \n')
    malformed = _cli("compare", "--query", "x", "--corpus", str(bad), "--json")
    assert malformed.returncode == 2 and "line 2" in malformed.stderr
