"""Lexical retrieval: BM25 over exact (stemmed) words, with the `bm25s` package.

Settings, stated wherever BM25 appears (`SETTINGS`): Lucene's BM25 variant with
k1 = 1.5 and b = 0.75 over the tokens of this analyzer:

1. Unicode NFKC (folds full- and half-width forms, as Lucene's CJKWidthFilter), lower case;
2. runs of Han, Hiragana, Katakana and Hangul become overlapping character bigrams, a run of
   one character stays one token (Lucene's CJKAnalyzer: StandardTokenizer + CJKBigramFilter);
   no stopwords or stemming for them;
3. any other text: every run of letters or digits (regex ``\w+``), one character or more, so
   "1", "C" and "D" are words as in Lucene's StandardAnalyzer (bm25s's default pattern drops
   them); Lucene's 33 English stopwords (bm25s's "en" list) removed; Snowball English stemmer
   (PyStemmer).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import Stemmer

from explorer import caches
from explorer.rankers.base import ProgressCallback, RankerInfo, Retriever

K1, B, METHOD = 1.5, 0.75, "lucene"
_STEMMER = Stemmer.Stemmer("english")

# Scripts written without spaces between words (Lucene's CJKBigramFilter flags: Han, Hiragana,
# Katakana, Hangul), with their extensions, iteration marks and the prolonged sound mark.
CJK_CHARS = (
    "\u1100-\u11ff\u3005-\u3007\u3040-\u309f\u30a0-\u30ff\u3130-\u318f\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff"
    "\U00020000-\U0003134f"
)
# A CJK run, or a run of other letters and digits of any length (bm25s's own default pattern,
# \w\w+, drops one-character words such as "1" or "D").
_PIECES = re.compile(f"([{CJK_CHARS}]+)|([^\\W{CJK_CHARS}]+)")

SETTINGS = (
    f"BM25 ({METHOD} variant, k1 {K1}, b {B}); analyzer: NFKC, lower-cased \\w+ words "
    "(one character or more), Lucene's 33 English stopwords, Snowball English stemmer; CJK text as "
    "character bigrams"
)


def _bm25s():
    # Imported on first use: bm25s brings numba, which costs the app ~1.4 s and ~55 MB at start.
    import bm25s

    return bm25s


@functools.cache
def _stopwords() -> frozenset[str]:
    """Lucene's 33 English stopwords, as bm25s ships them ('en')."""
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def _bigrams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)]


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Each text's tokens as BM25 indexes them (see `SETTINGS`), in text order.

    e.g. "Type 1 diabetes" -> ["type", "1", "diabet"]; "糖尿病" -> ["糖尿", "尿病"].
    """
    stopwords = _stopwords()
    tokens = []
    for text in texts:
        words: list[str] = []
        for cjk, other in _PIECES.findall(unicodedata.normalize("NFKC", text).lower()):
            if cjk:
                words.extend(_bigrams(cjk))
            elif other not in stopwords:
                words.append(_STEMMER.stemWord(other))
        tokens.append(words)
    return tokens


@dataclass
class BM25Index:
    """A corpus's BM25 index (bm25s's sparse score matrix); `retriever` is None when no document
    holds a single token (only stopwords or punctuation): then every score is 0."""

    retriever: object | None  # bm25s.BM25
    size: int

    def holds(self, token: str) -> bool:
        """Whether `token` (already analysed by `tokenize`) occurs anywhere in the indexed corpus; False for
        an index of an empty vocabulary."""
        return self.retriever is not None and token in self.retriever.vocab_dict


class BM25(Retriever):
    """BM25 over the corpus; the score is bm25s's BM25 score (0 when no query token occurs).

    With Lucene's idf, log(1 + (N - df + 0.5) / (df + 0.5)) > 0, a document scores above 0
    exactly when it holds a query token: a score of 0 means "not matched", never a weak match.
    """

    def __init__(self):
        self.info = RankerInfo(
            model_id="bm25", name="BM25 (bm25s)", kind="lexical", score_name="BM25 score",
            precision="n/a", engine=SETTINGS,
        )

    def index_corpus(self, texts, fingerprint, persist=False, progress: ProgressCallback | None = None):
        """A bm25s index of `texts` (k1, b, method from this module), shared through caches.BM25_INDEXES by
        `fingerprint`; returns (index, True when it was cached). `persist` is accepted for the Ranker
        interface and unused: building is cheap."""
        # Every BM25 has the same settings, so an index is shared by fingerprint (caches.BM25_INDEXES).
        key = (SETTINGS, fingerprint)
        if (cached := caches.BM25_INDEXES.get(key)) is not None:
            return cached, True
        tokens = tokenize(texts)
        retriever = None
        if any(tokens):  # bm25s cannot index an empty vocabulary
            retriever = _bm25s().BM25(k1=K1, b=B, method=METHOD)
            retriever.index(tokens, show_progress=False)
        if progress:
            progress(len(texts), len(texts))
        index = BM25Index(retriever, len(texts))
        caches.BM25_INDEXES.put(key, index)
        return index, False

    def encode_queries(self, queries: Sequence[str]) -> list[list[str]]:
        """Each query's BM25 tokens (see `tokenize`), in query order."""
        return tokenize(queries)

    def all_scores(self, index: BM25Index, words: list[str]) -> np.ndarray:
        """Every document's BM25 score for one query's tokens, (corpus size,) float32, in corpus order."""
        known = [w for w in words if index.holds(w)]
        if not known:
            return np.zeros(index.size, dtype=np.float32)
        return np.asarray(index.retriever.get_scores(known), dtype=np.float32)

    def search(self, index: BM25Index, encoded_queries, depth: int):
        """(scores, positions), each (queries, depth): bm25s's BM25 score of every document, best first; ties
        (often all 0) keep corpus order. `depth` is cut to the corpus size."""
        depth = min(depth, index.size)
        scores = np.zeros((len(encoded_queries), depth), dtype=np.float32)
        positions = np.zeros((len(encoded_queries), depth), dtype=np.int64)
        for row, words in enumerate(encoded_queries):
            all_scores = self.all_scores(index, words)
            # Stable: documents with equal scores (all the unmatched ones, at 0) keep corpus order;
            # the results mark them as ties (`pipeline/results.py`).
            order = np.argsort(-all_scores, kind="stable")[:depth]
            positions[row] = order
            scores[row] = all_scores[order]
        return scores, positions

    def search_notes(self, index: BM25Index, encoded_queries) -> dict[int, str]:
        """A note for each query (by row) of which no token occurs in the corpus."""
        return {row: no_match_note(words) for row, words in enumerate(encoded_queries)
                if not any(index.holds(w) for w in words)}


def no_match_note(words: Sequence[str], consequence: str = "every document scores 0 (one tie, shown in corpus order)") -> str:
    """What the page and the JSON say when BM25 matched no query token."""
    shown = ", ".join(repr(w) for w in words[:8]) if words else "none: only stopwords or punctuation"
    return f"BM25 matched no query term (its tokens: {shown}): {consequence}."
