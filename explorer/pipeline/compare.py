"""One query through the pipeline, shown side by side: what the UI, the CLI and the API call.

`compare()` returns a `Comparison` (see `results.py`), which turns into JSON with `to_dict()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from explorer.data.corpus import Corpus
from explorer.engine.catalog import COLBERT_BACKBONE, DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER, ModelChoice, local_model
from explorer.engine.precision import Precision
from explorer.errors import ExplorerError
from explorer.pipeline.results import Comparison, FirstStageHit, RerankedHit, Stage, StageHit, tie_marks
from explorer.pipeline.stages import (
    FIRST_STAGE_TIMINGS,
    RERANK_TIMING,
    Pipeline,
    StageOutput,
    StageProgress,
    Stopwatch,
    check_query,
    check_top_k,
    run_pipeline,
)
from explorer.rankers.base import PairScorer, Retriever
from explorer.rankers.bi_encoder import load_bi_encoder
from explorer.rankers.bm25 import BM25
from explorer.rankers.bm25 import SETTINGS as BM25_SETTINGS
from explorer.rankers.cross_encoder import CrossEncoder, load_cross_encoder
from explorer.rankers.hybrid import Hybrid
from explorer.rankers.late_interaction import load_late_interaction
from explorer.rankers.onnx_cross_encoder import load_onnx_cross_encoder
from explorer.rankers.passage_cross_encoder import AGGREGATES, PassageCrossEncoder
from explorer.rankers.probe import probe

if TYPE_CHECKING:
    from explorer.indexing.prebuilt import PrebuiltIndex

FIRST_STAGES = ("bi", "bm25", "hybrid")
RERANKERS = ("late", "cross")  # "late": MaxSim over the colbert backbone; "cross": the cross-encoder
# A re-ranker may name its precision: "cross@fp32", "cross@bf16", "cross@int8-packed" (our packed
# int8 engine, engine/int8.py), "cross@int8" (the original int8 ONNX file run by onnxruntime: the
# peer a CPU user would pick), "late@fp32", "late@bf16", "late@int8-packed". Without one it runs at
# the comparison's precision (whose "int8" is the packed engine).
RERANKER_PRECISIONS = {"cross": ("fp32", "bf16", "int8-packed", "int8"), "late": ("fp32", "bf16", "int8-packed")}
PACKED_INT8 = "int8-packed"
# A cross-encoder may read long documents by passages: "cross:maxp", "cross:firstp", "cross:sump"
# (rankers/passage_cross_encoder.py), with a precision after it: "cross:maxp@fp32".
PASSAGE_ENTRIES = tuple(f"cross:{name}" for name in AGGREGATES)
# The cross-encoder again at a named precision, beside the comparison's own: its exact reference, our
# packed int8 engine and onnxruntime's int8 file (the page's "three precisions" columns).
PRECISION_ENTRIES = ("cross@fp32", "cross@int8-packed", "cross@int8")
# Every entry the page and the API take, in the order they run.
PAGE_ENTRIES = (*RERANKERS, *PASSAGE_ENTRIES, *PRECISION_ENTRIES)
_BM25 = BM25()  # one per process: it keeps the corpora's indexes


def first_stage_ranker(first_stage: str, bi_encoder: str, precision: Precision, allow_local_models: bool) -> Retriever:
    """The retriever a first-stage name stands for, bound once."""
    if first_stage == "bi":
        return load_bi_encoder(bi_encoder, precision, allow_local_path=allow_local_models)
    if first_stage == "bm25":
        return _BM25
    if first_stage == "hybrid":
        return Hybrid(_BM25, load_bi_encoder(bi_encoder, precision, allow_local_path=allow_local_models))
    raise ExplorerError(f"Unknown first stage {first_stage!r}: use one of {', '.join(FIRST_STAGES)}.")


def parse_rerankers(value: str | Sequence[str]) -> tuple[str, ...]:
    """"late,cross@int8" -> ("late", "cross@int8"); "none" or "" -> (); each entry at most once, in order.

    An entry is a kind ("late", "cross"), optionally "@" and a precision from RERANKER_PRECISIONS,
    so the same cross-encoder can run at fp32, bf16 and int8 side by side.
    """
    names = [n.strip().lower() for n in (value.split(",") if isinstance(value, str) else value) if n.strip()]
    if names == ["none"]:
        return ()

    def known(name: str) -> bool:
        entry, _, precision = name.partition("@")
        kind, _, aggregate = entry.partition(":")
        return (kind in RERANKERS and (not precision or precision in RERANKER_PRECISIONS[kind])
                and (not aggregate or (kind == "cross" and aggregate in AGGREGATES)))

    unknown = [n for n in names if not known(n)]
    if unknown or len(set(names)) != len(names):
        choices = "; ".join(f"{k}@{'/'.join(p)}" for k, p in RERANKER_PRECISIONS.items())
        raise ExplorerError(
            f"Re-rankers {','.join(names)!r}: give a comma-separated list of distinct names from "
            f"{', '.join(RERANKERS)} in the order they run, each optionally with a precision ({choices}), "
            f"a cross-encoder optionally by passages ({', '.join(PASSAGE_ENTRIES)}), or 'none'."
        )
    return tuple(names)


def reranker(kind: str, cross_encoder: str, precision: Precision, allow_local_models: bool,
             cross_label: str | None = None) -> PairScorer:
    """The re-ranker an entry ("cross", "late", "cross@int8", "cross@int8-packed", "cross:maxp", ...) stands for,
    bound once (precision "int8" is the packed engine; only the entry "cross@int8" is onnxruntime's file); a
    cross-encoder with several labels ranks by `cross_label` (its default label when None)."""
    kind, _, named = kind.partition("@")
    kind, _, aggregate = kind.partition(":")
    if aggregate:
        whole = reranker(f"{kind}@{named}" if named else kind, cross_encoder, precision, allow_local_models, cross_label)
        return PassageCrossEncoder(whole, aggregate)
    precision = "int8" if named == PACKED_INT8 else (named or precision)
    local = local_model(cross_encoder)
    if kind == "cross" and local is not None and local.path.suffix == ".onnx":
        if named:
            raise ExplorerError(f"{cross_encoder!r} is an ONNX file: it runs as stored, with no other precision.")
        return load_onnx_cross_encoder(local)
    if kind == "cross" and named == "int8":
        if cross_encoder != DEFAULT_CROSS_ENCODER:
            raise ExplorerError(
                f"cross@int8 runs the int8 ONNX file of {DEFAULT_CROSS_ENCODER} only, not {cross_encoder!r}."
            )
        return load_onnx_cross_encoder()
    if kind == "cross":
        return load_cross_encoder(cross_encoder, precision, allow_local_path=allow_local_models, label=cross_label)
    return load_late_interaction(COLBERT_BACKBONE, precision)


def probe_notes(rankers: Sequence) -> list[str]:
    """The sanity probe (once per bound ranker per process): a note for each ranker that is not "ok"."""
    results = [probe(r) for r in rankers]
    return [result.note() for result in results if result is not None and not result.ok]


def compare(
    query: str,
    corpus: Corpus,
    top_k: int = 10,
    bi_encoder: str = DEFAULT_BI_ENCODER,
    cross_encoder: str = DEFAULT_CROSS_ENCODER,
    score_all: bool = False,
    precision: Precision = "auto",
    persist_embeddings: bool = False,
    allow_local_models: bool = False,
    progress: StageProgress | None = None,
    first_stage: str = "bi",
    rerankers: str | Sequence[str] = ("cross",),
    index: PrebuiltIndex | None = None,
    cross_label: str | None = None,
) -> Comparison:
    """Rank `corpus` for `query` with the first stage, re-rank its top-k with each re-ranker.

    `rerankers` lists "late" and/or "cross" in the order they run (each re-orders the same
    top-k candidates), each optionally at its own precision ("cross@int8"; see
    `parse_rerankers`); empty (or "none") for the first stage alone. Every bound model is
    sanity-probed once per process (`rankers/probe.py`); one that fails gets a note. With `score_all`, the
    last re-ranker also scores every document, to show what the first stage missed. The
    result's `reranked` hits are the last re-ranker's. With `index` (a prebuilt index of
    this corpus, `indexing/prebuilt.py`) the first stage searches it instead of indexing the
    corpus. A cross-encoder with several labels (a pair classifier) ranks by `cross_label`
    (`CrossEncoder.resolve_label`). Raises ExplorerError for anything the user can fix.
    """
    kinds = parse_rerankers(rerankers)
    query = check_query(query)
    if len(corpus) == 0:
        raise ExplorerError("The corpus is empty: give at least one document.")
    top_k, notes = check_top_k(top_k, len(corpus))
    report = progress or (lambda fraction, message: None)
    clock = Stopwatch()

    with clock.stage("model_loading"):
        report(0.0, "Loading models")
        first = (first_stage_ranker(first_stage, bi_encoder, precision, allow_local_models) if index is None
                 else index.first_stage(first_stage, bi_encoder, precision, allow_local_models))
        # An index that stores late-interaction token vectors re-ranks with them instead of encoding documents.
        stored = [index.stored_reranker(kind, precision) if index is not None else None for kind in kinds]
        pipeline = Pipeline(first, [s or reranker(kind, cross_encoder, precision, allow_local_models, cross_label)
                                    for kind, s in zip(kinds, stored)])
        notes.extend(probe_notes([pipeline.first_stage, *pipeline.rerankers]))
    for stage in pipeline.rerankers:
        stage.check_query(query)
    # The full first-stage order is cheap and gives every re-scored document its first-stage rank;
    # one document past the top-k shows whether the last one shown ties it.
    depth = len(corpus) if score_all else min(len(corpus), top_k + 1)
    run = run_pipeline(
        pipeline, corpus.texts, corpus.fingerprint, [query], top_k, depth, clock,
        score_all=score_all, persist=persist_embeddings, progress=report,
    )
    last = pipeline.rerankers[-1] if pipeline.rerankers else None
    if score_all and last is None:
        notes.append("Scoring the whole corpus needs a re-ranker; there was none, so only the first stage ran.")
    notes.extend(run.notes)
    clock.ms["total"] = clock.total()

    documents = corpus.documents
    first = run.first_stage
    first_rank = {p: rank for rank, p in enumerate(first.positions[0], start=1)}
    first_score = dict(zip(first.positions[0], first.scores[0]))

    def reranked_hits(output: StageOutput) -> list[RerankedHit]:
        return [
            RerankedHit(
                id=documents[p].id, text=documents[p].text, score=score, probability=probability, rank=rank,
                first_rank=first_rank[p], first_score=first_score[p], in_candidates=first_rank[p] <= top_k,
                shared_rank=shared, tied=tied,
            )
            for rank, (p, score, probability, (shared, tied)) in enumerate(
                zip(output.positions[0], output.scores[0], output.probabilities[0] or [None] * len(output.scores[0]),
                    tie_marks(output.scores[0])),
                start=1,
            )
        ]

    reranked = reranked_hits(run.reranked[-1]) if run.reranked else []
    with_label_probabilities(last, query, reranked[:top_k])

    first_kind = pipeline.first_stage.info.kind
    _, query_key, search_key = FIRST_STAGE_TIMINGS[first_kind]
    stages = [_stage(first, top_k, documents, clock.ms[query_key] + clock.ms[search_key])]
    timing_keys = run.rerank_timings or [RERANK_TIMING[output.info.kind] for output in run.reranked]
    stages += [_stage(output, top_k, documents, clock.ms.get(key, 0.0)) for output, key in zip(run.reranked, timing_keys)]
    components = (hybrid_components(pipeline.first_stage, query, corpus, top_k)
                  if isinstance(pipeline.first_stage, Hybrid) else [])
    models = {"first_stage": pipeline.first_stage.info.name}
    runs_on = {"first_stage": pipeline.first_stage.info.runs_on}
    if last is not None:
        models["reranker"], runs_on["reranker"] = last.info.name, last.info.runs_on
    result = Comparison(
        query=query,
        top_k=top_k,
        corpus_name=corpus.name,
        corpus_size=len(corpus),
        first_stage_kind=first_kind,
        models=models,
        runs_on=runs_on,
        first_stage=[
            FirstStageHit(documents[p].id, documents[p].text, s, rank, shared, tied)
            for rank, (p, s, (shared, tied)) in enumerate(
                zip(first.positions[0][:top_k], first.scores[0][:top_k], tie_marks(first.scores[0][: top_k + 1])),
                start=1,
            )
        ],
        reranked=reranked,
        reranked_full=None if run.full_corpus is None else reranked_hits(run.full_corpus),
        stages=stages,
        components=components,
        timings_ms=clock.ms,
        corpus_index_cached=run.index_cached,
        notes=notes,
    )
    if result.tie_note():
        notes.append(result.tie_note())
    return result


def with_label_probabilities(last: PairScorer | None, query: str, hits: Sequence[RerankedHit]) -> None:
    """Give each shown hit every label's softmax probability, where the last re-ranker is a pair
    classifier (several labels): its top-k pairs are scored once more for that (no other model pays)."""
    if not hits or not isinstance(last, CrossEncoder) or last.model.num_labels < 2:
        return
    scored = last.score_query(query, [hit.text for hit in hits])
    for hit, row in zip(hits, scored.label_probabilities):
        hit.label_probabilities = {name: float(p) for name, p in zip(scored.labels, row)}


def register_local_model(path: str) -> tuple[ModelChoice, str]:
    """Register a local model folder or .onnx file (`engine.loading.register_model_path`), load it once
    and run the sanity probe; returns its picker entry and the probe's verdict in words.

    Raises ExplorerError when the path is not a model (the reason is in the message).
    """
    from explorer.engine.loading import register_model_path
    from explorer.rankers.probe import probe

    choice = register_model_path(path)
    ranker = (reranker("cross", choice.id, "auto", False) if choice.kind == "cross"
              else first_stage_ranker("bi", choice.id, "auto", False))
    result = probe(ranker)
    return choice, "sanity probe ok" if result is None or result.ok else result.note()


def hybrid_components(hybrid: Hybrid, query: str, corpus: Corpus, top_k: int) -> list[Stage]:
    """BM25's and the bi-encoder's own top-k for the query, each from its cached index: what the
    fusion was made of, shown beside it (the pipeline itself re-ranks the fusion's top-k only)."""
    components = []
    for ranker in (hybrid.lexical, hybrid.dense):
        clock = Stopwatch()
        with clock.stage("rank"):
            index, _ = ranker.index_corpus(corpus.texts, corpus.fingerprint)
            encoded = ranker.encode_queries([query])
            scores, positions = ranker.search(index, encoded, top_k + 1)
        output = StageOutput(ranker.info, [[int(p) for p in positions[0]]], [[float(s) for s in scores[0]]],
                             notes=ranker.search_notes(index, encoded))
        components.append(_stage(output, top_k, corpus.documents, clock.ms["rank"]))
    return components


def _stage(output: StageOutput, top_k: int, documents, ms: float) -> Stage:
    """One query's stage for the page and the JSON: its top-k with ties marked, its note, BM25's analyzer."""
    info = output.info
    marks = tie_marks(output.scores[0][: top_k + 1])
    return Stage(
        name=info.name, kind=info.kind, model=info.model_id, score_name=info.score_name, runs_on=info.runs_on,
        ms=round(ms, 3), engine=info.engine, prompts=info.prompts, probability_name=info.probability_name,
        precision=info.precision, precision_note=info.precision_note,
        ranking=[
            StageHit(documents[p].id, score, rank, *marks[rank - 1])
            for rank, (p, score) in enumerate(zip(output.positions[0][:top_k], output.scores[0][:top_k]), start=1)
        ],
        note=output.notes.get(0),
        analyzer=BM25_SETTINGS if info.kind == "lexical" else None,
    )
