"""The command line: `python -m explorer {compare,index,inspect,explain,heads,why,eval,case,bench,loadtest} ...`.

Each sub-command parses its flags here and calls the same plain functions the app uses.
User errors print one line to stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

from explorer.errors import ExplorerError
from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
from explorer.engine.precision import PRECISIONS
from explorer.cli_output import emit as _emit
from explorer.eval_cli import run_eval


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bi-encoder", default=DEFAULT_BI_ENCODER, help="hub id or local folder")
    parser.add_argument("--cross-encoder", default=DEFAULT_CROSS_ENCODER, help="hub id or local folder")
    _add_label_flag(parser)
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto: this CPU kind's fastest precision that ranks as fp32 does (int8 on AVX2, bf16 where native; "
             "see docs/models.md); fp32 is exact; int8 is the packed oneDNN engine",
    )


def _add_label_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label", default=None,
                        help="for a cross-encoder with several labels (a pair classifier, NLI): the label that ranks, by name (e.g. entailment) or number; default: a relevance / entailment label")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of `python -m explorer`: one sub-command per entry of COMMANDS (compare, eval,
    inspect, explain, index, bench, ...), each with its options and defaults."""
    parser = argparse.ArgumentParser(prog="python -m explorer", description="Cross-Encoder Explorer")
    commands = parser.add_subparsers(dest="command", required=True)

    compare = commands.add_parser("compare", help="rank a corpus with both models, side by side")
    compare.add_argument("--query", required=True)
    compare.add_argument("--corpus", help=".txt, .jsonl or .csv file, or builtin:NAME for a shipped set")
    compare.add_argument("--index", metavar="DIR",
                         help="a prebuilt index (python -m explorer index): its documents are the corpus, nothing is "
                              "encoded again; with --corpus too, the index must have been built from that corpus")
    compare.add_argument("--top-k", type=int, default=10)
    compare.add_argument("--all", action="store_true", help="also score the whole corpus with the last re-ranker")
    compare.add_argument(
        "--first-stage", choices=("bi", "bm25", "hybrid"), default="bi",
        help="what retrieves the top-k: the bi-encoder (default), BM25 (bm25s, stemmed English words), "
             "or hybrid (both, fused by reciprocal rank fusion, k=60)",
    )
    compare.add_argument(
        "--rerankers", default="cross",
        help="comma-separated re-rankers of the same top-k, in the order they run: late (MaxSim over the "
             "answerai-colbert-small-v1 backbone, no projection head), cross (the cross-encoder; default); "
             "or none. Each may name a precision: cross@fp32, cross@bf16, cross@int8-packed (our int8 engine), "
             "cross@int8 (the original int8 ONNX file, run by onnxruntime), late@fp32, late@bf16, late@int8-packed; "
             "e.g. cross@fp32,cross@int8-packed,cross@int8",
    )
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    _add_model_flags(compare)

    index = commands.add_parser("index", help="build a persistent index of a corpus on Ray (pip install -r requirements-ray.txt)")
    index.add_argument("--corpus", required=True, help="corpus file (.txt, .jsonl, .csv) or builtin:NAME")
    index.add_argument("--out", required=True, metavar="DIR", help="the index folder; a rerun resumes an unfinished build")
    index.add_argument("--ray", metavar="ADDRESS", help="join this Ray cluster; without it a local Ray is started "
                                                         "(127.0.0.1 only) and stopped at the end")
    index.add_argument("--bi-encoder", action="append", default=[], metavar="ID",
                       help=f"a bi-encoder to embed the corpus with (repeatable; default {DEFAULT_BI_ENCODER}; "
                            "'none' for no bi-encoder)")
    index.add_argument("--bm25", action="store_true", help="also the BM25 index (bm25s)")
    index.add_argument("--late", action="store_true", help="also late-interaction token vectors (colbert backbone)")
    index.add_argument("--workers", type=int, default=2, help="Ray workers at once (one CPU and one model copy each)")
    index.add_argument("--shard-size", type=int, default=256, help="documents per shard (the unit written and resumed)")
    index.add_argument("--index-type", choices=("auto", "exact", "hnsw"), default="auto",
                       help="FAISS index: auto is exact up to 50,000 documents, HNSW above")
    index.add_argument("--precision", choices=PRECISIONS, default="auto")
    index.add_argument("--json", action="store_true", help="print the manifest as JSON")

    inspect = commands.add_parser("inspect", help="attention and attribution for one (query, document) pair")
    inspect.add_argument("--query", required=True)
    inspect.add_argument("--doc", required=True)
    inspect.add_argument("--layer", default="0", help="0-based layer, or 'mean'")
    inspect.add_argument("--head", default="mean", help="0-based head, or 'mean' / 'max'")
    inspect.add_argument("--json", action="store_true")
    inspect.add_argument("--cross-encoder", default=DEFAULT_CROSS_ENCODER)
    _add_label_flag(inspect)

    explain = commands.add_parser("explain", help="why is document A above B: both scores and per-word contributions")
    explain.add_argument("--query", required=True)
    explain.add_argument("--doc", required=True, help="document A")
    explain.add_argument("--versus", required=True, help="document B")
    explain.add_argument("--method", choices=("occlusion", "ig", "gradxinput"), default="occlusion",
                         help="occlusion (delete each word, rescore), ig (Integrated Gradients), gradxinput")
    explain.add_argument("--steps", type=int, default=50, help="ig: integration steps (Gauss-Legendre)")
    explain.add_argument("--agreement", action="store_true",
                         help="also run all three methods and give their Spearman agreement per document")
    explain.add_argument("--json", action="store_true")
    explain.add_argument("--cross-encoder", default=DEFAULT_CROSS_ENCODER)
    _add_label_flag(explain)

    heads = commands.add_parser("heads", help="which heads and blocks matter for one pair: ablation, and patching A into B")
    heads.add_argument("--query", required=True)
    heads.add_argument("--doc", required=True, help="the document (document A with --versus)")
    heads.add_argument("--versus", help="document B: patch each head's output from A's run into B's at the query positions")
    heads.add_argument("--mode", choices=("zero", "mean"), default="zero",
                       help="zero: a head's output set to 0; mean: set to its mean over the pair's tokens")
    heads.add_argument("--positions", choices=("query", "query_segment"), default="query",
                       help="with --versus: the query's tokens, or [CLS] + query + [SEP] (patching all of it gives A's logit)")
    heads.add_argument("--json", action="store_true")
    heads.add_argument("--cross-encoder", default=DEFAULT_CROSS_ENCODER)

    why = commands.add_parser("why", help="why not this document: where it stands in every stage, which stage "
                                          "lost it, and each ranker's explanation of its score")
    why.add_argument("--query", required=True)
    why.add_argument("--corpus", required=True, help=".txt, .jsonl or .csv file, or builtin:NAME for a shipped set")
    why.add_argument("--doc", required=True, help="the document's id in the corpus")
    why.add_argument("--top-k", type=int, default=10)
    why.add_argument("--first-stage", choices=("bi", "bm25", "hybrid"), default="bi")
    why.add_argument("--rerankers", default="cross",
                     help="as compare's, e.g. late,cross or cross:maxp (a cross-encoder by passages: maxp, firstp, sump)")
    why.add_argument("--attribution", choices=("first", "words", "none"), default="first",
                     help="the cross-encoder's occlusion of the document's words: first view (runs of words), "
                          "word level, or none")
    why.add_argument("--json", action="store_true", help="print one JSON object (the page's data)")
    _add_model_flags(why)

    evaluate = commands.add_parser("eval", help="nDCG@10, MRR@10, R@k on a labelled corpus")
    evaluate.add_argument("--corpus",
                          help="corpus file, builtin:NAME for a shipped set, or a BEIR .zip (corpus.jsonl, "
                               "queries.jsonl, qrels/test.tsv; then --queries/--qrels are optional)")
    evaluate.add_argument("--case", metavar="TOKEN",
                          help="instead of --corpus/--queries/--qrels: a workbench case (its edit or read-only token); "
                               "its corpus, queries and judgments are the labelled set")
    evaluate.add_argument("--queries")
    evaluate.add_argument("--qrels", help="TREC 'qid 0 docid grade', jsonl, or BEIR tsv 'query-id corpus-id score'")
    evaluate.add_argument("--pipelines",
                          help="comma-separated FIRST[+RERANKER...] (first: bi, bm25, hybrid; re-rankers: late, cross), "
                               "e.g. bi,bm25,bi+cross,hybrid+late+cross; evaluated together, shared work done once")
    evaluate.add_argument("--baseline", help="with --pipelines: the pipeline (or run) the others are tested against")
    evaluate.add_argument("--run-out", metavar="DIR", help="with --pipelines: write PIPELINE.run (TREC format) per pipeline")
    evaluate.add_argument("--run", action="append", default=[], metavar="NAME=FILE",
                          help="with --pipelines: an external TREC run to evaluate beside them (repeatable)")
    evaluate.add_argument("--disagree", metavar="A,B",
                          help="with --pipelines: per query, nDCG@10 difference and Kendall's tau of A and B, "
                               "most disagreeing first")
    evaluate.add_argument("--top-k", type=int, default=20)
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument(
        "--skip-full", action="store_true", help="skip (c), the cross-encoder over the whole corpus (slow on large corpora)"
    )
    evaluate.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                          help="score (c) as a Ray Data job with resumable shards (pip install -r requirements-ray.txt): "
                               "join the cluster at ADDRESS, or without one start a local Ray (127.0.0.1) for the run")
    evaluate.add_argument("--workers", type=int, default=2, help="with --ray: workers at once (one CPU and model each)")
    evaluate.add_argument("--depths", metavar="K,K,...",
                          help="sweep re-rank depths (e.g. 5,10,20,50,100) for --pipelines (default bi+cross,hybrid+cross): "
                               "quality and ms/query per depth, the chosen depth, score thresholds, context budgets")
    evaluate.add_argument("--budgets", default="1000,2000,4000", metavar="TOKENS,...",
                          help="with --depths: LLM context budgets in tokens (the cross-encoder's tokenizer)")
    _add_model_flags(evaluate)

    from explorer.case_cli import add_case_commands

    add_case_commands(commands, _add_model_flags)

    bench = commands.add_parser("bench", help="speed against sentence-transformers, side by side")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes")
    bench.add_argument("--contrast", action="store_true",
                       help="only the contrast view (why is A above B): occlusion, gradient x input, IG at 20 and 50 steps")

    bench.add_argument("--depth", action="store_true",
                       help="time the depth sweep on python_docs (bi+cross, 40 queries, depths 5..100)")
    bench.add_argument("--why", action="store_true",
                       help="only the 'why not this document' panel for documents outside top-k on python_docs")
    bench.add_argument("--engines", action="store_true",
                       help="only the cross-encoder engines on 100 pairs: ours fp32 / bf16 / int8 against onnxruntime "
                            "and OpenVINO on the int8 ONNX file, with agreement with fp32")
    bench.add_argument("--heads", action="store_true",
                       help="only the head grid: every head ablated for a 64-token pair on 2 threads, fp32 and bf16")

    loadtest = commands.add_parser("loadtest", help="many gradio_client users against a running app (loopback only)")
    loadtest.add_argument("--url", required=True)
    loadtest.add_argument("--clients", type=int, help="gradio_client users (20; with --soak 4)")
    loadtest.add_argument("--requests", type=int, help="requests per client (10; with --soak, per round: 50)")
    loadtest.add_argument("--timeout", type=float, default=600.0, help="stop after this many seconds")
    loadtest.add_argument("--mixed", action="store_true",
                          help="rotate comparisons, inspections and a long document (else comparisons only)")
    loadtest.add_argument("--soak", action="store_true",
                          help="rounds of 50 mixed requests (--rounds, --requests per round, --clients users); "
                               "prints the server's RSS and the per-request files on disk after each round")
    loadtest.add_argument("--rounds", type=int, default=8, help="soak rounds")
    loadtest.add_argument("--files-dir", help="the server's gradio cache folder (its GRADIO_TEMP_DIR), for --soak")
    loadtest.add_argument("--json", action="store_true")
    return parser



