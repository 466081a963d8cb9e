"""Why is document A above document B for this query: both scores, their gap, and per word of
each document how much it adds to its own score, by one method; and how far the methods agree.

Every method here reports a word's *contribution* with one sign: positive means the word raises
its document's logit. For occlusion that is Inspect's `logit_drop` (full logit - logit without
the word). `ATTRIBUTION_UNIT` says it per method, and the JSON carries it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from explorer import caches
from explorer.budgets import FIRST_VIEW_OCCLUSION_PASSES, MAX_OCCLUSION_PASSES
from explorer.errors import ExplorerError
from explorer.interpret.attribution import Attribution, gradient_attribution, occlusion_attribution, occlusion_attributions
from explorer.interpret.integrated_gradients import BASELINE, IG_METHOD, IG_STEPS, integrated_gradients
from explorer.interpret.pair import EncodedPair, encode_pair
from explorer.rankers.cross_encoder import CrossEncoder

METHODS = ("occlusion", "ig", "gradxinput")
ATTRIBUTION_UNIT = {
    "occlusion": "logit; contribution = full score - score with the word deleted (positive: the word raises the score; "
                 "Inspect's logit_drop)",
    "ig": f"logit; contribution = integrated gradients of the word's embeddings from the baseline ({BASELINE}), "
          "summed over its pieces (positive: raises the score); a document's contributions sum to score - baseline",
    "gradxinput": "logit, first-order estimate; contribution = gradient x embedding summed over the word's pieces "
                  "(positive: raises the score)",
}


@dataclass
class DocumentAttribution:
    """One document's words and their contributions to its logit, by one method."""

    method: str
    score: float  # the pair's logit
    words: list[dict]  # {"word", "contribution", "start", "end"}; positive raises the score
    words_cut: int = 0  # document words past the model's maximum length, not attributed
    words_per_span: int = 1  # occlusion of a long document deletes a run of words at a time
    baseline_logit: float | None = None  # ig only
    convergence_delta: float | None = None  # ig only
    steps: int | None = None  # ig only

    @property
    def contributions(self) -> np.ndarray:
        """Each word's contribution in logits, shape (words,), in reading order."""
        return np.array([w["contribution"] for w in self.words], dtype=np.float64)


def attribute_document(scorer: CrossEncoder, pair: EncodedPair, method: str, steps: int = IG_STEPS,
                       score: float | None = None) -> DocumentAttribution:
    """Per-word contributions of `pair`'s document to its logit; `score` when already known."""
    if method == "occlusion":
        return _from_occlusion(pair, occlusion_attribution(scorer, pair))
    if method == "ig":
        ig = integrated_gradients(scorer, pair, steps=steps, method=IG_METHOD)
        words = [{"word": w, "contribution": float(d), "start": s, "end": e} for w, d, (s, e) in zip(ig.words, ig.scores, ig.spans)]
        return DocumentAttribution(method, ig.score, words, pair.words_cut, baseline_logit=ig.baseline_logit,
                                   convergence_delta=ig.convergence_delta, steps=steps)
    if method == "gradxinput":
        gradients = gradient_attribution(scorer, pair)
        if score is None:
            score = float(scorer.score_query(pair.query, [pair.document]).logits[0])
        words = [{"word": w, "contribution": float(d), "start": s, "end": e}
                 for w, d, (s, e) in zip(gradients.words, gradients.scores, gradients.spans)]
        return DocumentAttribution(method, score, words, pair.words_cut)
    raise ExplorerError(f"Unknown attribution method {method!r}; choose one of {', '.join(METHODS)}.")


def _from_occlusion(pair: EncodedPair, occlusion: Attribution) -> DocumentAttribution:
    """Occlusion's logit drops as contributions (the same sign: positive raises the score)."""
    words = [{"word": w.word, "contribution": w.logit_drop, "start": w.start, "end": w.end} for w in occlusion.words]
    return DocumentAttribution("occlusion", occlusion.full_logit, words, pair.words_cut, occlusion.words_per_span)


