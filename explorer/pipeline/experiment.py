"""Every pipeline in one run: ``bi,bm25,bi+cross,bm25+cross,hybrid+late+cross`` over the labelled queries.

A pipeline is ``FIRST[+RERANKER...]``: a first stage (bi, bm25, hybrid) and the re-rankers
(late, cross) that re-order its top-k, in the order they run, as `compare` runs them: each
re-ranker re-orders the same top-k, and the pipeline's ranking is the last one's order of
the top-k, then the first stage's order beneath (so R@k equals the first stage's).

Work the pipelines share is done once: each ranker is bound once, each first stage indexes
the corpus and searches every query once (one `run_pipeline` per first stage, with every
re-ranker any pipeline puts after it), and a re-ranker scores each (query, document) pair
once, whichever pipelines need it (`CachedScorer`).

``ms_per_query`` is the first stage's query encoding and search time over the queries, plus,
per re-ranker in the chain, its measured time per pair scored times the pairs it re-ranks per
query; indexing the corpus and loading models are not in it (they are in ``timings_ms``).

A re-ranker alone (``cross``, ``late``) is that re-ranker over every document, no first stage:
queries x documents pairs. Whole-corpus pipelines run before the others, so a first stage's
top-k re-ranking finds its pairs already scored (`CachedScorer`).

Measures are trec_eval's, via `measures.score_rankings` (nDCG@10, RR@10, R@k); external TREC
runs are scored beside the pipelines over the same queries. This is the one evaluation runner:
`evaluate.evaluate` (the three classic stages) is three of its pipelines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from explorer.budgets import MAX_EVAL_PIPELINES, MAX_PAGE_EVAL_PAIRS
from explorer.data.corpus import Corpus, Query
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.engine.precision import Precision
from explorer.errors import ExplorerError
from explorer.pipeline.compare import FIRST_STAGES, RERANKERS, first_stage_ranker, parse_rerankers, reranker
from explorer.pipeline.measures import (
    Qrels, evaluation_depth, first_relevant, labelled_queries, mean_label, mean_metrics, measure_names, rerank_order,
    score_rankings,
)
from explorer.pipeline.significance import SignificanceTest, compare_to_baseline, format_significance
from explorer.pipeline.stages import (
    FIRST_STAGE_TIMINGS, Pipeline, StageProgress, Stopwatch, check_top_k, run_pipeline, score_whole_corpus, truncation_note,
)
from explorer.rankers.base import PairScorer, PairScores

Rankings = dict[str, list[str]]  # query id -> document ids, best first


# The "first stage" of a re-ranker that ranks every document by itself ("cross": the cross-encoder over all).
WHOLE_CORPUS = "all"


def parse_pipelines(value: str | Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    """"bi,bm25+cross,cross" -> [("bi", ()), ("bm25", ("cross",)), ("all", ("cross",))]; each name at most once.

    Raises ExplorerError for an unknown stage, a repeated pipeline or more than MAX_EVAL_PIPELINES.
    """
    names = [n.strip() for n in (value.split(",") if isinstance(value, str) else value) if n.strip()]
    if not names:
        raise ExplorerError("Give at least one pipeline, e.g. --pipelines bi,bm25,bi+cross.")
    if len(names) > MAX_EVAL_PIPELINES:
        raise ExplorerError(f"{len(names)} pipelines given; the limit is {MAX_EVAL_PIPELINES}.")
    specs, seen = [], set()
    for name in names:
        first, *kinds = name.split("+")
        if not kinds and first.split("@")[0].split(":")[0] in RERANKERS:  # a re-ranker alone: over the whole corpus
            first, kinds = WHOLE_CORPUS, [first]
        if first not in FIRST_STAGES and first != WHOLE_CORPUS:
            raise ExplorerError(
                f"Pipeline {name!r}: it must start with a first stage ({', '.join(FIRST_STAGES)}), then "
                f"optionally +{'/+'.join(RERANKERS)}, e.g. bm25+cross; or a re-ranker alone over every "
                f"document, e.g. cross."
            )
        specs.append((first, parse_rerankers(kinds) if kinds else ()))
        canonical = pipeline_name(first, kinds)
        if canonical in seen:
            raise ExplorerError(f"Pipeline {canonical!r} is listed twice.")
        seen.add(canonical)
    return specs


def most_pairs(pipelines: str | Sequence[str], queries: int, candidates: int, corpus_size: int) -> int:
    """At most how many (query, document) pairs the pipelines' re-rankers score: one pass of each
    re-ranker over each first stage's top-k (`candidates` per query), and queries x documents for a
    re-ranker alone over the whole corpus; `CachedScorer` may save some of them."""
    chains = {(first, kind) for first, kinds in parse_pipelines(pipelines) for kind in kinds}
    return sum(queries * (corpus_size if first == WHOLE_CORPUS else candidates) for first, _ in chains)


def check_page_pairs(pipelines: str | Sequence[str], queries: int, candidates: int, corpus_size: int) -> None:
    """Refuse a page's run whose re-rankers would score more than MAX_PAGE_EVAL_PAIRS pairs (`most_pairs`);
    raises ExplorerError saying how many and what to do instead."""
    pairs = most_pairs(pipelines, queries, candidates, corpus_size)
    if pairs > MAX_PAGE_EVAL_PAIRS:
        raise ExplorerError(
            f"These pipelines re-rank up to {pairs:,} (query, document) pairs; the page stops at "
            f"{MAX_PAGE_EVAL_PAIRS:,}. Pick fewer re-ranking pipelines or a smaller top-k, or run "
            "`python -m explorer eval --pipelines ...` from the command line."
        )


def pipeline_name(first: str, kinds: Sequence[str]) -> str:
    """("bm25", ("cross",)) -> "bm25+cross"; a re-ranker over the whole corpus is named alone: "cross"."""
    return "+".join(kinds if first == WHOLE_CORPUS else [first, *kinds])


class CachedScorer(PairScorer):
    """A re-ranker that scores each (query, document) pair once and remembers it, for one evaluation.

    Lives as long as one `run_experiment` (so it is bounded by that run's pairs), and counts what
    the model scored (`computed`, `compute_ms`) and what came from memory (`reused`).
    """

    def __init__(self, inner: PairScorer) -> None:
        self.inner = inner
        self.info = inner.info
        self.cache: dict[tuple[str, str], tuple[float, float | None]] = {}
        self.computed = 0  # pairs the model scored
        self.reused = 0  # pairs answered from the cache
        self.compute_ms = 0.0

    @property
    def max_length(self) -> int:
        """The inner re-ranker's token limit per pair."""
        return self.inner.max_length

    def check_query(self, query: str) -> None:
        """The inner re-ranker's check: ExplorerError for a query too long to share a pair."""
        self.inner.check_query(query)

    def score(self, queries: Sequence[str], documents: Sequence[str], progress=None) -> PairScores:
        """The inner re-ranker's scores (and probabilities, when it has them) for each pair, in order;
        `truncated` counts only pairs scored by this call."""
        pairs = list(zip(queries, documents))
        missing = list(dict.fromkeys(p for p in pairs if p not in self.cache))
        truncated = 0
        if missing:
            start = time.perf_counter()
            scored = self.inner.score([q for q, _ in missing], [d for _, d in missing], progress=progress)
            self.compute_ms += (time.perf_counter() - start) * 1000.0
            truncated = scored.truncated
            for i, pair in enumerate(missing):
                probability = None if scored.probabilities is None else float(scored.probabilities[i])
                self.cache[pair] = (float(scored.scores[i]), probability)
        self.computed += len(missing)
        self.reused += len(pairs) - len(missing)
        values = [self.cache[p] for p in pairs]
        has_probabilities = bool(values) and values[0][1] is not None
        return PairScores(
            np.array([v[0] for v in values], dtype=np.float32),
            np.array([v[1] for v in values], dtype=np.float32) if has_probabilities else None,
            truncated,
        )

    @property
    def ms_per_pair(self) -> float:
        """Mean ms per pair the model scored (time.perf_counter), 0 before any."""
        return self.compute_ms / self.computed if self.computed else 0.0


@dataclass
class ExperimentReport:
    """Every pipeline's measures over the labelled queries, their costs, and tests against a baseline.

    The one evaluation report: `evaluate.three_stage_dict` shows the three classic stages from it.
    """

    corpus_name: str
    corpus_size: int
    query_count: int
    top_k: int
    depth: int
    pipelines: list[str]  # ours, in the order given, then the external runs
    external_runs: list[str]
    baseline: str | None
    models: dict[str, str]  # first stage or re-ranker ("bi", "bm25", "cross", "cross@int8") -> display name
    runs_on: dict[str, str]  # the same keys -> precision and device, e.g. "fp32 on cpu" ("n/a on cpu" for BM25)
    metrics: dict[str, dict[str, float]]  # pipeline -> measure -> mean
    per_query: dict[str, dict[str, dict[str, float]]]  # pipeline -> query id -> measure -> value
    ms_per_query: dict[str, float | None]  # None for an external run
    significance: list[SignificanceTest]
    reranker_pairs: dict[str, dict[str, int]]  # re-ranker kind -> pairs scored / reused from the cache
    timings_ms: dict[str, float]
    notes: list[str] = field(default_factory=list)
    queries: dict[str, str] = field(default_factory=dict)  # labelled query id -> text, in the given order
    first_relevant_rank: dict[str, dict[str, int | None]] = field(default_factory=dict)  # pipeline -> query id -> 1-based
    rankings: dict[str, Rankings] = field(default_factory=dict, repr=False)  # not in to_dict: see top_ids

    @property
    def measures(self) -> list[str]:
        """nDCG@10, RR@10, R@k: the keys of every `metrics` and `per_query` entry."""
        return measure_names(self.top_k)

    def to_dict(self) -> dict:
        """The JSON of `eval --pipelines --json`: every field, rankings cut to each query's first ten (`top_ids`)."""
        data = asdict(self)
        data.pop("rankings")
        data["significance"] = [row.to_dict() for row in self.significance]
        data["top_ids"] = {name: {qid: docs[:10] for qid, docs in runs.items()} for name, runs in self.rankings.items()}
        return data


def run_experiment(
    corpus: Corpus,
    queries: Sequence[Query],
    qrels: Qrels,
    pipelines: str | Sequence[str],
    top_k: int = 20,
    baseline: str | None = None,
    external_runs: dict[str, dict[str, dict[str, float]]] | None = None,
    bi_encoder: str = DEFAULT_BI_ENCODER,
    cross_encoder: str = DEFAULT_CROSS_ENCODER,
    precision: Precision = "auto",
    persist_embeddings: bool = True,
    allow_local_models: bool = False,
    progress: StageProgress | None = None,
    seed: int | None = None,
    cross_encoder_runner: Callable[[PairScorer], PairScorer] | None = None,
    cross_label: str | None = None,
    shared_scorers: dict[str, CachedScorer] | None = None,
) -> ExperimentReport:
    """Rank every labelled query with every pipeline, score each, and test each against `baseline`.

    `external_runs` ({name: TREC run}) are scored beside the pipelines; `cross_encoder_runner`
    wraps the bound cross-encoder in what scores its pairs elsewhere (`eval --ray`); a
    pair-classifying cross-encoder ranks by `cross_label` (`CrossEncoder.resolve_label`). With
    `shared_scorers` (re-ranker entry -> CachedScorer, filled on first use) several runs over the same
    corpus and models score each pair once (`depth.depth_sweep`); their counts are cumulative. Raises
    ExplorerError for unusable labels, pipelines, names or a baseline that is not among them.
    """
    from explorer.data.trec_runs import check_tag, run_rankings

    specs = parse_pipelines(pipelines)
    names = [pipeline_name(first, kinds) for first, kinds in specs]
    external_runs = dict(external_runs or {})
    for name in external_runs:
        check_tag(name)
        if name in names:
            raise ExplorerError(f"The external run {name!r} has the same name as a pipeline; name it differently.")
    if baseline is not None and baseline not in names and baseline not in external_runs:
        raise ExplorerError(f"The baseline {baseline!r} is not among the pipelines ({', '.join(names + list(external_runs))}).")
    if len(corpus) == 0:
        raise ExplorerError("The corpus is empty: give at least one document.")
    top_k, notes = check_top_k(top_k, len(corpus))
    kept, label_notes = labelled_queries(corpus, queries, qrels)
    notes = label_notes + notes
    depth = evaluation_depth(top_k, len(corpus))
    report = progress or (lambda fraction, message: None)
    clock = Stopwatch()
    ids = [doc.id for doc in corpus.documents]
    texts = [q.text for q in kept]

    # Whole-corpus pipelines first: a re-ranking of some top-k after them finds its pairs scored.
    firsts = list(dict.fromkeys(first for first, _ in sorted(specs, key=lambda spec: spec[0] != WHOLE_CORPUS)))
    kinds_used = list(dict.fromkeys(kind for _, kinds in specs for kind in kinds))  # entries as parse_rerankers gives them
    report(0.0, "Loading models")
    with clock.stage("model_loading"):
        retrievers = {first: first_stage_ranker(first, bi_encoder, precision, allow_local_models)
                      for first in firsts if first != WHOLE_CORPUS}
        bound = {kind: reranker(kind, cross_encoder, precision, allow_local_models, cross_label) for kind in kinds_used}
        if cross_encoder_runner is not None:
            bound = {kind: cross_encoder_runner(s) if s.info.kind == "cross" else s for kind, s in bound.items()}
        scorers = {kind: CachedScorer(s) for kind, s in bound.items()}
        if shared_scorers is not None:  # earlier runs' pairs (the same models: the caller's promise)
            scorers = {kind: shared_scorers.setdefault(kind, scorer) for kind, scorer in scorers.items()}
    for scorer in scorers.values():
        for text in texts:
            scorer.check_query(text)

    rankings: dict[str, Rankings] = {}
    ms_per_query: dict[str, float | None] = {}
    first_relevant_rank: dict[str, dict[str, int | None]] = {}
    for step, first in enumerate(firsts):
        step_progress = (lambda fraction, message, step=step, first=first:
                         report((step + fraction) / len(firsts), f"{first}: {message}"))
        if first == WHOLE_CORPUS:
            for spec_first, (kind,) in (spec for spec in specs if spec[0] == WHOLE_CORPUS):
                ranked, truncated = _rank_whole_corpus(scorers[kind], corpus.texts, texts, depth, clock, step_progress)
                if truncated:
                    notes.append(truncation_note(truncated, scorers[kind], len(texts)))
                name = pipeline_name(WHOLE_CORPUS, (kind,))
                rankings[name] = {query.id: [ids[p] for p in order] for query, order in zip(kept, ranked)}
                ms_per_query[name] = round(scorers[kind].ms_per_pair * len(corpus), 3)
            continue
        after = [kind for kind in kinds_used if any(f == first and kind in k for f, k in specs)]
        pipeline = Pipeline(retrievers[first], [scorers[kind] for kind in after])
        stage_clock = Stopwatch()
        run = run_pipeline(
            pipeline, corpus.texts, corpus.fingerprint, texts, top_k, depth, stage_clock,
            persist=persist_embeddings, progress=step_progress,
        )
        notes.extend(run.notes)
        if run.index_cached:
            notes.append("Corpus embeddings came from the cache." if retrievers[first].info.kind == "bi"
                         else f"The {first} index came from the cache.")
        index_key, query_key, search_key = FIRST_STAGE_TIMINGS[retrievers[first].info.kind]
        clock.ms[f"{first}_{index_key}"] = stage_clock.ms[index_key]
        clock.ms[f"{first}_{query_key}"] = stage_clock.ms[query_key]
        clock.ms[f"{first}_{search_key}"] = stage_clock.ms[search_key]
        first_ms = (stage_clock.ms[query_key] + stage_clock.ms[search_key]) / len(kept)
        reordered = dict(zip(after, run.reranked))
        for spec_first, kinds in specs:
            if spec_first != first:
                continue
            name = pipeline_name(first, kinds)
            ranking = {}
            for qi, query in enumerate(kept):
                order = run.first_stage.positions[qi]
                if kinds:  # the last re-ranker's order of the top-k, then the first stage's beneath
                    last = reordered[kinds[-1]]
                    score_of = dict(zip(last.positions[qi], last.scores[qi]))
                    order = rerank_order(order, [score_of[p] for p in order[:top_k]], top_k)
                ranking[query.id] = [ids[p] for p in order]
            rankings[name] = ranking
            candidates = min(top_k, len(corpus))
            ms_per_query[name] = round(first_ms + sum(scorers[k].ms_per_pair * candidates for k in kinds), 3)
    for kind, scorer in scorers.items():
        clock.ms[f"rerank_{kind}_pairs"] = round(scorer.compute_ms, 3)

    rankings = {name: rankings[name] for name in names}  # in the order given
    ms_per_query = {name: ms_per_query[name] for name in names}
    kept_ids = [q.id for q in kept]
    corpus_ids = set(ids)
    for name, run in external_runs.items():
        ordered = run_rankings(run)
        unknown = {doc for qid in kept_ids for doc in ordered.get(qid, []) if doc not in corpus_ids}
        if unknown:
            notes.append(f"Run {name}: {len(unknown)} retrieved document id(s) are not in the corpus "
                         "(they count as not relevant unless labelled).")
        absent = [qid for qid in kept_ids if qid not in ordered]
        if absent:
            notes.append(f"Run {name} has no lines for {len(absent)} labelled query(ies); they score 0.")
        rankings[name] = {qid: ordered.get(qid, []) for qid in kept_ids}
        ms_per_query[name] = None

    report(0.97, "Computing measures")
    measures = measure_names(top_k)
    per_query = {name: score_rankings(runs, qrels, top_k) for name, runs in rankings.items()}
    metrics = {name: mean_metrics(values, measures) for name, values in per_query.items()}
    significance: list[SignificanceTest] = []
    if baseline is not None and len(per_query) > 1:
        kwargs = {} if seed is None else {"seed": seed}
        significance, stat_notes = compare_to_baseline(per_query, baseline, measures, **kwargs)
        notes.extend(stat_notes)
    first_relevant_rank = {name: {qid: first_relevant(runs.get(qid, []), qrels[qid]) for qid in kept_ids}
                           for name, runs in rankings.items()}
    models = {kind: scorer.info.name for kind, scorer in scorers.items()}
    models.update({first: retriever.info.name for first, retriever in retrievers.items()})
    runs_on = {kind: scorer.info.runs_on for kind, scorer in scorers.items()}
    runs_on.update({first: retriever.info.runs_on for first, retriever in retrievers.items()})
    report(1.0, "Done")
    return ExperimentReport(
        corpus_name=corpus.name, corpus_size=len(corpus), query_count=len(kept), top_k=top_k, depth=depth,
        pipelines=list(rankings), external_runs=list(external_runs), baseline=baseline, models=models, runs_on=runs_on,
        metrics=metrics, per_query=per_query, ms_per_query=ms_per_query, significance=significance,
        reranker_pairs={kind: {"scored": s.computed, "reused": s.reused} for kind, s in scorers.items()},
        timings_ms=clock.ms, notes=notes, queries={q.id: q.text for q in kept},
        first_relevant_rank=first_relevant_rank, rankings=rankings,
    )


def _rank_whole_corpus(scorer: PairScorer, documents: Sequence[str], queries: Sequence[str], depth: int,
                       clock: Stopwatch, progress: StageProgress) -> tuple[list[list[int]], int]:
    """Every document ranked by `scorer` for each query (positions, best first, `depth` deep; ties keep
    corpus order), and how many pairs were cut to the model's length."""
    scored, output = score_whole_corpus(scorer, documents, queries, clock, progress)
    return [row[:depth] for row in output.positions], scored.truncated


def kendall_tau_union(a: Sequence[str], b: Sequence[str], cutoff: int = 10) -> float | None:
    """Kendall's tau-b between two rankings over the union of their top `cutoff` documents.

    Each document's rank in each full ranking (1-based); a document one ranking lacks gets
    that ranking's length + 1 (all such documents tie). None where tau is undefined.
    """
    union = list(dict.fromkeys(list(a[:cutoff]) + list(b[:cutoff])))
    if len(union) < 2:
        return None
    place_a = {doc: i for i, doc in enumerate(a, start=1)}
    place_b = {doc: i for i, doc in enumerate(b, start=1)}
    ra = [place_a.get(doc, len(a) + 1) for doc in union]
    rb = [place_b.get(doc, len(b) + 1) for doc in union]
    tau = stats.kendalltau(ra, rb).statistic
    return None if np.isnan(tau) else float(tau)


def disagreements(report: ExperimentReport, a: str, b: str, measure: str = "nDCG@10") -> list[dict]:
    """Per query: `measure` of a and of b, their difference (b - a) and Kendall's tau of the top lists,
    sorted by |difference|, largest first, then by tau, lowest (most reordered) first."""
    for name in (a, b):
        if name not in report.per_query:
            raise ExplorerError(f"{name!r} is not among the pipelines ({', '.join(report.per_query)}).")
    rows = []
    for qid in report.per_query[a]:
        va, vb = report.per_query[a][qid][measure], report.per_query[b][qid][measure]
        rows.append({
            "query_id": qid, "a": a, "b": b, "measure": measure, "value_a": va, "value_b": vb, "diff": vb - va,
            "kendall_tau_union": kendall_tau_union(report.rankings[a][qid], report.rankings[b][qid]),
        })
    rows.sort(key=lambda r: (-abs(r["diff"]), 2.0 if r["kendall_tau_union"] is None else r["kendall_tau_union"], r["query_id"]))
    return rows


def format_experiment(report: ExperimentReport) -> str:
    """The readable table of `eval --pipelines`: one row per pipeline (means, ms/query), then the tests."""
    measures = report.measures
    width = max(12, *(len(name) + 2 for name in report.pipelines))
    lines = [
        f"Corpus: {report.corpus_name} ({report.corpus_size} documents, {report.query_count} labelled queries), "
        f"top-k {report.top_k}",
        "",
        f"{'pipeline':<{width}}" + "".join(f"{mean_label(m):>10}" for m in measures) + f"{'ms/query':>10}",
    ]
    for name in report.pipelines:
        ms = report.ms_per_query[name]
        lines.append(f"{name:<{width}}" + "".join(f"{report.metrics[name][m]:>10.3f}" for m in measures)
                     + (f"{ms:>10.1f}" if ms is not None else f"{'(run)':>10}"))
    if report.significance:
        lines += ["", f"Against {report.baseline}:", format_significance(report.significance)]
    lines.extend(f"Note: {note}" for note in report.notes)
    return "\n".join(lines)
