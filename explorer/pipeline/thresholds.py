"""Where to cut a re-ranked list: a score threshold, and whether the probability column is calibrated.

Over the judged documents of the labelled queries (every (query, document) pair in the qrels whose
document is in the corpus) and the documents the re-ranker re-ranked (the deepest top-k; unjudged ones
count as grade 0, as trec_eval counts them, and are shown apart), each scored by the re-ranker: the distribution of its scores per grade,
precision / recall / F1 of keeping the documents scoring at or above a threshold (relevant = grade
>= 1, as trec_eval counts it), the F1-maximising threshold, and for a re-ranker with a probability
column (a cross-encoder's "sigmoid(logit)", named by its `probability_name`) a reliability diagram
and the expected calibration error over equal-width bins of [0, 1]. With pooled labels, unjudged
documents make precision a lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explorer.data.corpus import Corpus, Query
from explorer.errors import ExplorerError
from explorer.pipeline.measures import Qrels
from explorer.rankers.base import PairScorer

CALIBRATION_BINS = 10


@dataclass
class JudgedScores:
    """A re-ranker's scores of the pairs analysed: parallel arrays, one entry per (query, document)."""

    reranker: str  # the entry, e.g. "cross"
    model: str
    query_ids: list[str]
    doc_ids: list[str]
    grades: np.ndarray  # (n,) int; an unjudged document has grade 0, as trec_eval counts it
    judged: np.ndarray  # (n,) bool: the document has a label for the query
    scores: np.ndarray  # (n,) float64: the ranking score (a logit for a cross-encoder)
    probabilities: np.ndarray | None  # (n,) float64 in [0, 1], or None (MaxSim has none)
    probability_name: str  # e.g. "sigmoid(logit)"; "" when there is no probability column


def judged_scores(kind: str, scorer: PairScorer, corpus: Corpus, queries: Sequence[Query], qrels: Qrels,
                  candidates: dict[str, Sequence[str]] | None = None) -> JudgedScores:
    """Score with `scorer` every judged (query, document) pair of `queries` whose document is in the corpus,
    and every document of `candidates` (query id -> the re-ranked top-k; unjudged ones get grade 0, as
    trec_eval counts them). A `CachedScorer` reuses pairs a depth sweep already scored. Raises
    ExplorerError when there is nothing to score."""
    texts = corpus.by_id()
    rows = []
    for q in queries:
        grades = qrels.get(q.id, {})
        docs = dict.fromkeys([doc for doc in sorted(grades) if doc in texts] + list((candidates or {}).get(q.id, [])))
        rows += [(q, doc, grades.get(doc, 0), doc in grades) for doc in docs]
    if not rows:
        raise ExplorerError("No judged document of these queries is in the corpus: there is nothing to threshold.")
    scored = scorer.score([q.text for q, *_ in rows], [texts[doc].text for _, doc, *_ in rows])
    return JudgedScores(
        reranker=kind, model=scorer.info.name, query_ids=[q.id for q, *_ in rows], doc_ids=[r[1] for r in rows],
        grades=np.array([r[2] for r in rows], dtype=np.int64), judged=np.array([r[3] for r in rows], dtype=bool),
        scores=np.asarray(scored.scores, dtype=np.float64),
        probabilities=None if scored.probabilities is None else np.asarray(scored.probabilities, dtype=np.float64),
        probability_name=scorer.info.probability_name if scored.probabilities is not None else "",
    )


@dataclass
class ThresholdCurve:
    """Keeping the documents with score >= threshold, for each distinct score as the threshold (high to low)."""

    thresholds: np.ndarray  # (t,) descending
    kept: np.ndarray  # (t,) documents kept
    precision: np.ndarray  # (t,) relevant kept / kept
    recall: np.ndarray  # (t,) relevant kept / relevant judged
    f1: np.ndarray  # (t,) harmonic mean of precision and recall (0 where both are 0)
    relevant: int  # judged documents with grade >= 1

    def best(self) -> dict:
        """The F1-maximising threshold (the highest such threshold on ties: fewest documents kept)."""
        i = int(np.argmax(self.f1))  # first maximum = highest threshold
        return {"threshold": float(self.thresholds[i]), "precision": float(self.precision[i]),
                "recall": float(self.recall[i]), "f1": float(self.f1[i]), "kept": int(self.kept[i])}


def threshold_curve(scores: Sequence[float], grades: Sequence[int]) -> ThresholdCurve:
    """Precision, recall and F1 of `score >= t` against grade >= 1, at every distinct score t.
    Raises ExplorerError when nothing is judged relevant (recall is undefined)."""
    scores, grades = np.asarray(scores, dtype=np.float64), np.asarray(grades)
    relevant = grades >= 1
    if not relevant.any():
        raise ExplorerError("No judged document is relevant (grade >= 1): precision and recall are undefined.")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_relevant = scores[order], relevant[order]
    hits, taken = np.cumsum(sorted_relevant), np.arange(1, len(scores) + 1)
    # The last position of each distinct score: a threshold keeps every document tied with it.
    last = np.flatnonzero(np.r_[sorted_scores[1:] != sorted_scores[:-1], True])
    tp, kept = hits[last].astype(np.float64), taken[last].astype(np.float64)
    precision, recall = tp / kept, tp / relevant.sum()
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return ThresholdCurve(sorted_scores[last], kept.astype(np.int64), precision, recall, f1, int(relevant.sum()))


