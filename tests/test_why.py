"""Where a document stands, top-k or not: the "would have ranked" statement equals actually running
the pipeline with that top-k; a candidate's rank equals the pipeline's; the finder finds by id and words."""

from __future__ import annotations

import pytest

from explorer import caches
from explorer.data.builtin_corpora import load_set
from explorer.errors import ExplorerError
from explorer.interpret.why import why_document
from explorer.pipeline.compare import compare
from explorer.pipeline.why import find_documents, ordinal


def _rank_in(stage, doc_id):
    return next(hit.rank for hit in stage.ranking if hit.id == doc_id)


@pytest.mark.parametrize("first_stage,rerankers", [("bi", ["cross"]), ("bm25", ["late", "cross"]),
                                                   ("hybrid", ["cross:maxp"])])
def test_would_have_ranked_equals_running_the_pipeline_with_that_top_k(first_stage, rerankers):
    labelled = load_set("topic_vs_answer")
    corpus, query = labelled.corpus, labelled.queries[1].text
    top_k = 3
    full = compare(query, corpus, top_k=len(corpus), first_stage=first_stage, rerankers=rerankers, precision="fp32")
    first_order = [hit.id for hit in full.stages[0].ranking]
    checked = 0
    for doc_id in (first_order[1], first_order[top_k], first_order[top_k + 4], first_order[-1]):
        caches.PAIR_SCORES.clear()  # every pair scored afresh, not taken from the runs above
        report = why_document(query, corpus, doc_id, first_stage, rerankers, top_k=top_k, precision="fp32",
                              attribution="none")
        r = first_order.index(doc_id) + 1
        assert report.standing.first_stage.rank == r
        if r > top_k:
            assert report.standing.lost_at == "first stage" and f"top-k {r}" in report.standing.verdict
            run = compare(query, corpus, top_k=r, first_stage=first_stage, rerankers=rerankers, precision="fp32")
            for standing, stage in zip(report.standing.rerankers, run.stages[1:]):
                assert standing.would_rank == _rank_in(stage, doc_id)
                assert f"would rank it {ordinal(standing.would_rank)}" in report.standing.verdict
                checked += 1
        else:
            run = compare(query, corpus, top_k=top_k, first_stage=first_stage, rerankers=rerankers, precision="fp32")
            for standing, stage in zip(report.standing.rerankers, run.stages[1:]):
                assert standing.candidate and standing.rank == _rank_in(stage, doc_id)
            assert report.standing.lost_at == ""
    assert checked >= 3 * len(rerankers)


def test_rank_among_todays_candidates_counts_the_scores_above_it():
    labelled = load_set("topic_vs_answer")
    corpus, query = labelled.corpus, labelled.queries[1].text
    run = compare(query, corpus, top_k=4, first_stage="bm25", rerankers=["cross"], precision="fp32")
    outside = next(d.id for d in corpus.documents if d.id not in {h.id for h in run.stages[0].ranking})
    report = why_document(query, corpus, outside, "bm25", ["cross"], top_k=4, precision="fp32", attribution="none")
    cross = report.standing.rerankers[0]
    above = sum(1 for hit in run.reranked if hit.score >= cross.score)  # hand count over the shown candidates
    assert not cross.candidate and cross.rank == above + 1 and cross.out_of == 5


def test_finder_finds_by_id_then_by_every_word():
    corpus = load_set("topic_vs_answer").corpus
    doc = corpus.documents[5]
    assert find_documents(corpus, doc.id)[0][0] == doc.id
    words = " ".join(doc.text.split()[1:4])
    hits = [i for i, _ in find_documents(corpus, words.upper())]
    assert doc.id in hits
    assert all(all(w.lower() in corpus.by_id()[i].text.lower() for w in words.split()) for i in hits)
    assert find_documents(corpus, "zzzz-not-there") == []


def test_an_unknown_document_is_a_clear_error():
    corpus = load_set("topic_vs_answer").corpus
    with pytest.raises(ExplorerError, match="no document with id"):
        why_document("honey", corpus, "nope", "bm25", ["cross"], attribution="none")


