"""bm25s on its own, with the settings the BM25 ranker states: Lucene BM25, English stopwords, Snowball
stemmer, words of one character or more. The reference the BM25 tests (scores, explanations) compare with."""

from __future__ import annotations

import bm25s
import numpy as np
import Stemmer

ONE_CHARACTER_WORDS = r"(?u)\b\w+\b"  # the analyzer BM25 states: words of one character or more
# Written here, not read from the module under test: k1 = 1.5, b = 0.75, as docs/cli.md states.
K1, B = 1.5, 0.75


def bm25s_reference(texts: list[str], query: str) -> tuple[list[str], np.ndarray]:
    """(the query's terms as bm25s's tokenizer gives them, every document's bm25s score: shape (len(texts),))."""
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=K1, b=B, method="lucene")
    retriever.index(bm25s.tokenize(texts, token_pattern=ONE_CHARACTER_WORDS, stopwords="en", stemmer=stemmer,
                                   show_progress=False), show_progress=False)
    words = bm25s.tokenize([query], token_pattern=ONE_CHARACTER_WORDS, stopwords="en", stemmer=stemmer,
                           return_ids=False, show_progress=False)[0]
    known = [w for w in words if w in retriever.vocab_dict]
    return words, (retriever.get_scores(known) if known else np.zeros(len(texts)))
