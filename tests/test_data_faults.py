"""Faults found with small inputs (issue 21, section 3): invisible lines, judgments that dangle,
JSON nested too deeply, and the order of exact ties in the page, the run files and the measures.

No model is loaded: every evaluation here runs the BM25 pipeline.
"""

from __future__ import annotations

import io
import json
import zipfile
from contextlib import redirect_stderr

import ir_measures
import pytest
from ir_measures import RR, R, nDCG

from explorer.cli import main
from explorer.data.corpus import corpus_from_text, parse_qrels, read_corpus_bytes, read_queries
from explorer.data.labels import read_labels
from explorer.data.trec_runs import format_run, parse_run, run_rankings
from explorer.errors import ExplorerError
from explorer.pipeline.compare import compare
from explorer.pipeline.experiment import run_experiment
from board_support import first_column as bi_encoder_list

# Lines that show nothing: zero-width space, no-break spaces, word joiner + BOM, a Hangul filler,
# direction marks between spaces, a soft hyphen, a narrow no-break space.
INVISIBLE = ["\u200b", "\u00a0\u00a0", "\u2060\ufeff", "\u3164", " \u200e\u200f ", "\u00ad", "\u202f"]


# --- invisible lines are blank lines in every reader ---------------------------------------------


def test_pasted_and_txt_corpora_skip_invisible_lines():
    text = "\n".join(["cats purr", *INVISIBLE, "dogs bark"])
    for corpus in (corpus_from_text(text), read_corpus_bytes(text.encode(), "c.txt")):
        assert [(d.id, d.text) for d in corpus.documents] == [("1", "cats purr"), (str(len(INVISIBLE) + 2), "dogs bark")]


def test_jsonl_and_csv_corpora_skip_invisible_lines_and_refuse_invisible_text():
    lines = [json.dumps({"id": "a", "text": "cats purr"}), *INVISIBLE, json.dumps({"id": "\u200b", "text": "dogs"})]
    corpus = read_corpus_bytes("\n".join(lines).encode(), "c.jsonl")
    # An invisible id is no id: the document takes its line number, as a missing id does.
    assert [(d.id, d.text) for d in corpus.documents] == [("a", "cats purr"), (str(len(lines)), "dogs")]
    with pytest.raises(ExplorerError, match=r"c\.jsonl, line 2: the \"text\" field is missing or empty"):
        read_corpus_bytes(("{\"text\": \"x\"}\n" + json.dumps({"text": "\u200b\u00a0"})).encode(), "c.jsonl")
    rows = ["id,text", "a,cats purr", *(f"{s},{s}" for s in INVISIBLE), "b,dogs"]
    corpus = read_corpus_bytes("\n".join(rows).encode(), "c.csv")
    assert [(d.id, d.text) for d in corpus.documents] == [("a", "cats purr"), ("b", "dogs")]
    with pytest.raises(ExplorerError, match=r"c\.csv, line 3: the text is empty"):
        read_corpus_bytes("id,text\na,x\nb,\u200b\n".encode(), "c.csv")


def test_queries_qrels_and_runs_skip_invisible_lines(tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join([json.dumps({"_id": "q1", "text": "cats"}), *INVISIBLE]) + "\n", encoding="utf-8")
    assert [(q.id, q.text) for q in read_queries(queries)] == [("q1", "cats")]
    for header, line in (("", "q1 0 d1 1"), ("query-id\tcorpus-id\tscore\n", "q1\td1\t1"),
                         ("", json.dumps({"query_id": "q1", "doc_id": "d1", "relevance": 1}))):
        qrels, _ = parse_qrels(header + "\n".join([*INVISIBLE, line, *INVISIBLE]), "qrels")
        assert qrels == {"q1": {"d1": 1}}
    run = parse_run("\n".join([*INVISIBLE, "q1 Q0 d1 1 2.5 mine", *INVISIBLE]), "mine.run")
    assert run == {"q1": {"d1": 2.5}}


def test_a_beir_zip_with_invisible_lines_loads_what_is_visible(tmp_path):
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("corpus.jsonl", "\n".join([json.dumps({"_id": "d1", "text": "cats purr"}), *INVISIBLE]))
        archive.writestr("queries.jsonl", "\n".join([*INVISIBLE, json.dumps({"_id": "q1", "text": "cats"})]))
        archive.writestr("qrels/test.tsv", "\n".join(["query-id\tcorpus-id\tscore", "q1\td1\t1", *INVISIBLE]))
    data = read_labels(path)
    assert len(data.corpus) == 1 and [q.id for q in data.queries] == ["q1"] and data.qrels == {"q1": {"d1": 1}}


# --- JSON nested too deeply: one message naming file and line, exit 2 ------------------------------

DEEP = "[" * 200_000 + "]" * 200_000