def _shorten(text: str, width: int) -> str:
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder="…")


RERANKER_LABELS = {"cross": ("Cross-encoder", "cross-encoder (logit / prob)"), "late": ("Late interaction", "late interaction (MaxSim)")}


def format_comparison(result) -> str:
    """A readable side-by-side table: the first stage and the last re-ranker (every stage is in --json)."""
    lines = [
        f"Query: {result.query}",
        f"Corpus: {result.corpus_name} ({result.corpus_size} documents), top-k {result.top_k}",
        f"First stage: {result.models['first_stage']} [{result.runs_on['first_stage']}]",
    ]
    lines += [f"{RERANKER_LABELS[stage.kind][0]}: {stage.name} [{stage.runs_on}]" for stage in result.stages[1:]]
    kind = result.reranker_kind
    header = RERANKER_LABELS[kind][1] if kind else ""
    lines += ["", f"{'#':>3}  {f'{result.first_stage_label} ({result.first_score_name})':<44} | {header:<44} move"]
    rows = result.reranked or [None] * len(result.first_stage)
    for bi, cross in zip(result.first_stage, rows):
        left = f"{bi.score:6.3f} [{bi.id}] {_shorten(bi.text, 30)}"
        if cross is None:
            lines.append(f"{bi.rank:>3}  {left}")
            continue
        move = f"+{cross.move}" if cross.move > 0 else ("=" if cross.move == 0 else str(cross.move))
        probability = f"{cross.probability:.2f}" if cross.probability is not None else "    "
        right = f"{cross.score:6.2f} {probability} [{cross.id}] {_shorten(cross.text, 24)}"
        lines.append(f"{bi.rank:>3}  {left:<44} | {right:<44} {move}")
    if result.reranked_full is not None:
        missed = result.missed_by_first_stage()
        lines.append("")
        lines.append(
            f"Whole corpus scored by the {RERANKER_LABELS[kind][0].lower()}: {len(missed)} of its top {result.top_k} "
            f"were not among the {result.first_stage_label}'s candidates."
        )
        for hit in missed:
            lines.append(f"  {kind} rank {hit.rank}, first-stage rank {hit.first_rank}: [{hit.id}] {_shorten(hit.text, 60)}")
    agreements = result.agreements()
    if agreements:
        lines += ["", f"Agreement (top-{agreements[0].k}; Kendall's tau over shared documents; RBO p={agreements[0].rbo_p}):"]
    for item in agreements:
        tau = "n/a" if item.kendall_tau_shared is None else f"{item.kendall_tau_shared:.2f}"
        moves = ", ".join(f"[{row['id']}] {row['rank_a']}->{row['rank_b']}" for row in item.largest_disagreements)
        lines.append(f"  {item.a} vs {item.b}: overlap {item.overlap_at_k:.2f}, tau {tau} ({item.shared} shared), "
                     f"RBO {item.rbo:.2f}" + (f"; most moved: {moves}" if moves else ""))
    lines.append("")
    cached = " (cached)" if result.corpus_index_cached else ""
    lines.append(
        "Timings (ms): "
        + ", ".join(f"{name}{cached if name.startswith('corpus_') else ''} {ms:.1f}" for name, ms in result.timings_ms.items())
    )
    lines.extend(f"Note: {note}" for note in result.notes)
    return "\n".join(lines)



