"""How deep to re-rank: each pipeline at re-rank depths k in {5, 10, 20, 50, 100, 200}, measured.

For every k the pipeline is run by the one evaluation runner (`experiment.run_experiment` with
top_k = k), so a depth's numbers are exactly what `eval --pipelines ... --top-k k` reports. The
runs go deepest first and share one `CachedScorer` per re-ranker, so each (query, document) pair
is scored once, for the deepest k, and every smaller k's top-k (a prefix of the same first-stage
ranking) finds its pairs already scored: a re-ranker scores at most queries x max depth pairs per
first stage.

Per k: nDCG@10 and RR@10 of the pipeline, R@k (the first stage's recall at k: re-ranking permutes
the top-k only, so this is the ceiling the re-ranker works under), and ms per query: the first
stage's measured query time in that run plus the re-ranker's measured ms per pair (over every pair
it scored) times k. The chosen k is the smallest within `TOLERANCE` nDCG@10 of the best k.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from explorer.budgets import MAX_EVAL_TOP_K, check_whole_number
from explorer.data.corpus import Corpus, Query
from explorer.errors import ExplorerError
from explorer.pipeline.experiment import (
    WHOLE_CORPUS, CachedScorer, ExperimentReport, parse_pipelines, pipeline_name, run_experiment,
)
from explorer.pipeline.measures import Qrels
from explorer.pipeline.stages import StageProgress

DEFAULT_DEPTHS = (5, 10, 20, 50, 100, 200)
TOLERANCE = 0.005  # nDCG@10: how close to the best depth the chosen (cheaper) depth must be


def parse_depths(value: str | Sequence[int], limit: int = MAX_EVAL_TOP_K) -> list[int]:
    """"5,10,20" -> [5, 10, 20] (sorted, each once). Raises ExplorerError for a non-number, a depth
    below 1 or above `limit` (the page's MAX_EVAL_TOP_K; the command line's MAX_CLI_DEPTH), or none at all."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    items = [v for v in items if v != ""]
    if not items:
        raise ExplorerError("Give at least one re-rank depth, e.g. --depths 5,10,20,50,100.")
    depths = sorted({check_whole_number(v, "re-rank depth") for v in items})
    if depths[0] < 1 or depths[-1] > limit:
        raise ExplorerError(f"Re-rank depths must be between 1 and {limit} (got {depths[0]}..{depths[-1]}).")
    return depths


def depths_for_corpus(depths: Sequence[int], corpus_size: int) -> tuple[list[int], list[str]]:
    """The depths a corpus allows: those up to its size, plus the size itself when a deeper one was
    asked (re-ranking every document); a note names what was dropped."""
    kept = [k for k in depths if k <= corpus_size]
    dropped = [k for k in depths if k > corpus_size]
    notes = []
    if dropped:
        if corpus_size not in kept:
            kept.append(corpus_size)
        notes.append(f"Depths {', '.join(map(str, dropped))} are beyond the corpus's {corpus_size} documents; "
                     f"the deepest swept is {corpus_size} (every document).")
    return kept, notes


@dataclass
class DepthPoint:
    """One pipeline at one re-rank depth k: means over the labelled queries and measured cost."""

    k: int
    ndcg10: float  # nDCG@10, trec_eval
    rr10: float  # RR@10 (its mean is MRR@10)
    recall_k: float  # R@k of the first stage: the ceiling for any re-ranking of its top-k
    ms_per_query: float  # first stage's query time + re-ranker ms per pair x k


@dataclass
class DepthSweep:
    """Every pipeline's depth curve, the chosen depth per pipeline, and the pairs each re-ranker scored."""

    corpus_name: str
    corpus_size: int
    query_count: int
    depths: list[int]
    pipelines: list[str]
    curves: dict[str, list[DepthPoint]]  # pipeline -> one point per depth, shallow to deep
    pairs_scored: dict[str, int]  # re-ranker entry -> pairs its model scored over the whole sweep
    pair_ceiling: int  # queries x max depth x first stages with a re-ranker: the most a re-ranker may score
    models: dict[str, str]
    runs_on: dict[str, str]
    sweep_ms: float  # wall time of the whole sweep (model loading included)
    notes: list[str] = field(default_factory=list)
    reports: dict[int, ExperimentReport] = field(default_factory=dict, repr=False)  # k -> that run

    def chosen(self, pipeline: str) -> tuple[DepthPoint, DepthPoint]:
        """(the smallest k within TOLERANCE nDCG@10 of the best, the best: highest nDCG@10, shallowest on ties)."""
        curve = self.curves[pipeline]
        best = max(curve, key=lambda p: (p.ndcg10, -p.k))
        pick = next(p for p in curve if p.ndcg10 >= best.ndcg10 - TOLERANCE - 1e-12)
        return pick, best

    def sentence(self, pipeline: str) -> str:
        """The plain answer for one pipeline: the chosen k, its nDCG@10 and cost against the deepest k."""
        pick, best = self.chosen(pipeline)
        deepest = self.curves[pipeline][-1]
        if "+" not in pipeline:
            return (f"{pipeline} re-ranks nothing: depth changes only R@k (nDCG@10 {best.ndcg10:.3f}, "
                    f"{pick.ms_per_query:.1f} ms per query).")
        text = (f"{pipeline}: re-rank the top {pick.k}. It is the smallest depth within {TOLERANCE} nDCG@10 of the "
                f"best ({best.ndcg10:.3f} at k = {best.k}): nDCG@10 {pick.ndcg10:.3f}, R@{pick.k} {pick.recall_k:.3f}, "
                f"{pick.ms_per_query:.1f} ms per query")
        if deepest.k != pick.k:
            text += f", against {deepest.ms_per_query:.1f} ms at k = {deepest.k}"
        return text + "."

    def to_dict(self) -> dict:
        """The JSON of `eval --depths`: curves, the chosen k per pipeline with its sentence, pairs and notes."""
        return {
            "corpus_name": self.corpus_name, "corpus_size": self.corpus_size, "query_count": self.query_count,
            "depths": self.depths, "pipelines": self.pipelines, "tolerance": TOLERANCE,
            "curves": {name: [vars(p).copy() for p in curve] for name, curve in self.curves.items()},
            "chosen": {name: {"k": self.chosen(name)[0].k, "best_k": self.chosen(name)[1].k,
                              "sentence": self.sentence(name)} for name in self.pipelines},
            "pairs_scored": self.pairs_scored, "pair_ceiling": self.pair_ceiling, "models": self.models,
            "runs_on": self.runs_on, "sweep_ms": round(self.sweep_ms, 1), "notes": self.notes,
        }


