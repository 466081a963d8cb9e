"""Each ranker's own explanation adds up to the score it shows, against independent references:
bm25s's own scores and tokenizer, sentence-transformers' own embeddings, a scipy recomputation of
RRF, the ranker's MaxSim, and the tokenizer's own offsets for the 512-token cut."""

from __future__ import annotations

import bm25s
import numpy as np
import pytest
from bm25_reference import bm25s_reference
from scipy.stats import rankdata

from explorer.data.builtin_corpora import load_set
from explorer.engine.catalog import BGE_SMALL, DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.rankers.bi_encoder import load_bi_encoder
from explorer.rankers.bm25 import BM25
from explorer.rankers.cross_encoder import load_cross_encoder
from explorer.rankers.hybrid import Hybrid
from explorer.rankers.late_interaction import load_late_interaction

QUERIES = ["what is the capital of France", "the cats are purring while sleeping", "Berlin wall 1989 fell"]


@pytest.mark.parametrize("set_name", ["numbers_entities", "topic_vs_answer", "ambiguity"])
def test_bm25_terms_sum_to_bm25s_score_and_the_analysis_is_bm25s_tokenizer(set_name):
    labelled = load_set(set_name)
    texts = labelled.corpus.texts
    ranker = BM25()
    index, _ = ranker.index_corpus(texts, labelled.corpus.fingerprint)
    for query in QUERIES + [q.text for q in labelled.queries[:4]]:
        words, reference = bm25s_reference(texts, query)
        checked = 0
        for position in range(len(texts)):
            explanation = ranker.explain(index, query, position, texts[position])
            assert explanation.score == pytest.approx(float(reference[position]), abs=1e-5)
            checked += reference[position] > 0
            # Each share is idf * tf / (tf + k1 * norm), recomputed from the document's own counts.
            for term in explanation.terms:
                assert term.share == pytest.approx(
                    term.query_count * term.idf * term.tf / (term.tf + 1.5 * term.length_norm) if term.tf else 0.0)
        assert [w.term for w in explanation.words if w.term is not None] == words
        assert [w.word for w in explanation.words if w.stopword] == [
            w for w in query.lower().split() if w in bm25s.stopwords.STOPWORDS_EN]
    assert checked  # some document matched, so the sums were not all 0 == 0


def test_bm25_analysis_marks_stemmed_stopwords_and_unseen_words():
    texts = ["cats purr softly", "dogs bark loudly at night"]
    ranker = BM25()
    index, _ = ranker.index_corpus(texts, "why-analysis")
    words = {w.word: w for w in ranker.explain(index, "the cats zebras", 0, texts[0]).words}
    assert words["the"].stopword and words["the"].term is None
    assert words["cats"].stemmed and words["cats"].term == "cat" and words["cats"].in_corpus
    assert not words["zebras"].in_corpus


def _st_cosine(library, query, document):
    q = library.encode_query([query], convert_to_numpy=True)[0]
    d = library.encode_document([document], convert_to_numpy=True)[0]
    return float(q @ d / np.linalg.norm(q) / np.linalg.norm(d))


def test_mean_pooling_split_sums_to_sentence_transformers_cosine():
    encoder = load_bi_encoder(DEFAULT_BI_ENCODER, "fp32")
    texts = load_set("few_shared_words").corpus.texts[:6]
    for document in texts:
        explanation = encoder.explain("how do I stop my computer from overheating", document)
        assert explanation.kind == "split"
        reference = _st_cosine(encoder.model.library, "how do I stop my computer from overheating", document)
        assert sum(t.value for t in explanation.tokens) == pytest.approx(reference, abs=1e-5)
        assert explanation.cosine == pytest.approx(reference, abs=1e-5)
        # Word tokens point at their own text in the document.
        for token in explanation.tokens:
            if token.start is not None and not token.token.startswith("##"):
                assert document[token.start:token.end].lower() == token.token


def test_cls_pooled_model_gets_a_view_labelled_as_such():
    encoder = load_bi_encoder(BGE_SMALL, "fp32")
    explanation = encoder.explain("capital of France", "Paris is the capital of France.")
    assert explanation.kind == "view" and "not a split" in explanation.label
    assert explanation.cosine == pytest.approx(
        _st_cosine(encoder.model.library, "capital of France", "Paris is the capital of France."), abs=1e-5)


def test_rrf_shares_sum_to_the_fused_score():
    corpus = load_set("topic_vs_answer").corpus
    hybrid = Hybrid(BM25(), load_bi_encoder(DEFAULT_BI_ENCODER, "fp32"))
    index, _ = hybrid.index_corpus(corpus.texts, corpus.fingerprint)
    query = QUERIES[0]
    scores, positions = hybrid.search(index, hybrid.encode_queries([query]), len(corpus))
    fused = dict(zip(positions[0].tolist(), scores[0].tolist()))
    # Independent: ranks by scipy over bm25s's scores and the bi-encoder's cosines.
    _, lexical = bm25s_reference(corpus.texts, query)
    dense = hybrid.dense.encode(corpus.texts) @ hybrid.dense.encode_queries([query])[0]
    matched = lexical > 0
    lexical_rank = rankdata(-lexical[matched], method="min")
    dense_rank = rankdata(-dense, method="min")
    for position in range(len(corpus)):
        explanation = hybrid.explain(index, query, position)
        assert sum(s.share for s in explanation.sources) == pytest.approx(fused[position], abs=1e-6)
        expected = 1 / (60 + dense_rank[position])
        if matched[position]:
            expected += 1 / (60 + lexical_rank[np.flatnonzero(matched).tolist().index(position)])
        assert explanation.score == pytest.approx(expected, rel=1e-6)


def test_maxsim_shares_sum_to_maxsim():
    late = load_late_interaction()
    documents = load_set("lexical_overlap").corpus.texts[:5]
    scores = late.score_query("who wrote the theory of relativity", documents).scores
    for document, score in zip(documents, scores):
        explanation = late.explain("who wrote the theory of relativity", document)
        assert sum(m.share for m in explanation.matches) == pytest.approx(float(score), abs=1e-5)
        assert [m.token for m in explanation.matches] == late.tokenizer.tokenize("who wrote the theory of relativity")
        for match in explanation.matches:  # each best token is the document token at its span
            assert late.tokenizer.tokenize(document[match.start:match.end])[0].lstrip("#") == match.best_token.lstrip("#")


def test_a_document_past_the_cut_is_marked_at_the_right_token():
    cross = load_cross_encoder(DEFAULT_CROSS_ENCODER, "fp32")
    query = "when was the treaty signed"
    document = " ".join(f"Sentence {i} talks about harbours, ships and weather." for i in range(90)) + \
        " The treaty was signed in 1648."
    explanation = cross.explain(query, document)
    # The tokenizer's own pair encoding, cut as the model reads it: the last document offset it keeps.
    pair = cross.tokenizer(query, document, truncation="only_second", max_length=512, return_offsets_mapping=True)
    kept = [span for span, seq in zip(pair["offset_mapping"], pair.sequence_ids()) if seq == 1]
    assert len(pair["input_ids"]) == 512
    assert explanation.cut and explanation.cut_char == kept[-1][1]
    assert explanation.tokens_read == len(kept)
    alone = cross.tokenizer(document, add_special_tokens=False)
    assert explanation.cut_token == alone.tokens()[len(kept)]
    assert explanation.cut_char < document.index("treaty was signed")
    assert explanation.score == pytest.approx(float(cross.score_query(query, [document]).scores[0]), abs=1e-6)
    short = cross.explain(query, "The treaty was signed in 1648.")
    assert not short.cut and short.tokens_read == short.document_tokens