def test_deeply_nested_json_names_the_file_and_line(tmp_path):
    with pytest.raises(ExplorerError, match=r"c\.jsonl, line 2: the JSON is nested too deeply"):
        read_corpus_bytes(("{\"text\": \"x\"}\n" + DEEP).encode(), "c.jsonl")
    with pytest.raises(ExplorerError, match=r"c\.jsonl, line 1: the JSON is nested too deeply"):
        read_corpus_bytes(("{\"text\": " + DEEP + "}").encode(), "c.jsonl")
    with pytest.raises(ExplorerError, match=r"qrels\.jsonl, line 2: the JSON is nested too deeply"):
        parse_qrels("{\"query_id\": \"q\", \"doc_id\": \"d\", \"relevance\": 1}\n{\"query_id\": " + DEEP + "}",
                    "qrels.jsonl")
    corpus = tmp_path / "deep.jsonl"
    corpus.write_text(json.dumps({"text": "cats"}) + "\n" + DEEP + "\n")
    errors = io.StringIO()
    with redirect_stderr(errors):
        assert main(["compare", "--query", "cats", "--corpus", str(corpus), "--first-stage", "bm25",
                     "--rerankers", "none"]) == 2
    assert "deep.jsonl, line 2: the JSON is nested too deeply" in errors.getvalue()
    assert "Traceback" not in errors.getvalue()


# --- dangling judgments load, are counted and named; the measures count them as trec_eval does -----

CORPUS = [{"_id": "d1", "text": "insulin injections treat type 1 diabetes"},
          {"_id": "d2", "text": "vitamin D is made in the skin"},
          {"_id": "d3", "text": "citrus fruit holds vitamin C"}]
QUERIES = [{"_id": "q1", "text": "insulin diabetes"}, {"_id": "q2", "text": "vitamin C citrus"},
           {"_id": "q3", "text": "sun and skin"}, {"_id": "q4", "text": "never judged"}]
# q1: one relevant document in the corpus, one ("ghost") missing; q2: a missing non-relevant one;
# q3: judged, nothing relevant; q4: not judged; q9: judged, absent from the queries file.
QRELS = "q1 0 d1 1\nq1 0 ghost 1\nq2 0 d3 1\nq2 0 ghost2 0\nq3 0 d2 0\nq9 0 d1 1\n"


def _three_files(tmp_path):
    paths = tmp_path / "corpus.jsonl", tmp_path / "queries.jsonl", tmp_path / "qrels.trec"
    paths[0].write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    paths[1].write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    paths[2].write_text(QRELS)
    return [str(p) for p in paths]


def _check_dangling_policy(metrics: dict, per_query: dict, notes: list[str]) -> None:
    # Hand-worked: q1 ranks d1 first but "ghost" is relevant too, unretrievable: R@3 = 1/2,
    # nDCG@10 = 1 / (1 + 1/log2(3)) = 0.61315; RR@10 = 1. q2 finds its one relevant first: all 1.
    ndcg_q1 = 1 / (1 + 1 / 1.5849625007211562)
    assert per_query["q1"] == pytest.approx({"nDCG@10": ndcg_q1, "RR@10": 1.0, "R@3": 0.5})
    assert per_query["q2"] == pytest.approx({"nDCG@10": 1.0, "RR@10": 1.0, "R@3": 1.0})
    assert set(per_query) == {"q1", "q2"}
    assert metrics == pytest.approx({"nDCG@10": (ndcg_q1 + 1) / 2, "RR@10": 1.0, "R@3": 0.75})
    text = "\n".join(notes)
    assert ("2 judgment(s) name a document that is not in the corpus ('ghost', 'ghost2'); the 1 judged relevant "
            "count as relevant and unretrievable") in text
    assert "1 judged query id(s) are not in the queries file and were left out: 'q9'." in text
    assert "1 query(ies) have no judged-relevant document and were left out: 'q3'." in text
    assert "have no judgments and were left out: 'q4'." in text
    assert "Every mean is over 2 queries" in text


def test_dangling_judgments_load_and_count_as_trec_eval_counts_them(tmp_path):
    data = read_labels(*_three_files(tmp_path))
    assert data.qrels["q1"] == {"d1": 1, "ghost": 1}  # kept: the measures must see it
    report = run_experiment(data.corpus, data.queries, data.qrels, "bm25", top_k=3)
    report.notes[:0] = data.notes
    _check_dangling_policy(report.metrics["bm25"], report.per_query["bm25"], report.notes)
    assert report.query_count == 2
    # The same measures from ir_measures over the written run and the full qrels, ghosts included.
    run = parse_run(format_run(report.rankings["bm25"], "bm25"), "bm25.run")
    qrels, _ = parse_qrels(QRELS, "qrels.trec")
    expected = ir_measures.calc_aggregate([nDCG @ 10, R @ 3], {q: qrels[q] for q in ("q1", "q2")}, run)
    assert report.metrics["bm25"]["nDCG@10"] == pytest.approx(expected[nDCG @ 10])
    assert report.metrics["bm25"]["R@3"] == pytest.approx(expected[R @ 3])


