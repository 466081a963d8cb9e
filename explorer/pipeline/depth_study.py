"""The depth panel's and `eval --depths`' one call: the depth sweep, each re-ranker's threshold and
calibration over the judged pairs, and the context budget of each pipeline's ranking.

The threshold analysis is over the judged pairs and the deepest top-k each re-ranker re-ranked, and
reuses the sweep's scored pairs (`CachedScorer`): only judged documents no first stage brought into
the deepest top-k are scored on top of the sweep. The context budget reads
each pipeline's ranking at the deepest swept k (the deepest re-ranked list, so a large budget has
documents to fill it), with tokens counted by the cross-encoder's tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from explorer.data.corpus import Corpus, Query
from explorer.engine.catalog import DEFAULT_CROSS_ENCODER
from explorer.pipeline.context_budget import DEFAULT_BUDGETS, context_budget, format_context_budget, token_counts
from explorer.pipeline.depth import DEFAULT_DEPTHS, DepthSweep, depth_sweep, format_depth_sweep
from explorer.pipeline.experiment import CachedScorer
from explorer.pipeline.measures import Qrels
from explorer.pipeline.stages import StageProgress
from explorer.pipeline.thresholds import judged_scores, threshold_report, threshold_sentence


@dataclass
class DepthStudy:
    """The sweep, per re-ranker entry its `threshold_report`, and the context budget (`context_budget`)."""

    sweep: DepthSweep
    thresholds: dict[str, dict]  # re-ranker entry ("cross", "late") -> threshold_report
    budgets: list[int]
    context: dict[str, dict[int, dict]]  # pipeline -> budget -> means (+ per_query)
    tokenizer_name: str  # whose tokenizer counted the tokens
    budget_k: int  # the depth whose rankings the context budget reads
    extra_pairs: dict[str, int] = field(default_factory=dict)  # pairs scored for the threshold beyond the sweep

    def to_dict(self) -> dict:
        """The JSON of `eval --depths --json`: "depth", "thresholds", "context_budget" (means only)."""
        return {
            "depth": self.sweep.to_dict(),
            "thresholds": self.thresholds,
            "threshold_extra_pairs": self.extra_pairs,
            "context_budget": {name: {str(b): {k: v for k, v in values.items() if k != "per_query"}
                                      for b, values in by_budget.items()} for name, by_budget in self.context.items()},
            "context_budget_k": self.budget_k,
            "tokenizer": self.tokenizer_name,
        }


def depth_study(corpus: Corpus, queries: Sequence[Query], qrels: Qrels, pipelines: str | Sequence[str],
                depths: Sequence[int] = DEFAULT_DEPTHS, budgets: Sequence[int] = DEFAULT_BUDGETS,
                progress: StageProgress | None = None, cross_encoder: str = DEFAULT_CROSS_ENCODER,
                **experiment_options) -> DepthStudy:
    """`depth_sweep`, then thresholds over the judged pairs and the context budget. `experiment_options`
    go to `run_experiment`. Raises ExplorerError as `depth_sweep` and `threshold_report` do."""
    report = progress or (lambda fraction, message: None)
    scorers: dict[str, CachedScorer] = {}
    sweep = depth_sweep(corpus, queries, qrels, pipelines, depths, shared_scorers=scorers,
                        progress=lambda f, m: report(0.9 * f, m), cross_encoder=cross_encoder, **experiment_options)
    report(0.9, "Scoring the judged pairs")
    deepest = sweep.reports[max(sweep.depths)]
    kept = [q for q in queries if q.id in deepest.queries]
    thresholds, extra = {}, {}
    for kind, scorer in scorers.items():
        before = scorer.computed
        candidates: dict[str, list[str]] = {}
        for name in sweep.pipelines:
            if kind in name.split("+")[1:]:
                for qid, ranking in deepest.rankings[name].items():
                    candidates.setdefault(qid, []).extend(ranking[:deepest.top_k])
        thresholds[kind] = threshold_report(judged_scores(kind, scorer, corpus, kept, qrels, candidates))
        extra[kind] = scorer.computed - before
    report(0.95, "Counting tokens")
    tokenizer, tokenizer_name = _tokenizer(scorers, cross_encoder, experiment_options)
    rankings = {name: deepest.rankings[name] for name in sweep.pipelines}
    texts = corpus.by_id()
    needed = {doc: texts[doc].text for runs in rankings.values() for ranking in runs.values() for doc in ranking}
    context = context_budget(rankings, token_counts(tokenizer, needed), qrels, list(budgets))
    report(1.0, "Done")
    return DepthStudy(sweep, thresholds, list(budgets), context, tokenizer_name, max(sweep.depths), extra)


def _tokenizer(scorers: dict[str, CachedScorer], cross_encoder: str, options: dict):
    """The cross-encoder's tokenizer (the bound one when the sweep used it, else loaded) and the model's name."""
    for scorer in scorers.values():
        inner = scorer.inner
        if scorer.info.kind == "cross" and getattr(inner, "tokenizer", None) is not None:
            return inner.tokenizer, scorer.info.name
    from explorer.rankers.cross_encoder import load_cross_encoder

    model = load_cross_encoder(cross_encoder, options.get("precision", "auto"),
                               allow_local_path=options.get("allow_local_models", False))
    return model.tokenizer, model.info.name


def format_depth_study(study: DepthStudy) -> str:
    """The readable text of `eval --depths`: the sweep's table, the thresholds, the context budget."""
    lines = [format_depth_sweep(study.sweep), "", "Score threshold (judged and re-ranked documents; relevant = grade >= 1):"]
    lines += [f"  {threshold_sentence(result)}" for result in study.thresholds.values()]
    lines += ["", f"Rankings at k = {study.budget_k}. " + format_context_budget(study.context, study.tokenizer_name)]
    return "\n".join(lines)