def score_distribution(scores: Sequence[float], grades: Sequence[int],
                       judged: Sequence[bool] | None = None) -> dict[str, dict]:
    """Per grade ("0", "1", "2"; "unjudged" apart when `judged` is given): count, mean, median, min, max
    and the scores themselves (for a histogram)."""
    scores, grades = np.asarray(scores, dtype=np.float64), np.asarray(grades)
    judged = np.ones(len(scores), dtype=bool) if judged is None else np.asarray(judged, dtype=bool)
    groups = {str(g): judged & (grades == g) for g in sorted(set(grades[judged].tolist()))}
    if not judged.all():
        groups["unjudged"] = ~judged
    result = {}
    for name, where in groups.items():
        values = scores[where]
        result[name] = {"count": int(len(values)), "mean": float(values.mean()), "median": float(np.median(values)),
                              "min": float(values.min()), "max": float(values.max()), "scores": values.tolist()}
    return result


@dataclass
class Calibration:
    """A reliability diagram over `bins` equal-width bins of [0, 1] and its expected calibration error."""

    edges: np.ndarray  # (bins + 1,) 0, 0.1, ..., 1; bin i holds p in (edges[i], edges[i+1]] (bin 0 also 0)
    count: np.ndarray  # (bins,) pairs per bin
    mean_probability: np.ndarray  # (bins,) mean p in the bin (nan where empty)
    fraction_relevant: np.ndarray  # (bins,) share with grade >= 1 (nan where empty)
    ece: float  # sum over bins of count / n x |fraction relevant - mean p|


def calibration(probabilities: Sequence[float], grades: Sequence[int], bins: int = CALIBRATION_BINS) -> Calibration:
    """Bin the probabilities as scikit-learn's `calibration_curve(strategy="uniform")` does (a p on an inner
    edge goes to the lower bin) and compare each bin's mean p with its share of relevant (grade >= 1)
    documents. Raises ExplorerError for an empty input or a p outside [0, 1]."""
    p, relevant = np.asarray(probabilities, dtype=np.float64), np.asarray(grades) >= 1
    if len(p) == 0:
        raise ExplorerError("No probabilities to calibrate.")
    if p.min() < 0 or p.max() > 1:
        raise ExplorerError("The probability column has values outside [0, 1]: it is not a probability.")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], p)
    count = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=p, minlength=bins)
    hits = np.bincount(which, weights=relevant.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p, share = sums / count, hits / count
    filled = count > 0
    ece = float(np.sum(count[filled] / len(p) * np.abs(share[filled] - mean_p[filled])))
    return Calibration(edges, count, np.where(filled, mean_p, np.nan), np.where(filled, share, np.nan), ece)


def threshold_report(judged: JudgedScores) -> dict:
    """Everything the threshold panel and `eval --depths --json` show for one re-ranker: the distribution per
    grade, the precision/recall/F1 curve, its best threshold, and calibration when there is a probability column."""
    curve = threshold_curve(judged.scores, judged.grades)
    result = {
        "reranker": judged.reranker, "model": judged.model, "pairs": len(judged.scores),
        "relevant": curve.relevant, "unjudged": int((~judged.judged).sum()),
        "distribution": score_distribution(judged.scores, judged.grades, judged.judged),
        "curve": {"threshold": curve.thresholds.tolist(), "kept": curve.kept.tolist(),
                  "precision": curve.precision.tolist(), "recall": curve.recall.tolist(), "f1": curve.f1.tolist()},
        "best_f1": curve.best(), "probability_name": judged.probability_name, "calibration": None,
    }
    if judged.probabilities is not None:
        cal = calibration(judged.probabilities, judged.grades)
        result["calibration"] = {
            "edges": cal.edges.tolist(), "count": cal.count.tolist(),
            "mean_probability": [None if np.isnan(v) else float(v) for v in cal.mean_probability],
            "fraction_relevant": [None if np.isnan(v) else float(v) for v in cal.fraction_relevant],
            "ece": cal.ece,
        }
    return result


def threshold_sentence(result: dict) -> str:
    """The threshold panel's plain words for one re-ranker."""
    best = result["best_f1"]
    text = (f"{result['reranker']} ({result['model']}): over {result['pairs']} pairs "
            f"({result['relevant']} relevant; {result['unjudged']} unjudged, counted as not relevant), keeping scores ≥ {best['threshold']:.3f} maximises F1 at "
            f"{best['f1']:.3f} (precision {best['precision']:.3f}, recall {best['recall']:.3f}, {best['kept']} kept).")
    cal = result["calibration"]
    if cal is not None:
        text += (f" Its {result['probability_name']} column: expected calibration error {cal['ece']:.3f} over "
                 f"{len(cal['count'])} equal-width bins.")
    return text