def run_compare(args) -> int:
    """`compare`: rank the corpus (--corpus and/or a prebuilt --index) with the first stage and re-rank its
    top-k; prints the side-by-side table or, with --json, the result's dict. Returns the exit code 0;
    raises ExplorerError for bad arguments or input (main prints it, exit 2)."""
    from explorer.data.builtin_corpora import read_corpus_argument
    from explorer.pipeline.compare import compare

    if not args.corpus and not args.index:
        raise ExplorerError("Give --corpus (a corpus file or builtin:NAME) or --index (a prebuilt index folder).")
    index = corpus = None
    if args.index:
        from explorer.indexing.prebuilt import PrebuiltIndex

        index = PrebuiltIndex(args.index)
        corpus = index.corpus
    if args.corpus:
        corpus = read_corpus_argument(args.corpus)
        if index is not None:
            index.check_corpus(corpus)
    result = compare(
        args.query,
        corpus,
        top_k=args.top_k,
        bi_encoder=args.bi_encoder,
        cross_encoder=args.cross_encoder,
        score_all=args.all,
        precision=args.precision,
        persist_embeddings=True,
        allow_local_models=True,
        first_stage=args.first_stage,
        rerankers=args.rerankers,
        index=index,
        cross_label=args.label,
    )
    _emit(args, result.to_dict(), lambda: format_comparison(result))
    return 0