def test_dangling_judgments_in_a_beir_zip_and_on_the_upload_form(tmp_path):
    from explorer.ui import eval_tab

    path = tmp_path / "beir.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("beir/corpus.jsonl", "".join(json.dumps(d) + "\n" for d in CORPUS))
        archive.writestr("beir/queries.jsonl", "".join(json.dumps(q) + "\n" for q in QUERIES))
        archive.writestr("beir/qrels/test.tsv", "query-id\tcorpus-id\tscore\n" + QRELS.replace(" 0 ", "\t").replace(" ", "\t"))
    data = read_labels(path)
    report = run_experiment(data.corpus, data.queries, data.qrels, "bm25", top_k=3)
    _check_dangling_policy(report.metrics["bm25"], report.per_query["bm25"], data.notes + report.notes)

    silent = lambda *args, **kwargs: None  # noqa: E731
    for source in ((None, *_three_files(tmp_path)), (str(path), None, None, None)):
        out = eval_tab.run_pipelines("Upload", None, *source, ["bm25"], "bm25", None, 3, progress=silent)
        summary, report_json = out[0], out[10]
        assert "not in the corpus" in summary and "Every mean is over 2 queries" in summary
        _check_dangling_policy(report_json.metrics["bm25"], report_json.per_query["bm25"], report_json.notes)


# --- exact ties: one order on the page, in the run files and in the measures ----------------------


def test_trec_eval_orders_equal_scores_by_document_id_descending_as_strings():
    """What trec_eval does with ties (checked, not assumed): "9" sorts above "10", "b" above "a"."""
    for first, second in (("b", "a"), ("9", "10")):
        run = {"q": {"a" if first == "b" else "10": 1.0, first: 1.0}}
        assert ir_measures.calc_aggregate([RR], {"q": {first: 1}}, run)[RR] == 1.0
        assert ir_measures.calc_aggregate([RR], {"q": {second: 1}}, run)[RR] == 0.5
        assert run_rankings(run)["q"] == [first, second]  # what imported runs are ordered by


def test_ties_are_marked_and_the_page_runs_and_measures_share_their_order():
    texts = ["cats purr when content", "cats purr when content", "dogs bark at night"]
    result = compare("cats purr", corpus_from_text("\n".join(texts)), top_k=3, first_stage="bm25", rerankers=())
    ranking = result.to_dict()["stages"][0]["ranking"]
    # Documents 1 and 2 tie (the same text); the rule: corpus order. 3 matches nothing (0).
    assert [(h["id"], h["rank"], h["shared_rank"], h["tied"]) for h in ranking] == \
        [("1", 1, 1, True), ("2", 2, 1, True), ("3", 3, 3, False)]
    page = bi_encoder_list(result)
    assert page.index("data-doc-id='1'") < page.index("data-doc-id='2'") and page.count("data-tied='true'") == 2
    assert any(note.startswith("Equal scores (marked =") for note in result.notes)
    # The same corpus as a labelled set, where the second of the tied pair is the relevant one.
    corpus = corpus_from_text("\n".join(texts))
    from explorer.data.corpus import Query

    report = run_experiment(corpus, [Query("q", "cats purr")], {"q": {"2": 1}}, "bm25", top_k=3)
    assert report.rankings["bm25"]["q"] == ["1", "2", "3"]  # the page's order
    assert report.per_query["bm25"]["q"]["RR@10"] == 0.5
    # trec_eval over the run file keeps that order (its scores fall strictly with rank).
    written = format_run(report.rankings["bm25"], "bm25")
    assert ir_measures.calc_aggregate([RR], {"q": {"2": 1}}, parse_run(written, "bm25.run"))[RR] == 0.5


def test_faiss_ties_come_back_in_corpus_order_and_whole():
    """FAISS alone returns identical documents last position first, and may cut a tie at k."""
    import faiss
    import numpy as np

    from explorer.rankers.bi_encoder import search

    vectors = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    vectors[[3, 17, 30, 41]] = vectors[3]  # four identical documents
    index = faiss.IndexFlatIP(8)
    index.add(vectors)
    reference = np.argsort(-(vectors.astype(np.float64) @ vectors[3].astype(np.float64)), kind="stable")
    for k in (4, 5, 6, 50):
        scores, positions = search(index, vectors[3:4], k)
        assert list(positions[0]) == list(reference[:k]), k
    assert list(search(index, vectors[3:4], 5)[1][0][3:]) == [3, 17]  # the tie's first two, in corpus order


def test_identical_documents_tie_on_the_bi_encoder_page_in_corpus_order():
    texts = ["A python is a large snake.", "Cats purr.", "A python is a large snake.", "A python is a large snake."]
    result = compare("python snake", corpus_from_text("\n".join(texts)), top_k=2, rerankers=(), precision="fp32")
    assert [(h.id, h.shared_rank, h.tied) for h in result.first_stage] == [("1", 1, True), ("3", 1, True)]