def test_cli_why_prints_the_verdict_and_exits_2_for_an_unknown_document(capsys):
    from explorer.cli import main

    labelled = load_set("topic_vs_answer")
    doc_id = labelled.corpus.documents[-1].id
    assert main(["why", "--query", "honey", "--corpus", "builtin:topic_vs_answer", "--doc", doc_id,
                 "--first-stage", "bm25", "--rerankers", "cross", "--top-k", "3", "--attribution", "none"]) == 0
    out = capsys.readouterr().out
    report = why_document("honey", labelled.corpus, doc_id, "bm25", ["cross"], top_k=3, attribution="none")
    assert report.standing.verdict in out
    assert main(["why", "--query", "honey", "--corpus", "builtin:topic_vs_answer", "--doc", "missing-id"]) == 2
    assert "no document with id" in capsys.readouterr().err


def test_two_documents_contrast_puts_the_higher_cross_encoder_score_first():
    from explorer.interpret.why import why_contrast

    labelled = load_set("topic_vs_answer")
    corpus, query = labelled.corpus, labelled.queries[1].text
    reports = [why_document(query, corpus, d.id, "bm25", ["cross"], top_k=3, precision="fp32", attribution="none")
               for d in corpus.documents[:2]]
    gap, a, b = why_contrast(reports)
    assert a.standing.rerankers[0].score >= b.standing.rerankers[0].score
    assert gap.score_a == pytest.approx(a.standing.rerankers[0].score, abs=1e-4)
    assert gap.score_b == pytest.approx(b.standing.rerankers[0].score, abs=1e-4)
    assert why_contrast(reports[:1]) is None


def test_a_candidate_shows_the_score_its_column_shows():
    labelled = load_set("topic_vs_answer")
    corpus, query = labelled.corpus, labelled.queries[2].text
    run = compare(query, corpus, top_k=5, first_stage="bm25", rerankers=["cross"])
    for hit in run.reranked[:5]:
        report = why_document(query, corpus, hit.id, "bm25", ["cross"], top_k=5, attribution="none")
        assert report.standing.rerankers[0].score == hit.score and report.standing.rerankers[0].rank == hit.rank


def _bm25_top3():
    """A shipped query through bm25+cross at top-3: (corpus, query, run, ids some column shows, two ids none shows)."""
    labelled = load_set("topic_vs_answer")
    corpus, query = labelled.corpus, labelled.queries[1].text
    run = compare(query, corpus, top_k=3, first_stage="bm25", rerankers=["cross"])
    shown = {hit.id for hit in run.stages[0].ranking} | {hit.id for hit in run.reranked[:3]}
    return corpus, query, run, shown, [d.id for d in corpus.documents if d.id not in shown][:2]


def test_judged_relevant_documents_no_column_shows():
    from explorer.pipeline.compare import first_stage_ranker
    from explorer.pipeline.why import unshown_relevant

    corpus, query, run, shown, outside = _bm25_top3()
    inside = next(iter(shown))
    grades = {outside[0]: 2, outside[1]: 0, inside: 1}
    labels = {"query": query, "corpus_name": corpus.name, "corpus_size": len(corpus), "grades": grades}
    bm25 = first_stage_ranker("bm25", "", "auto", False)
    assert [i for i, _ in unshown_relevant(bm25, corpus, query, 3, labels, {h.id for h in run.reranked[:3]})] == [outside[0]]
    assert unshown_relevant(bm25, corpus, "another query", 3, labels, set()) == []


def test_the_workbench_judgments_feed_the_judged_relevant_list():
    """Grades made on the board (the workbench session) name the missing relevant documents, as Evaluate's labels do."""
    from explorer.pipeline.compare import first_stage_ranker
    from explorer.pipeline.why import unshown_relevant
    from explorer.views.workbench import judged_labels, new_bench

    corpus, query, _, shown, outside = _bm25_top3()
    bench = {**new_bench(), "judgments": {query: {outside[0]: {"grade": 3, "reason": ""},
                                                  outside[1]: {"grade": 0, "reason": "off topic"}}}}
    assert judged_labels(new_bench(), query, corpus) is None
    labels = judged_labels(bench, query, corpus)
    bm25 = first_stage_ranker("bm25", "", "auto", False)
    assert [i for i, _ in unshown_relevant(bm25, corpus, query, 3, labels, shown)] == [outside[0]]