def run_index(args) -> int:
    """Build (or finish) an index folder on Ray."""
    from explorer.budgets import MAX_INDEX_CORPUS_BYTES, MAX_INDEX_DOCUMENTS
    from explorer.data.builtin_corpora import BUILTIN_PREFIX, load_set
    from explorer.data.corpus import read_corpus
    from explorer.indexing.build import build

    if args.corpus.startswith(BUILTIN_PREFIX):
        corpus = load_set(args.corpus[len(BUILTIN_PREFIX):]).corpus
    else:
        corpus = read_corpus(args.corpus, max_documents=MAX_INDEX_DOCUMENTS, max_bytes=MAX_INDEX_CORPUS_BYTES)
    bi_encoders = [] if args.bi_encoder == ["none"] else (args.bi_encoder or [DEFAULT_BI_ENCODER])
    manifest, _ = build(
        corpus, args.out, bi_encoders, bm25=args.bm25, late=args.late, ray_address=args.ray,
        workers=args.workers, precision=args.precision, shard_size=args.shard_size,
        index_type=args.index_type, allow_local_models=True,
    )

    def text() -> str:
        lines = [f"Index of {corpus.name} ({len(corpus):,} documents) in {args.out}, built in {manifest['build_seconds']:.1f} s"]
        for entry in manifest["bi_encoders"]:
            lines.append(f"  bi-encoder {entry['model_id']} [{entry['precision']}]: {entry['index_type']} FAISS index, "
                         f"recall@10 vs exact {entry['recall_at_10']:.3f}")
        if manifest["late"]:
            lines.append(f"  late interaction {manifest['late']['model_id']}: {manifest['late']['tokens']:,} token vectors")
        if manifest["bm25"]:
            lines.append("  BM25 (bm25s)")
        lines.append("Shards computed in this run: " + ", ".join(f"{k} {v}" for k, v in manifest["shards_computed"].items()))
        return "\n".join(lines)

    _emit(args, manifest, text)
    return 0


