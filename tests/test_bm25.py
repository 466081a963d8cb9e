"""BM25 as a first stage: scores equal bm25s called directly, and the CLI's bm25 pipeline."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import bm25s
import numpy as np

from bm25_reference import bm25s_reference

from explorer.cli import main
from explorer.data.builtin_corpora import load_set
from explorer.rankers.bm25 import BM25

QUERIES = ["does the cat purr when content", "Berlin wall 1989", "python snake"]



# The analyzer the ranker states, spelled out for bm25s's own tokenizer in `bm25_reference` (text outside
# CJK scripts): lower-cased runs of letters or digits of ONE character or more, Lucene's English stopwords.
def reference_scores(texts: list[str], query: str) -> np.ndarray:
    """bm25s on its own, with the settings the ranker states (`bm25_reference`)."""
    return bm25s_reference(texts, query)[1]


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


# --- the analyzer: one-character words kept, CJK as bigrams, stated on the page and in the JSON ---------

DIABETES = ["Type 1 diabetes is treated with insulin injections.", "Type 2 diabetes is treated with insulin injections."]
VITAMINS = ["Vitamin C is found in citrus fruit.", "Vitamin D is made in the skin after sun exposure."]


def test_the_analyzer_keeps_one_character_words():
    from explorer.rankers.bm25 import tokenize

    # Hand-worked: lower case, "is"/"with"/"in"/"the" are stopwords, Snowball English stems.
    assert tokenize(DIABETES) == [["type", "1", "diabet", "treat", "insulin", "inject"],
                                  ["type", "2", "diabet", "treat", "insulin", "inject"]]
    assert tokenize(["vitamin D", VITAMINS[0]]) == [["vitamin", "d"], ["vitamin", "c", "found", "citrus", "fruit"]]
    assert tokenize(["a", "I 5 x"]) == [[], ["i", "5", "x"]]  # "a" is a stopword; "i" is not in Lucene's list


def test_type_1_and_type_2_diabetes_score_apart():
    ranker = BM25()
    index, _ = ranker.index_corpus(DIABETES, "diabetes")
    scores, positions = ranker.search(index, ranker.encode_queries(["type 1 diabetes"]), 2)
    assert list(positions[0]) == [0, 1] and scores[0][0] > scores[0][1] > 0  # strictly ordered
    np.testing.assert_allclose(scores[0], reference_scores(DIABETES, "type 1 diabetes")[positions[0]], rtol=1e-6)


def test_vitamin_d_ranks_the_vitamin_d_passage_first():
    ranker = BM25()
    index, _ = ranker.index_corpus(VITAMINS, "vitamins")
    scores, positions = ranker.search(index, ranker.encode_queries(["vitamin D"]), 2)
    assert list(positions[0]) == [1, 0] and scores[0][0] > scores[0][1]
    np.testing.assert_allclose(scores[0], reference_scores(VITAMINS, "vitamin D")[positions[0]], rtol=1e-6)


def test_cjk_text_is_split_into_character_bigrams():
    from explorer.rankers.bm25 import tokenize

    # Lucene's CJKAnalyzer: overlapping bigrams of each run of Han/Hiragana/Katakana/Hangul, a lone
    # character as itself; other text as above; full-width forms folded (NFKC).
    assert tokenize(["糖尿病的治疗"]) == [["糖尿", "尿病", "病的", "的治", "治疗"]]
    assert tokenize(["用 BM25検索 する"]) == [["用", "bm25", "検索", "する"]]
    assert tokenize(["한국어 사전", "カタカナ", "ＡＢＣ１ ｶﾅ"]) == [["한국", "국어", "사전"], ["カタ", "タカ", "カナ"], ["abc1", "カナ"]]


CHINESE = ["糖尿病患者需要注射胰岛素。", "维生素D在皮肤中合成。", "柑橘类水果含有维生素C。", "今天天气很好。"]


def test_a_chinese_query_finds_the_chinese_passage():
    ranker = BM25()
    index, _ = ranker.index_corpus(CHINESE, "chinese")
    encoded = ranker.encode_queries(["胰岛素注射"])
    assert encoded == [["胰岛", "岛素", "素注", "注射"]]
    scores, positions = ranker.search(index, encoded, 4)
    assert positions[0][0] == 0 and scores[0][0] > 0 and (scores[0][1:] == 0).all()
    assert ranker.search_notes(index, encoded) == {}
    # The reference: bm25s over bigram lists made by hand ("。" is punctuation, "D"/"C" are words).
    retriever = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    retriever.index([["糖尿", "尿病", "病患", "患者", "者需", "需要", "要注", "注射", "射胰", "胰岛", "岛素"],
                     ["维生", "生素", "d", "在皮", "皮肤", "肤中", "中合", "合成"],
                     ["柑橘", "橘类", "类水", "水果", "果含", "含有", "有维", "维生", "生素", "c"],
                     ["今天", "天天", "天气", "气很", "很好"]], show_progress=False)
    expected = retriever.get_scores(["胰岛", "岛素", "素注", "注射"])
    np.testing.assert_allclose(scores[0], expected[positions[0]], rtol=1e-6)


def test_no_match_is_said_on_the_stage_in_the_json_and_on_the_page():
    from explorer.data.corpus import corpus_from_text
    from explorer.pipeline.compare import compare
    from board_support import first_column as bi_encoder_list

    result = compare("xyzzy plugh", corpus_from_text("\n".join(VITAMINS + DIABETES)), top_k=3,
                     first_stage="bm25", rerankers=())
    data = result.to_dict()
    note = data["stages"][0]["note"]
    assert note.startswith("BM25 matched no query term (its tokens: 'xyzzi', 'plugh')") and note in data["notes"]
    # Every document scores 0: one tie, every row marked with the rank all share.
    assert [(h["score"], h["shared_rank"], h["tied"]) for h in data["stages"][0]["ranking"]] == [(0.0, 1, True)] * 3
    page = bi_encoder_list(result)
    assert "BM25 matched no query term" in page and page.count("data-tied='true'") == 3
    assert page.count("<span class='tie'") == 3 and "=1</span>" in page
    # The analyzer is named on the page and in the JSON.
    assert data["stages"][0]["analyzer"] == result.stages[0].analyzer
    assert "Snowball English stemmer" in page and "one character or more" in data["stages"][0]["analyzer"]


def test_a_matched_query_has_no_note_and_marks_only_real_ties():
    from explorer.data.corpus import corpus_from_text
    from explorer.pipeline.compare import compare

    result = compare("type 1 diabetes", corpus_from_text("\n".join(DIABETES + VITAMINS)), top_k=3,
                     first_stage="bm25", rerankers=())
    ranking = result.to_dict()["stages"][0]["ranking"]
    assert result.stages[0].note is None and not any("matched no query term" in n for n in result.notes)
    # 1 > 2 > 0 = 0: the third place ties the fourth document, below the top-3, and says so.
    assert [(h["id"], h["shared_rank"], h["tied"]) for h in ranking] == [("1", 1, False), ("2", 2, False), ("3", 3, True)]
    assert any(n.startswith("Equal scores (marked =") for n in result.notes)


def test_an_evaluation_counts_the_queries_bm25_could_not_match():
    from explorer.data.corpus import Query, corpus_from_text
    from explorer.pipeline.experiment import run_experiment

    corpus = corpus_from_text("\n".join(VITAMINS + DIABETES))
    queries = [Query("q1", "vitamin D"), Query("q2", "xyzzy")]
    report = run_experiment(corpus, queries, {"q1": {"2": 1}, "q2": {"1": 1}}, "bm25", top_k=2)
    assert any(n.startswith("BM25 matched no query term for 1 of 2 queries ('xyzzy')") for n in report.notes)
    # Unmatched, every document ties at 0 and is listed in corpus order (the stated tie rule, the page's too).
    assert report.rankings["bm25"]["q2"][:2] == ["1", "2"]
