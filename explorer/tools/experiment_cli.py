"""`python -m explorer eval --pipelines ...`: read the labels and runs, run the experiment, write runs.

Kept out of cli.py so the old `eval` call stays as it was; cli.py dispatches here when
--pipelines is given or --corpus is a BEIR zip.
"""

from __future__ import annotations

from pathlib import Path

from explorer.errors import ExplorerError

DEFAULT_PIPELINES = "bi,bi+cross"  # a BEIR zip without --pipelines


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
    """LabelledData from --corpus (file, builtin:NAME or BEIR zip), --queries and --qrels."""
    from explorer.data.builtin_corpora import BUILTIN_PREFIX, load_set
    from explorer.data.labels import LabelledData, read_labels

    if args.corpus.startswith(BUILTIN_PREFIX) and args.queries is None and args.qrels is None:
        shipped = load_set(args.corpus[len(BUILTIN_PREFIX):])
        return LabelledData(shipped.corpus, list(shipped.queries), shipped.qrels)
    if args.corpus.startswith(BUILTIN_PREFIX):
        raise ExplorerError("builtin:NAME brings its own queries and labels; leave out --queries and --qrels.")
    return read_labels(args.corpus, args.queries, args.qrels)


def run_pipelines_eval(args, emit) -> int:
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
        allow_local_models=True,
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
                tau = "n/a" if row["kendall_tau"] is None else f"{row['kendall_tau']:+.2f}"
                lines.append(f"  {row['diff']:+.3f}  tau {tau}  [{row['query_id']}]")
        lines += [f"Wrote {path}" for path in written]
        return "\n".join(lines)

    emit(args, result, text)
    return 0