def run_inspect(args) -> int:
    """Attention block, score and occlusion attribution of one pair."""
    from explorer.interpret.attention import check_layer_head, format_inspection, inspect_pair, inspection_to_dict
    from explorer.interpret.attribution import occlusion_attribution
    from explorer.interpret.pair import encode_pair, inspection_model

    scorer = inspection_model(args.cross_encoder, allow_local_path=True, label=args.label)
    pair = encode_pair(scorer, args.query, args.doc)
    inspection = inspect_pair(scorer, pair)
    layer, head = check_layer_head(inspection, args.layer, args.head)
    attribution = occlusion_attribution(scorer, pair)
    _emit(
        args,
        inspection_to_dict(inspection, layer, head, attribution),
        lambda: format_inspection(inspection, layer, head, attribution),
    )
    return 0


def run_explain(args) -> int:
    """Scores of A and B, their gap, and each document's words weighed by one method."""
    from explorer.interpret.contrast import explain_pair_gap, format_pair_gap
    from explorer.interpret.pair import rescoring_model

    if not 1 <= args.steps <= 1000:
        raise ExplorerError(f"--steps must be 1 to 1000, not {args.steps}.")
    scorer = rescoring_model(args.cross_encoder, allow_local_path=True, label=args.label)
    result = explain_pair_gap(scorer, args.query, args.doc, args.versus, args.method,
                              steps=args.steps, agreement=args.agreement)
    _emit(args, result.to_dict(), lambda: format_pair_gap(result))
    return 0


