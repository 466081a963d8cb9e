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
from dataclasses import asdict, dataclass, field

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
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (size,) tokens per document

    def with_lengths(self, texts: Sequence[str]) -> BM25Index:
        """Itself, its documents' analysed lengths filled in from `texts` where the index came without them
        (a prebuilt bm25s folder stores scores, not lengths)."""
        if self.lengths.size != self.size:
            self.lengths = np.array([len(t) for t in tokenize(texts)], dtype=np.int64)
        return self

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
        index = BM25Index(retriever, len(texts), np.array([len(t) for t in tokens], dtype=np.int64))
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

    def explain(self, index: BM25Index, query: str, position: int, text: str) -> BM25Explanation:
        """Document `position`'s BM25 score for `query`, term by term (`explain_bm25`)."""
        return explain_bm25(index, query, position, text)

    def search_notes(self, index: BM25Index, encoded_queries) -> dict[int, str]:
        """A note for each query (by row) of which no token occurs in the corpus."""
        return {row: no_match_note(words) for row, words in enumerate(encoded_queries)
                if not any(index.holds(w) for w in words)}


@dataclass
class QueryWord:
    """One word of the query as BM25's analyzer treats it."""

    word: str  # as typed (NFKC, lower case)
    term: str | None  # the indexed term it became (stemmed, or a CJK bigram); None when dropped as a stopword
    stopword: bool
    stemmed: bool  # the term differs from the word
    in_corpus: bool  # the term occurs in some document (else it cannot score)


@dataclass
class TermShare:
    """One query term's part of a document's BM25 score (Lucene variant, as bm25s computes it):
    share = idf * tf / (tf + k1 * (1 - b + b * doc_length / average_length)), times its count in the query."""

    term: str
    query_count: int  # times the analysed query holds the term (bm25s adds each occurrence)
    tf: int  # occurrences in the document
    df: int  # documents holding the term
    idf: float  # log(1 + (N - df + 0.5) / (df + 0.5))
    length_norm: float  # 1 - b + b * doc_length / average_length
    share: float  # this term's part of the score


@dataclass
class BM25Explanation:
    """Why one document has its BM25 score for one query: the analysed query and each term's share.

    `score` is the sum of the shares; `index_score` is bm25s's own score for the document (float32)."""

    query: str
    words: list[QueryWord]
    terms: list[TermShare]
    score: float
    index_score: float
    doc_length: int  # document tokens after analysis
    average_length: float  # over the corpus
    documents: int  # N
    k1: float = K1
    b: float = B
    settings: str = SETTINGS
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Every field, JSON-ready."""
        return asdict(self)


def analyse_query(query: str, index: BM25Index) -> list[QueryWord]:
    """Each word of the query as `tokenize` treats it: kept (and stemmed to what) or dropped as a
    stopword, and whether its term occurs in the indexed corpus."""
    stopwords = _stopwords()
    words: list[QueryWord] = []
    for cjk, other in _PIECES.findall(unicodedata.normalize("NFKC", query).lower()):
        if cjk:
            words.extend(QueryWord(g, g, False, False, index.holds(g)) for g in _bigrams(cjk))
        elif other in stopwords:
            words.append(QueryWord(other, None, True, False, False))
        else:
            term = _STEMMER.stemWord(other)
            words.append(QueryWord(other, term, False, term != other, index.holds(term)))
    return words


def explain_bm25(index: BM25Index, query: str, position: int, text: str) -> BM25Explanation:
    """The BM25 score of document `position` (whose text is `text`) for `query`, term by term, from tf,
    df, idf and length normalisation; df is the number of documents bm25s stored a score for."""
    words = analyse_query(query, index)
    counts: dict[str, int] = {}
    for word in words:
        if word.term is not None:
            counts[word.term] = counts.get(word.term, 0) + 1
    doc_terms = tokenize([text])[0]
    doc_length = len(doc_terms)
    average = float(index.lengths.mean()) if index.lengths.size else 0.0
    terms, notes = [], []
    if index.lengths.size and int(index.lengths[position]) != doc_length:
        raise ValueError("the text is not the indexed document at this position")
    indptr = index.retriever.scores["indptr"] if index.retriever is not None else None
    norm = 1 - B + B * doc_length / average if average else 1.0
    for term, count in counts.items():
        if not index.holds(term):
            continue
        column = index.retriever.vocab_dict[term]
        df = int(indptr[column + 1] - indptr[column])
        idf = float(np.log(1 + (index.size - df + 0.5) / (df + 0.5)))
        tf = doc_terms.count(term)
        share = count * idf * tf / (tf + K1 * norm) if tf else 0.0
        terms.append(TermShare(term, count, tf, df, idf, norm, share))
    unseen = [w.word for w in words if w.term is not None and not w.in_corpus]
    if unseen:
        notes.append(f"Never seen in the corpus, so they cannot score: {', '.join(unseen)}.")
    dropped = [w.word for w in words if w.stopword]
    if dropped:
        notes.append(f"Dropped as stopwords: {', '.join(dropped)}.")
    known = [w.term for w in words if w.term is not None and w.in_corpus]
    index_score = float(index.retriever.get_scores(known)[position]) if known else 0.0
    return BM25Explanation(query, words, terms, float(sum(t.share for t in terms)), index_score, doc_length,
                           average, index.size, notes=notes)


def no_match_note(words: Sequence[str], consequence: str = "every document scores 0 (one tie, shown in corpus order)") -> str:
    """What the page and the JSON say when BM25 matched no query token."""
    shown = ", ".join(repr(w) for w in words[:8]) if words else "none: only stopwords or punctuation"
    return f"BM25 matched no query term (its tokens: {shown}): {consequence}."
