"""Why not this document: every stage's standing and every ranker's own explanation, gathered.

Each ranker explains its own score (`explain` beside `score`/`search`); this module only binds the
pipeline as `compare` does, asks where the document stands (`pipeline/why.py`), and collects the
explanations: BM25 per term, the bi-encoder per document token, RRF per source, MaxSim per query
token, the cross-encoder's logit with its length cut, its passages where the document is cut
(does the best passage lie past the cut?), and the quick occlusion first view of its words.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from explorer.budgets import FIRST_VIEW_OCCLUSION_PASSES, MAX_OCCLUSION_PASSES
from explorer.data.corpus import Corpus
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.errors import ExplorerError
from explorer.interpret.attribution import occlusion_attributions
from explorer.interpret.contrast import PairGap, explain_pair_gap
from explorer.interpret.pair import encode_pair, rescoring_model
from explorer.pipeline.compare import first_stage_ranker, parse_rerankers, reranker
from explorer.pipeline.stages import Pipeline, check_query, check_top_k
from explorer.pipeline.why import Standing, StandingContext, document_position, where_it_stands
from explorer.rankers.bi_encoder import BiEncoder
from explorer.rankers.bm25 import BM25
from explorer.rankers.cross_encoder import CrossEncoder, cross_explanation
from explorer.rankers.hybrid import Hybrid
from explorer.rankers.late_interaction import LateInteraction
from explorer.rankers.passage_cross_encoder import PassageCrossEncoder

ATTRIBUTION_VIEWS = ("first", "words", "none")


@dataclass
class WhyReport:
    """One document's answer to "why not this document": where it stands, which stage lost it, and each
    ranker's explanation (JSON-ready by `to_dict`, what `why --json` prints and the page shows)."""

    standing: Standing
    text: str
    explanations: list[dict]  # one per ranker: {"ranker", "kind", "score_name", "score", "explanation": {...}}
    attribution: dict | None = None  # the cross-encoder's occlusion view of the document's words
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Every field, JSON-ready (timings included; they differ between runs)."""
        return asdict(self)


def bind_pipeline(first_stage: str, rerankers: str | Sequence[str], bi_encoder: str, cross_encoder: str,
                  precision: str, cross_label: str | None = None) -> Pipeline:
    """The pipeline `compare` would bind for these names (models load once per process)."""
    kinds = parse_rerankers(rerankers)
    return Pipeline(first_stage_ranker(first_stage, bi_encoder, precision, False),
                    [reranker(kind, cross_encoder, precision, False, cross_label) for kind in kinds])


def why_document(query: str, corpus: Corpus, doc_id: str, first_stage: str = "bi",
                 rerankers: str | Sequence[str] = ("cross",), top_k: int = 10,
                 bi_encoder: str = DEFAULT_BI_ENCODER, cross_encoder: str = DEFAULT_CROSS_ENCODER,
                 precision: str = "auto", attribution: str = "first", cross_label: str | None = None,
                 persist: bool = False, would_rank: bool = True) -> WhyReport:
    """Where `doc_id` stands in every stage of the pipeline for `query`, and every ranker's explanation.

    `attribution`: "first" (occlusion of runs of words, FIRST_VIEW_OCCLUSION_PASSES rescorings), "words"
    (word level, up to MAX_OCCLUSION_PASSES) or "none"; `persist` keeps the corpus embeddings on disk;
    without `would_rank`, what top-k at its first-stage rank would give is left out (the quick answer). Raises ExplorerError for what a user can fix.
    """
    if attribution not in ATTRIBUTION_VIEWS:
        raise ExplorerError(f"Unknown attribution view {attribution!r}: use one of {', '.join(ATTRIBUTION_VIEWS)}.")
    query = check_query(query)
    if len(corpus) == 0:
        raise ExplorerError("The corpus is empty: give at least one document.")
    top_k, notes = check_top_k(top_k, len(corpus))
    position = document_position(corpus, doc_id)
    clock: dict[str, float] = {}
    started = time.perf_counter()
    pipeline = bind_pipeline(first_stage, rerankers, bi_encoder, cross_encoder, precision, cross_label)
    for stage in pipeline.rerankers:
        stage.check_query(query)
    clock["model_loading"] = _ms(started)
    started = time.perf_counter()
    standing, context = where_it_stands(pipeline, corpus, query, position, top_k, persist, would_rank)
    clock["standing"] = _ms(started)
    started = time.perf_counter()
    text = corpus.documents[position].text
    explanations = _first_stage_explanations(pipeline.first_stage, context, corpus, query, standing)
    for stage, scorer, score, probability in zip(standing.rerankers, pipeline.rerankers, context.reranker_scores,
                                                 context.reranker_probabilities):
        explanations.append(_reranker_explanation(scorer, query, text, score, probability, stage.name))
    clock["explanations"] = _ms(started)
    started = time.perf_counter()
    crosses = [s for s in pipeline.rerankers if isinstance(s, (CrossEncoder, PassageCrossEncoder))]
    view = None
    if attribution != "none" and crosses:
        view = _occlusion_view(cross_encoder, cross_label, query, text, attribution)
    clock["attribution"] = _ms(started)
    return WhyReport(standing, text, explanations, view, notes + standing.notes, clock)


def with_would_rank(report: WhyReport, corpus: Corpus, first_stage: str = "bi",
                    rerankers: str | Sequence[str] = ("cross",), bi_encoder: str = DEFAULT_BI_ENCODER,
                    cross_encoder: str = DEFAULT_CROSS_ENCODER, precision: str = "auto",
                    cross_label: str | None = None) -> WhyReport:
    """The quick report (`why_document(..., would_rank=False)`) completed: its standing again with the
    documents between top-k and it scored, so each re-ranker's rank had top-k reached it is said; the
    explanations are kept. The same pipeline names as the quick report's."""
    started = time.perf_counter()
    pipeline = bind_pipeline(first_stage, rerankers, bi_encoder, cross_encoder, precision, cross_label)
    standing, _ = where_it_stands(pipeline, corpus, report.standing.query, document_position(corpus, report.standing.doc_id),
                                  report.standing.top_k)
    notes = [note for note in report.notes if note not in report.standing.notes] + standing.notes
    return WhyReport(standing, report.text, report.explanations, report.attribution, notes,
                     report.timings_ms | {"would_rank": _ms(started)})


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def _entry(ranker, score: float, explanation) -> dict:
    return {"ranker": ranker.info.name, "kind": ranker.info.kind, "score_name": ranker.info.score_name,
            "score": score, "explanation": explanation.to_dict()}


