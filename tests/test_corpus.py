"""Corpus readers: the formats, their errors, and that nothing but ExplorerError escapes."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.data.corpus import Corpus, corpus_from_text, read_corpus, read_corpus_bytes, read_qrels, read_queries
from explorer.errors import ExplorerError


def test_txt_one_document_per_non_empty_line_with_line_number_ids():
    corpus = read_corpus_bytes(b"first doc\n\n  \nsecond doc\r\nthird\n", "c.txt")
    assert [(d.id, d.text) for d in corpus.documents] == [("1", "first doc"), ("4", "second doc"), ("5", "third")]


def test_jsonl_ids_titles_and_missing_ids():
    data = "\n".join(
        [json.dumps({"id": "a", "text": "alpha", "title": "A"}), json.dumps({"text": "beta"}), ""]
    ).encode()
    corpus = read_corpus_bytes(data, "c.jsonl")
    assert [(d.id, d.text, d.title) for d in corpus.documents] == [("a", "alpha", "A"), ("2", "beta", "")]


def test_csv_with_quoted_fields_and_header():
    data = b'id,text\nx1,"a, quoted ""text"""\nx2,plain\n'
    corpus = read_corpus_bytes(data, "c.csv")
    assert [(d.id, d.text) for d in corpus.documents] == [("x1", 'a, quoted "text"'), ("x2", "plain")]


def test_fingerprint_follows_content_only():
    a = read_corpus_bytes(b"one\ntwo\n", "a.txt")
    b = corpus_from_text("one\ntwo")
    c = corpus_from_text("one\ntwo!")
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize(
    "data, name, message",
    [
        (b"", "c.txt", "no documents"),
        (b"\n \n\t\n", "c.txt", "no documents"),
        (b'{"id": "a", "text": "ok"}\n{"id": "b", "text": "x"\n', "c.jsonl", "line 2"),
        (b'{"id": "a", "text": "ok"}\n["not", "an object"]\n', "c.jsonl", "line 2"),
        (b'{"id": "a", "text": ""}\n', "c.jsonl", "line 1"),
        (b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "c.jsonl", "appears twice"),
        (b"id,text\n1,ok\n2,too,many\n", "c.csv", "line 3"),
        (b"id,body\n1,ok\n", "c.csv", "'text' column"),
        (b'id,text\n1,"unterminated\n', "c.csv", "line"),
        (b"caf\xe9 au lait\n", "c.txt", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "c.txt", "binary"),
        (b"text\n", "c.pdf", "unsupported file type"),
    ],
)
def test_malformed_input_is_explained(data, name, message):
    with pytest.raises(ExplorerError, match=message):
        read_corpus_bytes(data, name)


def test_caps_on_documents_and_bytes():
    with pytest.raises(ExplorerError, match="limit is 3"):
        read_corpus_bytes(b"a\nb\nc\nd\n", "c.txt", max_documents=3)
    with pytest.raises(ExplorerError, match="MB"):
        read_corpus_bytes(b"x" * 2000, "c.txt", max_bytes=1000)


def test_read_corpus_missing_file(tmp_path):
    with pytest.raises(ExplorerError, match="Cannot read"):
        read_corpus(tmp_path / "missing.txt")


def test_queries_and_qrels_in_both_label_formats(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"id": "q1", "text": "first"}\n{"id": "q2", "text": "second"}\n')
    (tmp_path / "qrels.trec").write_text("q1 0 d1 2\nq1 0 d2 0\nq2 0 d3 1\n")
    (tmp_path / "qrels.jsonl").write_text(
        '{"query_id": "q1", "doc_id": "d1", "relevance": 2}\n{"query_id": "q1", "doc_id": "d2", "relevance": 0}\n'
        '{"query_id": "q2", "doc_id": "d3", "relevance": 1}\n'
    )
    assert [(q.id, q.text) for q in read_queries(tmp_path / "q.jsonl")] == [("q1", "first"), ("q2", "second")]
    expected = {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    assert read_qrels(tmp_path / "qrels.trec") == expected == read_qrels(tmp_path / "qrels.jsonl")
    (tmp_path / "bad.trec").write_text("q1 0 d1\n")
    with pytest.raises(ExplorerError, match="line 1"):
        read_qrels(tmp_path / "bad.trec")


def _check_any_bytes(data: bytes, name: str) -> None:
    try:
        corpus = read_corpus_bytes(data, name)
    except ExplorerError as error:
        assert str(error)
        return
    assert isinstance(corpus, Corpus) and len(corpus) > 0
    assert len({doc.id for doc in corpus.documents}) == len(corpus)
    assert all(doc.text and doc.text == doc.text.strip() for doc in corpus.documents)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=2000), name=st.sampled_from(["c.txt", "c.jsonl", "c.csv"]))
def test_any_bytes_give_a_corpus_or_a_clear_error(data, name):
    _check_any_bytes(data, name)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(
    records=st.lists(
        st.dictionaries(st.sampled_from(["id", "text", "title", "_id", "other"]), json_values, max_size=4),
        max_size=8,
    )
)
def test_any_jsonl_records_give_a_corpus_or_a_clear_error(records):
    data = "\n".join(json.dumps(record) for record in records).encode()
    _check_any_bytes(data, "c.jsonl")


@FUZZ
@given(rows=st.lists(st.lists(st.text(max_size=12), max_size=4), max_size=8))
def test_any_csv_rows_give_a_corpus_or_a_clear_error(rows):
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer).writerows([["id", "text"], *rows])
    _check_any_bytes(buffer.getvalue().encode("utf-8", errors="surrogatepass"), "c.csv")