def depth_sweep(
    corpus: Corpus,
    queries: Sequence[Query],
    qrels: Qrels,
    pipelines: str | Sequence[str],
    depths: Sequence[int] = DEFAULT_DEPTHS,
    progress: StageProgress | None = None,
    shared_scorers: dict[str, CachedScorer] | None = None,
    **experiment_options,
) -> DepthSweep:
    """Run `pipelines` at every depth in `depths` (clipped to the corpus) with `run_experiment`, deepest
    first, sharing each re-ranker's scored pairs; `experiment_options` go to `run_experiment` (models,
    precision, ...). `shared_scorers` (filled here) lets the caller reuse the scored pairs afterwards
    (`thresholds.judged_scores`). Raises ExplorerError for a re-ranker alone over the whole corpus (it has
    no depth) and whatever `run_experiment` raises."""
    specs = parse_pipelines(pipelines)
    if any(first == WHOLE_CORPUS for first, _ in specs):
        raise ExplorerError("A re-ranker alone ranks every document: it has no re-rank depth. Sweep a pipeline "
                            "such as bi+cross or hybrid+cross.")
    names = [pipeline_name(first, kinds) for first, kinds in specs]
    if len(corpus) == 0:
        raise ExplorerError("The corpus is empty: give at least one document.")
    swept, notes = depths_for_corpus(sorted(set(depths)), len(corpus))
    report = progress or (lambda fraction, message: None)
    scorers = {} if shared_scorers is None else shared_scorers
    start = time.perf_counter()
    reports: dict[int, ExperimentReport] = {}
    for step, k in enumerate(sorted(swept, reverse=True)):  # deepest first: it scores every pair
        reports[k] = run_experiment(
            corpus, queries, qrels, names, top_k=k, shared_scorers=scorers,
            progress=lambda fraction, message, step=step, k=k:
                report((step + fraction) / len(swept), f"depth {k}: {message}"),
            **experiment_options,
        )
    sweep_ms = (time.perf_counter() - start) * 1000.0
    deepest = reports[max(swept)]
    curves = {
        name: [DepthPoint(k, reports[k].metrics[name]["nDCG@10"], reports[k].metrics[name]["RR@10"],
                          reports[k].metrics[name][f"R@{k}"], float(reports[k].ms_per_query[name]))
               for k in swept]
        for name in names
    }
    chains = {first for first, kinds in specs if kinds}
    notes = notes + [n for n in deepest.notes if n not in notes]
    return DepthSweep(
        corpus_name=corpus.name, corpus_size=len(corpus), query_count=deepest.query_count, depths=swept,
        pipelines=names, curves=curves, pairs_scored={kind: s.computed for kind, s in scorers.items()},
        pair_ceiling=deepest.query_count * max(swept) * len(chains), models=deepest.models,
        runs_on=deepest.runs_on, sweep_ms=sweep_ms, notes=notes, reports=reports,
    )


def format_depth_sweep(sweep: DepthSweep) -> str:
    """The readable table of `eval --depths`: per pipeline, one line per k, then the sentence."""
    lines = [f"Corpus: {sweep.corpus_name} ({sweep.corpus_size:,} documents, {sweep.query_count} labelled queries); "
             f"re-rank depths {', '.join(map(str, sweep.depths))}", ""]
    for name in sweep.pipelines:
        lines.append(f"{name}")
        lines.append(f"  {'k':>5}{'nDCG@10':>10}{'MRR@10':>10}{'R@k':>8}{'ms/query':>11}")
        for p in sweep.curves[name]:
            lines.append(f"  {p.k:>5}{p.ndcg10:>10.3f}{p.rr10:>10.3f}{p.recall_k:>8.3f}{p.ms_per_query:>11.1f}")
        lines.append("  " + sweep.sentence(name))
        lines.append("")
    scored = ", ".join(f"{kind} {count:,}" for kind, count in sweep.pairs_scored.items())
    lines.append(f"Pairs scored: {scored or 'none'} (at most {sweep.pair_ceiling:,} = queries x max depth x first "
                 f"stages); sweep {sweep.sweep_ms / 1000:.1f} s.")
    lines.extend(f"Note: {note}" for note in sweep.notes)
    return "\n".join(lines)