def run_why(args) -> int:
    """`why`: where one document stands in every stage of the pipeline and each ranker's explanation
    (interpret/why.py), as text or, with --json, the dict the Compare page's panel shows."""
    from explorer.data.builtin_corpora import read_corpus_argument
    from explorer.interpret.why import why_document
    from explorer.views.why_view import format_why, why_data

    report = why_document(args.query, read_corpus_argument(args.corpus), args.doc, args.first_stage, args.rerankers,
                          args.top_k, args.bi_encoder, args.cross_encoder, args.precision, args.attribution,
                          args.label, persist=True)
    _emit(args, why_data(report), lambda: format_why(report))
    return 0


def run_heads(args) -> int:
    """Head importance of one pair (and, with --versus, patching from it into B), on the fp32 model."""
    from explorer.interpret.heads import format_head_importance, format_head_patching, head_importance, head_patching
    from explorer.interpret.pair import encode_pair, rescoring_model

    scorer = rescoring_model(args.cross_encoder, allow_local_path=True)
    pair = encode_pair(scorer, args.query, args.doc)
    importance = head_importance(scorer, pair, args.mode)
    data = importance.to_dict()
    text = [format_head_importance(importance)]
    if args.versus is not None:
        patching = head_patching(scorer, pair, encode_pair(scorer, args.query, args.versus), args.positions)
        data["patching"] = patching.to_dict()
        text.append(format_head_patching(patching))
    _emit(args, data, lambda: "\n\n".join(text))
    return 0


def run_bench(args) -> int:
    """`bench`: time the stages (or, with --contrast / --heads, the explanations) and print the table or JSON;
    progress goes to stderr only with the table. Returns the exit code 0."""
    from explorer.tools.bench import format_table, run_benchmark

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Progress goes to stderr, and only with the table: --json output stays one object.
    progress = (lambda message: None) if args.json else (lambda message: print(message, file=sys.stderr, flush=True))
    if args.why:
        from explorer.tools.why_bench import format_why_bench, run_why_benchmark

        why = run_why_benchmark(repeats=2 if args.quick else 3, progress=progress)
        _emit(args, why, lambda: format_why_bench(why))
        return 0
    if args.contrast:
        from explorer.tools.bench import format_contrast, run_contrast_benchmark

        rows = run_contrast_benchmark(repeats=2 if args.quick else 3)
        _emit(args, {"contrast": rows}, lambda: format_contrast(rows))
        return 0
    if args.depth:
        from explorer.tools.depth_bench import bench_depth_sweep, format_depth_bench

        sweep = bench_depth_sweep()
        _emit(args, {"depth_sweep": sweep}, lambda: format_depth_bench(sweep))
        return 0
    if args.engines:
        from explorer.tools.int8_bench import format_engines, run_engines_benchmark

        engines = run_engines_benchmark(quick=args.quick)
        _emit(args, engines, lambda: format_engines(engines))
        return 0
    if args.heads:
        from explorer.tools.bench import benchmark_queries, bench_head_grid, format_head_grid, realistic_passages

        rows = bench_head_grid(benchmark_queries()[0], realistic_passages(), repeats=1 if args.quick else 3)
        _emit(args, {"head_grid": rows}, lambda: format_head_grid(rows))
        return 0
    result = run_benchmark(quick=args.quick, progress=progress)
    _emit(args, result, lambda: format_table(result))
    return 0