@dataclass
class PairGap:
    """The answer to "why is A above B": JSON-ready through `to_dict`."""

    query: str
    method: str
    attribution_unit: str
    score_a: float
    score_b: float
    gap: float  # score_a - score_b, logits
    attribution_a: list[dict]
    attribution_b: list[dict]
    summary: list[str]
    baseline: str | None = None  # ig only: what the path starts from
    baseline_a: float | None = None
    baseline_b: float | None = None
    convergence_delta_a: float | None = None
    convergence_delta_b: float | None = None
    steps: int | None = None
    notes: list[str] = field(default_factory=list)
    agreement: dict | None = None  # per document, Spearman between the methods (when asked)

    def to_dict(self) -> dict:
        """The contrast as `explain --json` prints it: every field that is set (ig-only fields are absent for
        other methods)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def explain_pair_gap(scorer: CrossEncoder, query: str, doc_a: str, doc_b: str, method: str = "occlusion",
                     steps: int = IG_STEPS, agreement: bool = False, first_view: bool = False) -> PairGap:
    """Score A and B for `query`, and attribute each document's score to its words by `method`.

    `first_view` (occlusion only): each document is occluded in at most
    FIRST_VIEW_OCCLUSION_PASSES runs of words, exact rescorings still, so the page has a view in
    about a second; the word-level view (kept for later) follows it.
    """
    if method not in METHODS:
        raise ExplorerError(f"Unknown attribution method {method!r}; choose one of {', '.join(METHODS)}.")
    pair_a, pair_b = _encode(scorer, query, doc_a, "A"), _encode(scorer, query, doc_b, "B")
    coarse = first_view and method == "occlusion"
    a, b = (None, None) if coarse else (_recall(scorer, pair_a, method, steps), _recall(scorer, pair_b, method, steps))
    if method == "occlusion":
        # Every occluded variant of both documents (or of the one not kept) in one batch; the
        # full documents are scored in it too, so the gap is a difference of two rescorings.
        missing = [pair for pair, found in ((pair_a, a), (pair_b, b)) if found is None]
        passes = FIRST_VIEW_OCCLUSION_PASSES if coarse else MAX_OCCLUSION_PASSES
        computed = iter(_from_occlusion(pair, found) for pair, found in
                        zip(missing, occlusion_attributions(scorer, missing, passes) if missing else []))
        a, b = a or next(computed), b or next(computed)
        score_a, score_b = a.score, b.score
    else:
        # Both scores in one batch, as re-ranking scores them: the gap is a difference of two rescorings.
        score_a, score_b = (float(s) for s in scorer.score_query(query, [pair_a.document, pair_b.document]).logits)
        a = a or attribute_document(scorer, pair_a, method, steps, score_a)
        b = b or attribute_document(scorer, pair_b, method, steps, score_b)
    if not coarse:
        _keep(scorer, pair_a, method, steps, a)
        _keep(scorer, pair_b, method, steps, b)
    notes = []
    if coarse:
        notes.append(f"First view: occlusion deleted runs of up to {max(a.words_per_span, b.words_per_span)} "
                     "words; the word-level view follows.")
    for name, pair, found in (("A", pair_a, a), ("B", pair_b, b)):
        if pair.truncated:
            notes.append(f"Document {name} is longer than the model reads: {pair.words_cut} words past "
                         f"{scorer.max_length} tokens get no attribution.")
        if found.words_per_span > 1 and not coarse:
            notes.append(f"Document {name} is long: occlusion deleted {found.words_per_span} words at a time.")
    result = PairGap(
        query=pair_a.query, method=method, attribution_unit=ATTRIBUTION_UNIT[method],
        score_a=score_a, score_b=score_b, gap=score_a - score_b,
        attribution_a=a.words, attribution_b=b.words, summary=[], notes=notes,
    )
    if method == "ig":
        result.baseline, result.steps = BASELINE, steps
        result.baseline_a, result.baseline_b = a.baseline_logit, b.baseline_logit
        result.convergence_delta_a, result.convergence_delta_b = a.convergence_delta, b.convergence_delta
    result.summary = summarize_gap(result)
    if agreement:
        known = {method: a}, {method: b}
        result.agreement = {
            "A": method_agreement(scorer, pair_a, steps, known[0]),
            "B": method_agreement(scorer, pair_b, steps, known[1]),
        }
    return result


def _kept_key(scorer: CrossEncoder, pair: EncodedPair, method: str, steps: int) -> tuple:
    return (scorer.model.id, scorer.model.source, scorer.precision, pair.query, pair.document, method,
            steps if method == "ig" else None)


def _recall(scorer: CrossEncoder, pair: EncodedPair, method: str, steps: int) -> DocumentAttribution | None:
    # Keyed by everything the numbers depend on: the model and its precision, the query, the
    # document, the method, the steps (caches.KEPT_ATTRIBUTIONS says why they are kept).
    return caches.KEPT_ATTRIBUTIONS.get(_kept_key(scorer, pair, method, steps))


def _keep(scorer: CrossEncoder, pair: EncodedPair, method: str, steps: int, found: DocumentAttribution) -> None:
    caches.KEPT_ATTRIBUTIONS.put(_kept_key(scorer, pair, method, steps), found)


def forget_kept_attributions() -> None:
    """Empty the kept attributions (a benchmark timing a first view needs nothing kept)."""
    caches.KEPT_ATTRIBUTIONS.clear()


def _encode(scorer: CrossEncoder, query: str, document: str, name: str) -> EncodedPair:
    """`encode_pair`, with a message that says which document is at fault."""
    try:
        return encode_pair(scorer, query, document)
    except ExplorerError as error:
        if "document" in str(error).lower():
            raise ExplorerError(f"Document {name}: {error}") from None
        raise


def _key(word: str) -> str:
    """A word for matching across documents: lower case, no surrounding punctuation."""
    return re.sub(r"^\W+|\W+$", "", word.lower())


def _listing(items: list[tuple[str, float]]) -> str:
    return ", ".join(f"{word} ({delta:+.2f})" for word, delta in items)


def summarize_gap(result: PairGap, top: int = 3) -> list[str]:
    """A few plain sentences computed from the numbers in `result`."""
    above = "above" if result.gap > 0 else ("level with" if result.gap == 0 else "below")
    lines = [f"A scores {result.score_a:.2f} and B {result.score_b:.2f} (logits): A is {above} B "
             f"by {abs(result.gap):.2f}. Method: {result.method}."]
    a = [(w["word"], w["contribution"]) for w in result.attribution_a if _key(w["word"])]
    b = [(w["word"], w["contribution"]) for w in result.attribution_b if _key(w["word"])]
    adds_a = sorted((x for x in a if x[1] > 0), key=lambda x: -x[1])[:top]
    lines.append(f"Words that add most to A: {_listing(adds_a)}." if adds_a else "No word of A raises its score.")
    loses_b = sorted((x for x in b if x[1] < 0), key=lambda x: x[1])[:top]
    lines.append(f"Words B loses most on: {_listing(loses_b)}." if loses_b else "No word of B lowers its score.")
    total_a, total_b = {}, {}
    for word, delta in a:
        total_a[_key(word)] = total_a.get(_key(word), 0.0) + delta
    for word, delta in b:
        total_b[_key(word)] = total_b.get(_key(word), 0.0) + delta
    shared = sorted(set(total_a) & set(total_b), key=lambda k: -abs(total_a[k]) - abs(total_b[k]))[:top]
    if shared:
        lines.append("In both documents: " + ", ".join(f"{k} (A {total_a[k]:+.2f}, B {total_b[k]:+.2f})" for k in shared) + ".")
    only_a = sorted((k for k in set(total_a) - set(total_b) if total_a[k] > 0), key=lambda k: -total_a[k])[:top]
    only_b = sorted((k for k in set(total_b) - set(total_a) if total_b[k] > 0), key=lambda k: -total_b[k])[:top]
    if only_a:
        lines.append("Only in A, most helpful: " + ", ".join(f"{k} ({total_a[k]:+.2f})" for k in only_a) + ".")
    if only_b:
        lines.append("Only in B, most helpful: " + ", ".join(f"{k} ({total_b[k]:+.2f})" for k in only_b) + ".")
    return lines


AGREEMENT_NOTE = (
    "Spearman rank correlation of the per-word contributions; every method reads 'positive raises "
    "the score' (occlusion: the logit drop when the word is deleted). Where a "
    "long document was occluded a run of words at a time, the other methods are summed over the same runs."
)


def every_method(scorer: CrossEncoder, pair: EncodedPair, steps: int = IG_STEPS,
                 known: dict[str, DocumentAttribution] | None = None) -> dict[str, DocumentAttribution]:
    """One document's attributions by occlusion, IG and gradient x input (those in `known` reused)."""
    found = dict(known or {})
    for method in METHODS:
        if method not in found:
            found[method] = attribute_document(scorer, pair, method, steps)
    return found


