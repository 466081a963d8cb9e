"""Every shipped labelled corpus parses, its labels point at real documents, and it is big enough."""

from __future__ import annotations

import pytest

from explorer.data.builtin_corpora import list_sets, load_set
from explorer.data.corpus import read_corpus, read_qrels, read_queries

SET_NAMES = [info.name for info in list_sets()]
TEACHING = [info.name for info in list_sets() if not info.generated]


@pytest.mark.parametrize("name", SET_NAMES)
def test_set_parses_and_labels_point_at_documents(name):
    labelled = load_set(name)
    doc_ids = {doc.id for doc in labelled.corpus.documents}
    query_ids = [query.id for query in labelled.queries]
    assert len(query_ids) == len(set(query_ids)), "query ids must be unique"
    assert set(labelled.qrels) <= set(query_ids), "qrels name a query that the queries file lacks"
    for query_id, grades in labelled.qrels.items():
        missing = set(grades) - doc_ids
        assert not missing, f"{name}/{query_id}: labelled ids not in the corpus: {missing}"
        assert set(grades.values()) <= {0, 1, 2}, "grades are 0, 1 or 2"
    for query in labelled.queries:
        grades = labelled.qrels.get(query.id, {})
        assert any(grade > 0 for grade in grades.values()), f"{name}/{query.id} has no relevant document"


@pytest.mark.parametrize("name", TEACHING)
def test_teaching_files_read_with_the_plain_readers(name):
    # The same readers a user's upload goes through, straight from the files.
    info = next(info for info in list_sets() if info.name == name)
    corpus = read_corpus(info.corpus_path())
    assert 15 <= len(corpus) <= 25
    assert all(1 <= doc.text.count(".") + doc.text.count("?") and len(doc.text) < 400 for doc in corpus.documents)
    assert read_queries(info.queries_path) and read_qrels(info.qrels_path)
    assert info.teaches.strip() and info.title.strip()


def test_enough_sets_and_queries():
    teaching_queries = sum(len(load_set(name).queries) for name in TEACHING)
    assert len(TEACHING) >= 6
    assert teaching_queries >= 40


def test_python_docs_is_large_and_its_labels_exist():
    labelled = load_set("python_docs")
    assert len(labelled.corpus) >= 5000
    assert len(labelled.queries) >= 30
    ids = [doc.id for doc in labelled.corpus.documents]
    assert len(ids) == len(set(ids))
    # Passages are real documentation text, each prefixed by the name it documents.
    by_id = labelled.corpus.by_id()
    assert by_id["json.dumps#0"].text.startswith("json.dumps: Serialize")
    assert max(len(doc.text) for doc in labelled.corpus.documents) < 600


def test_python_docs_build_is_deterministic(tmp_path, monkeypatch):
    from explorer.data import python_docs as stdlib_corpus

    first = stdlib_corpus.build_documents()
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    path = stdlib_corpus.ensure_corpus_file()
    assert path.is_relative_to(tmp_path) and not list(path.parent.glob("*.tmp"))
    rebuilt = read_corpus(path, max_documents=100_000, max_bytes=200 * 1024 * 1024)
    assert [(d.id, d.text) for d in rebuilt.documents] == [(d.id, d.text) for d in first]


def test_split_passages_respects_the_limit_and_keeps_words():
    from explorer.data.python_docs import split_passages

    text = "First paragraph. It has two sentences.\n\n" + ("word " * 300) + "\n\nLast."
    passages = split_passages(text, limit=100)
    assert all(len(p) <= 100 for p in passages)
    assert " ".join(passages).split() == text.split()


def test_python_snake_pet_passage_wins_after_reranking():
    # The ambiguity set's anchor case: the pet ball python, not the programming tutorial.
    from explorer.pipeline.compare import compare

    labelled = load_set("ambiguity")
    result = compare("python snake", labelled.corpus, top_k=labelled.info.default_top_k, precision="fp32")
    order = [hit.id for hit in result.reranked]
    full = compare("python snake", labelled.corpus, top_k=len(labelled.corpus), precision="fp32")
    full_order = [hit.id for hit in full.reranked]
    assert order[0] == "python-ball-pet"
    assert full_order.index("python-ball-pet") < full_order.index("python-tutorial")