def run_loadtest(args) -> int:
    """`loadtest`: drive a running app at --url with concurrent clients and print latencies (p50/p95/max, ms)
    and memory (with --soak: rounds of requests, watching memory and served files); exit code 1 when any
    request of a plain load test failed, else 0."""
    from explorer.tools.loadtest import format_load_report, format_soak_report, run_load, run_soak

    if args.soak:
        report = run_soak(args.url, rounds=args.rounds, requests_per_round=args.requests or 50,
                          clients=args.clients or 4, timeout_s=args.timeout, files_dir=args.files_dir)
        _emit(args, report.to_dict(), lambda: format_soak_report(report))
        return 0

    report = run_load(args.url, args.clients or 20, args.requests or 10, args.timeout, mixed=args.mixed)
    _emit(args, report.to_dict(), lambda: format_load_report(report))
    return 0 if report.errors == 0 else 1


def run_case_command(args) -> int:
    """`case new|show|judge|snapshot|export|import` (explorer/case_cli.py)."""
    from explorer.case_cli import run_case

    return run_case(args, _emit)


COMMANDS = {
    "compare": run_compare,
    "case": run_case_command,
    "index": run_index,
    "inspect": run_inspect,
    "explain": run_explain,
    "heads": run_heads,
    "why": run_why,
    "eval": run_eval,
    "bench": run_bench,
    "loadtest": run_loadtest,
}


# ---- app.py's start options (the web app is started from a command line too) -------------------


def parse_start_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """What whoever starts the app may configure (`python app.py --help`); a visitor can name no path.

    Local models also come from EXPLORER_MODELS (paths separated by the OS path separator), for a
    Space, where the start command is fixed.
    """
    parser = argparse.ArgumentParser(prog="app.py", description="Cross-Encoder Explorer: the web app.", allow_abbrev=False)
    parser.add_argument(
        "--model", action="append", default=[], metavar="PATH",
        help="a local model folder (a cross-encoder if its config.json is a sequence classifier, else a "
             "bi-encoder) or a cross-encoder .onnx file with its tokenizer beside it; offered in the pickers "
             "as local:NAME. Repeat for several.",
    )
    parser.add_argument("--index", metavar="DIR", help="a prebuilt index (python -m explorer index) offered as "
                        "a corpus in the Compare tab; or set EXPLORER_INDEX")
    if argv is None:  # only `python app.py` hands its own flags to the app; an importer's argv is not ours
        argv = sys.argv[1:] if Path(sys.argv[0]).name == "app.py" else []
    arguments = parser.parse_args(argv)  # a mistyped flag stops the start with argparse's message (exit 2)
    arguments.model += [p for p in os.environ.get("EXPLORER_MODELS", "").split(os.pathsep) if p.strip()]
    return arguments


def register_models(paths: list[str]) -> list:  # of engine.catalog.ModelChoice
    """Check each local model, load it once and run the sanity probe, saying what it found.

    A path that is not a model stops the start with its reason: the operator typed it.
    """
    from explorer.pipeline.compare import register_local_model

    registered = []
    for path in paths:
        try:
            choice, verdict = register_local_model(path)
        except ExplorerError as error:
            raise SystemExit(f"app.py --model {path}: {error}") from None
        print(f"Registered {choice.id} from {path}: {choice.label}; {verdict}", file=sys.stderr)
        registered.append(choice)
    return registered


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]) and run the command; returns its exit code, or 2 after printing an
    ExplorerError as one `error: ...` line on stderr."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ExplorerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
