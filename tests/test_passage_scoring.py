"""Passage scoring, the remedy for the 512-token cut: a long document whose only answering sentence
is its last ranks last with the cut and first with MaxP; each passage's score is that window scored
alone by sentence-transformers' CrossEncoder; `cross:maxp` runs in compare and in eval pipelines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.data.corpus import Corpus, Document
from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
from explorer.errors import ExplorerError
from explorer.pipeline.compare import compare, parse_rerankers, reranker
from explorer.pipeline.experiment import parse_pipelines, run_experiment

QUERY = "what is the capital of France?"
FILLER = ["Boil the pasta in plenty of salted water for about ten minutes.",
          "Stir the sauce slowly over a low flame until it thickens.",
          "Grate the cheese while the water comes back to the boil.",
          "Drain the pasta and keep a cup of the cooking water aside.",
          "A pinch of pepper finishes the dish before serving."]
LONG = " ".join(FILLER[i % 5] for i in range(70)) + " The capital of France is Paris, its largest city."
DISTRACTORS = ["The Eiffel Tower was completed in 1889.", "Many tourists visit French castles every summer.",
               "Cheese and wine are famous French products."]
CORPUS = Corpus([Document("long", LONG)] + [Document(f"short{i}", t) for i, t in enumerate(DISTRACTORS)], "long-doc")


def test_the_long_document_is_about_900_tokens_and_answers_only_at_its_end():
    scorer = reranker("cross", DEFAULT_CROSS_ENCODER, "fp32", False)
    tokens = scorer.tokenizer(LONG, add_special_tokens=False)["input_ids"]
    assert 850 <= len(tokens) <= 950
    assert LONG.count("Paris") == 1 and LONG.rindex("Paris") > len(LONG) - 60


def test_cut_ranks_it_last_and_maxp_ranks_it_first():
    texts = CORPUS.texts
    plain = reranker("cross", DEFAULT_CROSS_ENCODER, "fp32", False).score_query(QUERY, texts).scores
    maxp = reranker("cross:maxp", DEFAULT_CROSS_ENCODER, "fp32", False).score_query(QUERY, texts).scores
    assert int(np.argmin(plain)) == 0 and int(np.argmax(maxp)) == 0
    # Short documents are one window: their passage score is their own logit.
    np.testing.assert_allclose(maxp[1:], plain[1:], atol=1e-4)


def test_each_passage_score_is_that_window_scored_alone():
    scorer = reranker("cross:maxp", DEFAULT_CROSS_ENCODER, "fp32", False)
    library = scorer.cross.model.library  # sentence-transformers' own CrossEncoder
    explanation = scorer.explain(QUERY, LONG)
    alone = scorer.tokenizer(LONG, add_special_tokens=False, return_offsets_mapping=True)
    assert len(explanation.passages) >= 2 and explanation.passages[-1].last_token == len(alone["input_ids"])
    for passage in explanation.passages:
        # The window's text from the tokenizer's own offsets of the document alone.
        start = alone["offset_mapping"][passage.first_token][0]
        end = alone["offset_mapping"][passage.last_token - 1][1]
        assert (passage.start, passage.end) == (start, end)
        pair = scorer.tokenizer(QUERY, LONG[start:end])["input_ids"]
        assert len(pair) <= 512  # the window fits: nothing of it is cut
        reference = library.predict([(QUERY, LONG[start:end])], activation_fn=torch.nn.Identity())
        assert passage.score == pytest.approx(float(np.asarray(reference).ravel()[0]), abs=1e-4)
    assert explanation.score == pytest.approx(max(p.score for p in explanation.passages))
    assert explanation.best == len(explanation.passages) - 1  # the answer is in the last window


def test_firstp_and_sump_aggregate_the_same_windows():
    windows = reranker("cross:maxp", DEFAULT_CROSS_ENCODER, "fp32", False).explain(QUERY, LONG).passages
    first = reranker("cross:firstp", DEFAULT_CROSS_ENCODER, "fp32", False).score_query(QUERY, [LONG]).scores[0]
    total = reranker("cross:sump", DEFAULT_CROSS_ENCODER, "fp32", False).score_query(QUERY, [LONG]).scores[0]
    assert first == pytest.approx(windows[0].score, abs=1e-4)
    assert total == pytest.approx(sum(w.score for w in windows), abs=1e-3)


def test_cross_maxp_is_a_compare_column_and_an_eval_pipeline():
    assert parse_rerankers("cross:maxp,cross") == ("cross:maxp", "cross")
    with pytest.raises(ExplorerError):
        parse_rerankers("late:maxp")
    result = compare(QUERY, CORPUS, top_k=4, first_stage="bm25", rerankers=["cross", "cross:maxp"], precision="fp32")
    assert result.reranked[0].id == "long"
    assert "MaxP over 512-token windows, stride 256" in result.stages[-1].name
    assert [h.id for h in result.stages[1].ranking][-1] == "long"  # the plain cross-encoder: last
    assert parse_pipelines("bm25+cross:maxp,cross:maxp") == [("bm25", ("cross:maxp",)), ("all", ("cross:maxp",))]
    report = run_experiment(CORPUS, [_query()], {"q1": {"long": 1}}, "bm25+cross,bm25+cross:maxp", top_k=4,
                            precision="fp32", persist_embeddings=False)
    assert report.metrics["bm25+cross:maxp"]["RR@10"] == 1.0
    assert report.metrics["bm25+cross"]["RR@10"] == 0.25


def _query():
    from explorer.data.corpus import Query

    return Query("q1", QUERY)
