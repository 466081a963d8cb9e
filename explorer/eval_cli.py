"""The `eval` command: labelled data from files, a shipped set or a workbench case; plain eval's three
stages, pipelines against a baseline, or the depth sweep (`--depths`).

Split from `cli.py`, which parses the flags and dispatches here; user errors raise ExplorerError
(printed as one line, exit code 2, by `cli.main`).
"""

from __future__ import annotations

from pathlib import Path

from explorer.cli_output import emit as _emit
from explorer.errors import ExplorerError

def run_eval(args) -> int:
    """`eval`: nDCG@10, RR@10 (mean: MRR@10) and R@k on a labelled corpus; with --pipelines or a BEIR zip it
    goes to `run_pipelines_eval`. Returns the exit code 0; raises ExplorerError for bad arguments or input."""
    from explorer.data.builtin_corpora import BUILTIN_PREFIX, read_corpus_argument
    from explorer.data.corpus import read_qrels, read_queries
    from explorer.pipeline.evaluate import evaluate, format_report, three_stage_dict

    if args.case is not None and (args.corpus or args.queries or args.qrels):
        raise ExplorerError("--case brings its own corpus, queries and judgments: leave out --corpus, --queries and --qrels.")
    if args.case is None and not args.corpus:
        raise ExplorerError("Give --corpus (with --queries and --qrels unless it brings its own), or --case TOKEN.")
    if args.depths:
        return run_depth_eval(args)
    if args.pipelines is not None or (args.corpus or "").lower().endswith(".zip"):
        if args.ray is not None:
            raise ExplorerError("--ray scores plain eval's stage (c); leave it out with --pipelines or a BEIR zip.")
        return run_pipelines_eval(args)
    runner = None
    if args.ray is not None:
        from explorer.indexing.ray_scoring import RayPairScorer

        def runner(scorer):
            return RayPairScorer(scorer, address=args.ray or None, workers=args.workers, allow_local_path=True)
    if args.case is not None:  # every query of the case, as a queries file holds them; its judgments as qrels
        from explorer.case_cli import case_labels_from

        data, queries = case_labels_from(args.case)
        corpus, qrels = data.corpus, data.qrels
    elif args.corpus.startswith(BUILTIN_PREFIX):  # a shipped set brings its own queries and qrels
        data = load_labels(args)
        corpus, queries, qrels = data.corpus, data.queries, data.qrels
    elif args.queries is None or args.qrels is None:
        raise ExplorerError("Give --queries and --qrels with a corpus file (only a BEIR .zip or builtin:NAME holds its own).")
    else:
        corpus, queries, qrels = read_corpus_argument(args.corpus), read_queries(args.queries), read_qrels(args.qrels)
    report = evaluate(
        corpus,
        queries,
        qrels,
        top_k=args.top_k,
        bi_encoder=args.bi_encoder,
        cross_encoder=args.cross_encoder,
        precision=args.precision,
        score_all=not args.skip_full,
        persist_embeddings=True,
        allow_local_models=True,
        cross_encoder_runner=runner,
        cross_label=args.label,
    )
    _emit(args, three_stage_dict(report), lambda: format_report(report))
    return 0


DEFAULT_PIPELINES = "bi,bi+cross"  # what `eval` runs on a BEIR zip given without --pipelines


def parse_run_arguments(values: list[str]) -> dict[str, Path]:
    """["name=path", ...] -> {name: path}; each name once."""
    from explorer.data.trec_runs import check_tag

    runs: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ExplorerError(f"--run {value!r}: give NAME=FILE, e.g. --run bm25-anserini=runs/bm25.run.")
        name = check_tag(name.strip())
        if name in runs:
            raise ExplorerError(f"--run {name!r} is given twice.")
        runs[name] = Path(path.strip())
    return runs