def method_agreement(scorer: CrossEncoder, pair: EncodedPair, steps: int = IG_STEPS,
                     known: dict[str, DocumentAttribution] | None = None) -> dict:
    """How far occlusion, IG and gradient x input rank one document's words alike (Spearman)."""
    return agreement_of(every_method(scorer, pair, steps, known))


def agreement_of(found: dict[str, DocumentAttribution]) -> dict:
    """Spearman between every two of the three methods' attributions of one document."""
    from scipy.stats import spearmanr

    runs = found["occlusion"].words_per_span
    # Align every method to occlusion's units: one entry per word, or per run of `runs` words.
    vectors = {}
    for method, attribution in found.items():
        deltas = attribution.contributions
        if method != "occlusion" and runs > 1:
            deltas = np.array([deltas[i:i + runs].sum() for i in range(0, len(deltas), runs)])
        vectors[method] = deltas
    correlations = {}
    for first, second in (("occlusion", "ig"), ("occlusion", "gradxinput"), ("ig", "gradxinput")):
        x, y = vectors[first], vectors[second]
        rho = spearmanr(x, y).statistic if len(x) > 2 and np.ptp(x) > 0 and np.ptp(y) > 0 else float("nan")
        correlations[f"{first}~{second}"] = None if np.isnan(rho) else float(rho)
    return {"spearman": correlations, "units": len(vectors["occlusion"]), "words_per_unit": runs,
            "note": AGREEMENT_NOTE}


def format_pair_gap(result: PairGap) -> str:
    """The readable form of `explain` for the terminal."""
    lines = [f"Query: {result.query}", *result.summary, f"Unit: {result.attribution_unit}"]
    if result.method == "ig":
        lines.append(
            f"Baseline ({result.baseline}): A {result.baseline_a:.2f}, B {result.baseline_b:.2f}; "
            f"{result.steps} steps, convergence delta A {result.convergence_delta_a:+.4f}, B {result.convergence_delta_b:+.4f}."
        )
    for name, words in (("A", result.attribution_a), ("B", result.attribution_b)):
        lines.append(f"Document {name}: " + " ".join(f"{w['word']}[{w['contribution']:+.2f}]" for w in words))
    if result.agreement:
        for name, found in result.agreement.items():
            pairs = ", ".join(f"{k} {'n/a' if v is None else f'{v:.2f}'}" for k, v in found["spearman"].items())
            lines.append(f"Agreement of methods on {name} (Spearman): {pairs}")
    lines.extend(f"Note: {note}" for note in result.notes)
    return "\n".join(lines)
