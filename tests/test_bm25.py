"""BM25 as a first stage: scores equal bm25s called directly, and the CLI's bm25 pipeline."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import bm25s
import numpy as np
import Stemmer

from explorer.cli import main
from explorer.data.builtin_corpora import load_set
from explorer.rankers.bm25 import BM25, B, K1

QUERIES = ["does the cat purr when content", "Berlin wall 1989", "python snake"]


def reference_scores(texts: list[str], query: str) -> np.ndarray:
    """bm25s on its own, with the settings the ranker states: Lucene BM25, English stopwords, Snowball stemmer."""
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    words = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)[0]
    return retriever.get_scores(words)


def test_scores_and_order_equal_bm25s_called_directly():
    corpus = load_set("negation").corpus
    ranker = BM25()
    index, _ = ranker.index_corpus(corpus.texts, corpus.fingerprint)
    for query in QUERIES + [q.text for q in load_set("negation").queries[:5]]:
        expected = reference_scores(corpus.texts, query)
        scores, positions = ranker.search(index, ranker.encode_queries([query]), len(corpus))
        np.testing.assert_allclose(scores[0], expected[positions[0]], rtol=1e-6)
        assert list(positions[0]) == list(np.argsort(-expected, kind="stable"))
        assert (np.diff(scores[0]) <= 0).all()


def test_the_index_is_built_once_per_corpus():
    ranker = BM25()
    first, cached_first = ranker.index_corpus(["a cat", "a dog"], "fp-1")
    second, cached_second = ranker.index_corpus(["a cat", "a dog"], "fp-1")
    assert first is second and not cached_first and cached_second


def run_cli(*argv: str) -> dict:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert main(list(argv)) == 0
    return json.loads(buffer.getvalue())


def test_cli_bm25_first_stage_is_reranked_by_the_cross_encoder(tmp_path):
    corpus = tmp_path / "corpus.txt"
    texts = [
        "Ball pythons are popular pet snakes.",
        "Python is a programming language.",
        "The snake shed its skin.",
        "Monty Python was a comedy group.",
        "Cats purr when they are content.",
    ]
    corpus.write_text("\n".join(texts) + "\n")
    data = run_cli("compare", "--query", "python snake", "--corpus", str(corpus), "--top-k", "3",
                   "--first-stage", "bm25", "--precision", "fp32", "--json")
    first, cross = data["stages"]
    assert first["kind"] == "lexical" and first["model"] == "bm25" and cross["kind"] == "cross"
    # The first stage is BM25's own order, and the re-ranker sees exactly its top-3.
    expected = np.argsort(-reference_scores(texts, "python snake"), kind="stable")[:3]
    assert [hit["id"] for hit in first["ranking"]] == [str(i + 1) for i in expected]
    assert {hit["id"] for hit in cross["ranking"]} == {hit["id"] for hit in first["ranking"]}
    assert [hit["id"] for hit in cross["ranking"]] == [hit["id"] for hit in data["cross_encoder"]]
    assert "bi_encoder" not in data and data["first_stage"][0]["id"] == first["ranking"][0]["id"]
    assert [hit["rank"] for hit in cross["ranking"]] == [1, 2, 3]