def _first_stage_explanations(first, context: StandingContext, corpus: Corpus, query: str,
                              standing: Standing) -> list[dict]:
    """The first stage's own explanation; a hybrid's (from the standing), then each of its two sources'."""
    index, position = context.index, context.position
    text = corpus.documents[position].text
    score = standing.first_stage.score
    if isinstance(first, Hybrid):
        lexical = first.lexical.explain(index.lexical.with_lengths(corpus.texts), query, position, text)
        dense = first.dense.explain(query, text)
        return [_entry(first, score, context.first_explanation),
                _entry(first.lexical, lexical.index_score, lexical), _entry(first.dense, dense.cosine, dense)]
    if isinstance(first, BM25):
        return [_entry(first, score, first.explain(index.with_lengths(corpus.texts), query, position, text))]
    if isinstance(first, BiEncoder):
        return [_entry(first, score, first.explain(query, text))]
    return []


def _reranker_explanation(scorer, query: str, text: str, score: float, probability: float | None, name: str) -> dict:
    """A re-ranker's explanation of its score: MaxSim per query token; a cross-encoder's logit and cut, and,
    where the document is cut (or the scorer reads passages), its passages: does the best lie past the cut?"""
    if isinstance(scorer, LateInteraction):
        return _entry(scorer, score, scorer.explain(query, text))
    whole = scorer.cross if isinstance(scorer, PassageCrossEncoder) else scorer
    cut = cross_explanation(whole, query, text, score if whole is scorer else float(whole.score_query(query, [text]).scores[0]),
                            probability if whole is scorer else None)
    entry = _entry(scorer, score, cut)
    if isinstance(scorer, PassageCrossEncoder) or cut.cut:
        passages = (scorer if isinstance(scorer, PassageCrossEncoder) else PassageCrossEncoder(scorer)).explain(query, text)
        best = passages.passages[passages.best]
        entry["passages"] = passages.to_dict()
        past = cut.cut and best.first_token >= cut.tokens_read
        entry["best_passage_past_cut"] = bool(past)
        entry["passage_note"] = (
            f"Its best passage (tokens {best.first_token}-{best.last_token}, {best.score:.3f}) lies past the cut at "
            f"token {cut.tokens_read}: the plain cross-encoder never reads it; {passages.aggregate} would score it "
            f"{passages.score:.3f}." if past else
            f"Its best passage starts at token {best.first_token}; {passages.aggregate} scores it {passages.score:.3f}.")
    return entry


def _occlusion_view(cross_encoder: str, cross_label: str | None, query: str, text: str, view: str) -> dict:
    """Occlusion of the document's words by the fp32 rescoring model: runs of words first, words on request."""
    scorer = rescoring_model(cross_encoder, label=cross_label)
    passes = FIRST_VIEW_OCCLUSION_PASSES if view == "first" else MAX_OCCLUSION_PASSES
    found = occlusion_attributions(scorer, [encode_pair(scorer, query, text)], passes)[0]
    return {"view": view, "method": "occlusion", "unit": "logit; full score - score with the run of words deleted",
            "full_logit": found.full_logit, "words_per_span": found.words_per_span, "words_cut": found.words_cut,
            "precision": "fp32",
            "words": [{"word": w.word, "start": w.start, "end": w.end, "contribution": w.logit_drop} for w in found.words]}


def why_contrast(reports: Sequence[WhyReport], cross_encoder: str = DEFAULT_CROSS_ENCODER,
                 cross_label: str | None = None) -> tuple[PairGap, WhyReport, WhyReport] | None:
    """Two documents' "why is A above B" by the cross-encoder: the contrast view's quick first view
    (`explain_pair_gap`, occlusion of runs of words, fp32), A being the one the pipeline's last cross-encoder
    scores higher; None for one report, or a pipeline without a cross-encoder."""
    if len(reports) != 2:
        return None
    scores = []
    for report in reports:
        cross = [stage for stage in report.standing.rerankers if stage.kind == "cross"]
        if not cross:
            return None
        scores.append(cross[-1].score)
    a, b = reports if scores[0] >= scores[1] else reversed(reports)
    gap = explain_pair_gap(rescoring_model(cross_encoder, label=cross_label), a.standing.query, a.text, b.text,
                           "occlusion", first_view=True)
    return gap, a, b