def load_labels(args):
    """LabelledData from --corpus (file, builtin:NAME or BEIR zip), --queries and --qrels, or from --case."""
    from explorer.data.builtin_corpora import BUILTIN_PREFIX, load_set
    from explorer.data.labels import LabelledData, read_labels

    if getattr(args, "case", None) is not None:
        from explorer.case_cli import case_labels_from

        return case_labels_from(args.case)[0]
    if args.corpus.startswith(BUILTIN_PREFIX) and args.queries is None and args.qrels is None:
        shipped = load_set(args.corpus[len(BUILTIN_PREFIX):])
        return LabelledData(shipped.corpus, list(shipped.queries), shipped.qrels)
    if args.corpus.startswith(BUILTIN_PREFIX):
        raise ExplorerError("builtin:NAME brings its own queries and labels; leave out --queries and --qrels.")
    return read_labels(args.corpus, args.queries, args.qrels)


def run_pipelines_eval(args) -> int:
    """`eval --pipelines ...` (or a BEIR zip): every pipeline in one run, against a baseline; TREC runs out and in."""
    from explorer.data.trec_runs import read_run, write_run
    from explorer.pipeline.experiment import disagreements, format_experiment, run_experiment

    external = {name: read_run(path) for name, path in parse_run_arguments(args.run).items()}
    pair = None
    if args.disagree:
        pair = [p.strip() for p in args.disagree.split(",")]
        if len(pair) != 2:
            raise ExplorerError(f"--disagree {args.disagree!r}: give two pipelines, A,B.")
    data = load_labels(args)
    report = run_experiment(
        data.corpus, data.queries, data.qrels, args.pipelines or DEFAULT_PIPELINES, top_k=args.top_k,
        baseline=args.baseline, external_runs=external, bi_encoder=args.bi_encoder,
        cross_encoder=args.cross_encoder, precision=args.precision, persist_embeddings=True,
        allow_local_models=True, cross_label=args.label,
    )
    report.notes[:0] = data.notes
    written = []
    if args.run_out:
        for name in report.pipelines:
            if name not in report.external_runs:
                written.append(str(write_run(args.run_out, report.rankings[name], name)))
    result = report.to_dict()
    result["run_files"] = written
    rows = disagreements(report, *pair) if pair else None
    if rows is not None:
        result["disagreements"] = rows

    def text() -> str:
        lines = [format_experiment(report)]
        if rows is not None:
            lines += ["", f"Where {pair[0]} and {pair[1]} disagree (nDCG@10 {pair[1]} - {pair[0]}, Kendall's tau of the top 10):"]
            for row in rows:
                tau = "n/a" if row["kendall_tau_union"] is None else f"{row['kendall_tau_union']:+.2f}"
                lines.append(f"  {row['diff']:+.3f}  tau {tau}  [{row['query_id']}]")
        lines += [f"Wrote {path}" for path in written]
        return "\n".join(lines)

    _emit(args, result, text)
    return 0


def run_depth_eval(args) -> int:
    """`eval --depths`: the depth sweep, thresholds and context budget (`pipeline/depth_study.py`). Returns 0."""
    from explorer.budgets import MAX_CLI_DEPTH
    from explorer.pipeline.context_budget import parse_budgets
    from explorer.pipeline.depth import parse_depths
    from explorer.pipeline.depth_study import depth_study, format_depth_study

    if args.ray is not None or args.run or args.baseline or args.disagree or args.run_out:
        raise ExplorerError("--depths takes --pipelines, --budgets and the model flags only.")
    depths, budgets = parse_depths(args.depths, MAX_CLI_DEPTH), parse_budgets(args.budgets)
    data = load_labels(args)
    study = depth_study(data.corpus, data.queries, data.qrels, args.pipelines or "bi+cross,hybrid+cross", depths,
                        budgets, bi_encoder=args.bi_encoder, cross_encoder=args.cross_encoder,
                        precision=args.precision, persist_embeddings=True, allow_local_models=True,
                        cross_label=args.label)
    study.sweep.notes[:0] = data.notes
    _emit(args, study.to_dict(), lambda: format_depth_study(study))
    return 0
