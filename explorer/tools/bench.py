"""`python -m explorer bench`: our speed beside sentence-transformers', measured in one run.

Both sides use the same weights (the default offline models) and the same realistic
passages (30 to 200 words from the Python-documentation corpus). Every figure is the
median of several timed runs after a warm-up run, by `time.perf_counter`. Our side runs
with default settings (precision "auto"); the peers run with theirs (fp32, batch 32).
Vectors for index sizes beyond the corpus are synthetic (see `synthetic_vectors`).
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import time
from pathlib import Path

import numpy as np

# Re-exported: tests and tools import these from here.
from explorer.tools.bench_common import MAX_WORDS, MIN_WORDS, benchmark_queries, machine_info  # noqa: F401
from explorer.tools.bench_common import agreement_with, bench_pairs, realistic_passages  # noqa: F401


def median_ms(run, repeats: int) -> float:
    """Median wall time of `run()` in ms, after one untimed warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def agreement(fast: np.ndarray, exact: np.ndarray) -> dict:
    """How closely fast-path logits follow fp32 logits of the same weights: `agreement_with`'s Spearman and
    largest gap, and whether the top 10 come in the same order."""
    same_order = (np.argsort(-fast, kind="stable")[:10] == np.argsort(-exact, kind="stable")[:10]).all()
    measured = agreement_with(exact, fast)
    return {"spearman": measured["spearman"], "max_abs_logit_diff": measured["max_abs_logit_diff"],
            "same_top10_order": bool(same_order)}


def bench_rerank(cross, passages: list[str], queries: list[str], repeats: int) -> dict:
    """100 (query, passage) pairs: ours (auto precision) vs CrossEncoder.predict (fp32)."""
    from sentence_transformers import CrossEncoder

    from explorer.engine.loading import offline_cross_encoder_dir
    from explorer.rankers.cross_encoder import CrossEncoder as OurCrossEncoder

    qs, docs = bench_pairs(passages, queries)
    peer = CrossEncoder(str(offline_cross_encoder_dir()))
    pairs = list(zip(qs, docs))
    ours, exact_ranker = OurCrossEncoder(cross, "auto"), OurCrossEncoder(cross, "fp32")
    ours_ms = median_ms(lambda: ours.score(qs, docs), repeats)
    peer_ms = median_ms(lambda: peer.predict(pairs, show_progress_bar=False), repeats)
    fast = ours.score(qs, docs).logits
    exact = exact_ranker.score(qs, docs).logits
    import torch

    peer_logits = peer.predict(pairs, activation_fn=torch.nn.Identity(), show_progress_bar=False)
    return {
        "pairs": 100,
        "ours_precision": ours.precision,
        "ours_engine": ours.info.engine,
        "ours_pairs_per_s": round(100 / ours_ms * 1000, 1),
        "peer_pairs_per_s": round(100 / peer_ms * 1000, 1),
        "ratio": round(peer_ms / ours_ms, 2),
        "agreement_with_fp32": agreement(fast, exact),
        "ours_fp32_vs_peer_max_abs_logit_diff": round(float(np.abs(exact - peer_logits).max()), 5),
    }


def bench_encode(bi, passages: list[str], repeats: int, count: int = 1000) -> tuple[dict, np.ndarray]:
    """`count` passages: ours (auto precision) vs SentenceTransformer.encode (fp32)."""
    from sentence_transformers import SentenceTransformer

    from explorer.rankers.bi_encoder import BiEncoder

    texts = random.Random(1).sample(passages, min(count, len(passages)))
    peer = SentenceTransformer(bi.source)
    ours = BiEncoder(bi, "auto")
    ours_ms = median_ms(lambda: ours.encode(texts), repeats)
    peer_ms = median_ms(lambda: peer.encode(texts, show_progress_bar=False), repeats)
    fast = ours.encode(texts)
    exact = BiEncoder(bi, "fp32").encode(texts)
    result = {
        "passages": len(texts),
        "ours_precision": ours.precision,
        "ours_engine": ours.info.engine,
        "ours_passages_per_s": round(len(texts) / ours_ms * 1000, 1),
        "peer_passages_per_s": round(len(texts) / peer_ms * 1000, 1),
        "ratio": round(peer_ms / ours_ms, 2),
        "min_cosine_with_fp32": round(float((fast * exact).sum(axis=1).min()), 6),
    }
    return result, fast


def synthetic_vectors(real: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` unit vectors scattered around real passage embeddings (cosine about 0.8 to them).

    Uniform random vectors would be far easier for HNSW than real, clustered embeddings.
    """
    rng = np.random.default_rng(seed)
    base = real[rng.integers(0, len(real), size=count)]
    noisy = base + rng.normal(0.0, 0.04, size=base.shape).astype(np.float32)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def bench_query_latency(bi, real: np.ndarray, queries: list[str], sizes: list[int], repeats: int) -> list[dict]:
    """Encode one query and search: exact (flat inner product) and HNSW, with HNSW's recall@10."""
    from explorer.rankers.bi_encoder import BiEncoder, build_index, search

    rows = []
    encoder = BiEncoder(bi, "auto")
    query_vectors = encoder.encode(queries)
    for size in sizes:
        vectors = real[:size] if size <= len(real) else np.vstack([real, synthetic_vectors(real, size - len(real))])
        kinds = ["exact", "hnsw"] if size >= 10_000 else ["exact"]
        exact_top = None
        for kind in kinds:
            started = time.perf_counter()
            index = build_index(vectors, kind=kind)
            build_ms = (time.perf_counter() - started) * 1000.0

            def one_round(index=index):
                for query in queries:
                    search(index, encoder.encode([query]), 10)

            latency = median_ms(one_round, repeats) / len(queries)
            _, top = search(index, query_vectors, 10)
            row = {"passages": size, "index": kind, "query_ms": round(latency, 2), "build_s": round(build_ms / 1000, 2)}
            if kind == "exact":
                exact_top = top
            else:
                hits = [len(set(a) & set(b)) / 10 for a, b in zip(top.tolist(), exact_top.tolist())]
                row["recall_at_10"] = round(float(np.mean(hits)), 3)
            rows.append(row)
    return rows


def bench_attention(pair: tuple[str, str], repeats: int) -> dict:
    """One pair through the eager-attention model, all attention weights kept (fp32)."""
    from explorer.interpret.attention import inspect_pair
    from explorer.interpret.pair import encode_pair, inspection_model

    model = inspection_model()
    total = median_ms(lambda: inspect_pair(model, encode_pair(model, *pair)), repeats)
    forward = statistics.median(inspect_pair(model, encode_pair(model, *pair)).attention_ms for _ in range(repeats))
    return {"inspect_pair_ms": round(total, 1), "forward_with_attentions_ms": round(forward, 1)}


def pair_of_tokens(query: str, passages: list[str], tokenizer, tokens: int = 64) -> str:
    """A document cut, word by word, from the passages so that the (query, document) pair is
    `tokens` long ([CLS] and both [SEP] included), or the first length past it."""
    words = " ".join(passages).split()
    for count in range(1, len(words) + 1):
        document = " ".join(words[:count])
        if len(tokenizer(query, document)["input_ids"]) >= tokens:
            return document
    return " ".join(words)


def bench_head_grid(query: str, passages: list[str], repeats: int = 3, threads: int = 2) -> list[dict]:
    """The Inspect tab's head grid (every head zero-ablated, plus each layer's two blocks) of a
    64-token pair, on `threads` torch threads, fp32 and bf16: wall time per grid."""
    import torch

    from explorer.interpret.heads import head_importance
    from explorer.interpret.pair import encode_pair, rescoring_model
    from explorer.rankers.cross_encoder import CrossEncoder

    fp32 = rescoring_model()
    document = pair_of_tokens(query, passages, fp32.tokenizer)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows = []
    try:
        for scorer in (fp32, CrossEncoder(fp32.model, "bf16")):
            pair = encode_pair(scorer, query, document)
            grid = head_importance(scorer, pair)  # warm-up, and the numbers shown
            walls, cpus = [], []
            for _ in range(repeats):
                cpu = time.process_time()
                walls.append(head_importance(scorer, pair).elapsed_ms)
                cpus.append(time.process_time() - cpu)
            # On a shared machine CPU seconds / threads is the better guide to an idle machine's wall time.
            rows.append({"precision": scorer.precision, "pair_tokens": grid.tokens, "copies": grid.copies,
                         "passes": grid.passes, "grid_ms": round(statistics.median(walls), 1),
                         "cpu_s": round(statistics.median(cpus), 2), "threads": threads, "logit": round(grid.logit, 3),
                         "top_head": grid.top_heads(1)[0], "load_average_1min": round(os.getloadavg()[0], 2)})
    finally:
        torch.set_num_threads(before)
    return rows


def format_head_grid(rows: list[dict]) -> str:
    """The head-grid benchmark rows as text, one line per precision: wall ms, CPU s per thread, copies and
    passes, the logit and the top head; `rows` must not be empty."""
    lines = [f"Head grid (every head zero-ablated + each layer's attention and feed-forward block), one "
             f"{rows[0]['pair_tokens']}-token pair, {rows[0]['threads']} torch threads, median of the runs:"]
    for row in rows:
        top = row["top_head"]
        lines.append(f"  {row['precision']:<5} {row['grid_ms']:>9} ms wall, {row['cpu_s'] / row['threads']:.1f} s CPU / thread "
                     f"({row['copies']} copies in {row['passes']} passes; "
                     f"logit {row['logit']}, top head layer {top['layer']} head {top['head']} {top['change']:+.3f}; "
                     f"load {row['load_average_1min']})")
    return "\n".join(lines)


def contrast_documents(passages: list[str], tokenizer, count: int = 2, low: int = 140, high: int = 160) -> list[str]:
    """The first `count` passages of `low` to `high` tokens of their own (the issue's ~150-token documents)."""
    sized = [p for p in passages if low <= len(tokenizer(p, add_special_tokens=False)["input_ids"]) <= high]
    return sized[:count]


def bench_contrast(query: str, doc_a: str, doc_b: str, repeats: int = 3, ig_steps: tuple[int, ...] = (20, 50)) -> list[dict]:
    """"Why is A above B" as the Compare tab's contrast view computes it, per method: wall time and
    this process's CPU time (on a shared machine, CPU seconds / threads is the better guide to an
    idle machine's wall time). Models are loaded and warmed first."""
    import time

    import torch

    from explorer.interpret.contrast import explain_pair_gap, forget_kept_attributions
    from explorer.interpret.pair import rescoring_model

    scorer = rescoring_model()
    explain_pair_gap(scorer, query, doc_a[:200], doc_b[:200], "occlusion")  # warm-up: kernels, allocator
    tokens = [len(scorer.tokenizer(query, d)["input_ids"]) for d in (doc_a, doc_b)]
    rows = []
    runs = [("occlusion, first view (runs of words)", "occlusion", {"first_view": True}), ("occlusion", "occlusion", {}),
            ("gradxinput", "gradxinput", {}), *(("ig", "ig", {"steps": s}) for s in ig_steps)]
    for name, method, options in runs:
        steps = options.get("steps")
        walls, cpus = [], []
        for _ in range(repeats):
            forget_kept_attributions()  # a first view: nothing kept from the last run
            wall, cpu = time.perf_counter(), time.process_time()
            explain_pair_gap(scorer, query, doc_a, doc_b, method, **options)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        rows.append({"method": name, "steps": steps, "pair_tokens": tokens, "wall_s": round(statistics.median(walls), 2),
                     "cpu_s": round(statistics.median(cpus), 2), "threads": torch.get_num_threads(),
                     "load_average_1min": round(os.getloadavg()[0], 2)})
    # After an edit of A the view recomputes only A: B's attribution is kept from the last view.
    walls, cpus = [], []
    explain_pair_gap(scorer, query, doc_a, doc_b, "occlusion")
    for number in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        explain_pair_gap(scorer, query, f"{doc_a} Edit number {number}.", doc_b, "occlusion")
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    rows.append({"method": "occlusion after an edit of A", "steps": None, "pair_tokens": tokens,
                 "wall_s": round(statistics.median(walls), 2), "cpu_s": round(statistics.median(cpus), 2),
                 "threads": torch.get_num_threads(), "load_average_1min": round(os.getloadavg()[0], 2)})
    return rows


def format_contrast(rows: list[dict]) -> str:
    """The contrast benchmark rows as a text table, one line per method: steps, wall s, CPU s, CPU s per
    thread and the 1-minute load; `rows` must not be empty."""
    lines = [f"Contrast view (why is A above B), pairs of {rows[0]['pair_tokens']} tokens, median of the runs:",
             f"{'method':<40} {'steps':>5} {'wall s':>7} {'CPU s':>7} {'CPU s / threads':>16} {'load':>5}"]
    for row in rows:
        lines.append(f"{row['method']:<40} {row['steps'] or '':>5} {row['wall_s']:>7} {row['cpu_s']:>7} "
                     f"{row['cpu_s'] / row['threads']:>16.2f} {row['load_average_1min']:>5}")
    lines.append("A shared CPU makes wall times noisy: compare runs at similar load, or use CPU s / threads.")
    return "\n".join(lines)


def run_contrast_benchmark(repeats: int = 3) -> list[dict]:
    """The contrast view's figures on two ~150-token python_docs passages and a shipped query."""
    from explorer.interpret.pair import rescoring_model

    doc_a, doc_b = contrast_documents(realistic_passages(), rescoring_model().tokenizer)
    return bench_contrast(benchmark_queries()[0], doc_a, doc_b, repeats)


def bench_end_to_end(passages: list[str], query: str, repeats: int) -> dict:
    """compare() on 1,000 passages with cached embeddings, re-ranking the top 50; and the peers doing the same."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from explorer.pipeline.compare import compare
    from explorer.data.corpus import Corpus, Document
    from explorer.engine.catalog import DEFAULT_BI_ENCODER
    from explorer.engine.loading import load_model, offline_cross_encoder_dir
    from explorer.rankers.bi_encoder import build_index, search

    texts = random.Random(2).sample(passages, min(1000, len(passages)))
    corpus = Corpus([Document(id=str(i), text=t) for i, t in enumerate(texts)], name="bench")
    compare(query, corpus, top_k=50)  # fills the embedding cache
    ours_ms = median_ms(lambda: compare(query, corpus, top_k=50), repeats)
    last = compare(query, corpus, top_k=50)

    bi_peer = SentenceTransformer(load_model(DEFAULT_BI_ENCODER, "bi").source)
    cross_peer = CrossEncoder(str(offline_cross_encoder_dir()))
    index = build_index(bi_peer.encode(texts, show_progress_bar=False))

    def peer_pipeline():
        _, top = search(index, bi_peer.encode([query], show_progress_bar=False), 50)
        cross_peer.predict([(query, texts[i]) for i in top[0]], show_progress_bar=False)

    peer_ms = median_ms(peer_pipeline, repeats)
    return {
        "passages": len(texts),
        "top_k": 50,
        "ours_ms": round(ours_ms, 1),
        "peer_ms": round(peer_ms, 1),
        "ratio": round(peer_ms / ours_ms, 2),
        "ours_stage_ms": last.timings_ms,
        "ours_precision": last.runs_on,
    }


def bench_four_columns(passages: list[str], query: str, repeats: int) -> dict:
    """The teacher's preset as the page runs it: hybrid first stage over 1,000 cached passages,
    top-50 re-ranked by late interaction and then the cross-encoder (our side only: no peer
    runs these four stages as one pipeline)."""
    from explorer.data.corpus import Corpus, Document
    from explorer.pipeline.compare import compare

    texts = random.Random(2).sample(passages, min(1000, len(passages)))
    corpus = Corpus([Document(id=str(i), text=t) for i, t in enumerate(texts)], name="bench")

    def run():
        return compare(query, corpus, top_k=50, first_stage="hybrid", rerankers=["late", "cross"])

    run()  # fills the BM25 and embedding caches and loads the three models
    total_ms = median_ms(run, repeats)
    last = run()
    return {
        "passages": len(texts),
        "top_k": 50,
        "pipeline": "hybrid (BM25 + bi-encoder, RRF) -> late interaction -> cross-encoder",
        "ours_ms": round(total_ms, 1),
        "stage_ms": {stage.kind: round(stage.ms, 1) for stage in last.stages},
        "precision": last.runs_on,
    }


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def bench_cold_start(timeout_s: float = 180.0) -> dict:
    """Start `app.py` in a fresh process and time until it answers HTTP on loopback."""
    from explorer.tools.app_process import running_app

    try:
        with running_app(timeout_s=timeout_s) as app:
            rss = _peak_rss_mb(app.process.pid)
            return {"seconds_until_serving": round(app.startup_s, 2), "app_peak_rss_mb": rss}
    except RuntimeError as error:
        return {"error": str(error)}


def run_benchmark(quick: bool = False, progress=print) -> dict:
    """Every figure the issue asks for, as one JSON-ready dict."""
    from explorer.engine.catalog import DEFAULT_BI_ENCODER, DEFAULT_CROSS_ENCODER
    from explorer.engine.loading import load_model

    repeats = 2 if quick else 5
    result = {"machine": machine_info(), "repeats": repeats, "statistic": "median after one warm-up run"}
    progress("cold start of the app ...")
    result["cold_start"] = bench_cold_start()  # first, while this process is still small
    passages = realistic_passages()
    queries = benchmark_queries()
    result["passages"] = {"source": "python_docs corpus", "count": len(passages), "words": f"{MIN_WORDS}-{MAX_WORDS}"}
    bi = load_model(DEFAULT_BI_ENCODER, "bi")
    cross = load_model(DEFAULT_CROSS_ENCODER, "cross")
    progress("reranking 100 pairs ...")
    result["rerank"] = bench_rerank(cross, passages, queries, repeats)
    progress("the same 100 pairs on every engine: ours fp32 / bf16 / int8, onnxruntime and OpenVINO on the int8 file ...")
    from explorer.tools.int8_bench import bench_engines

    result["engines"] = bench_engines(cross, passages, queries, repeats)
    progress("encoding 1,000 passages ...")
    result["encode"], vectors = bench_encode(bi, passages, repeats)
    progress("query latency ...")
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    result["query_latency"] = bench_query_latency(bi, vectors, queries, sizes, repeats)
    progress("attention pass ...")
    result["attention"] = bench_attention((queries[0], passages[0]), repeats)
    progress("head grid of a 64-token pair on 2 threads, fp32 and bf16 ...")
    result["head_grid"] = bench_head_grid(queries[0], passages, repeats=1 if quick else 3)
    progress("end to end ...")
    result["end_to_end"] = bench_end_to_end(passages, queries[0], repeats)
    progress("four columns (hybrid, late interaction, cross-encoder) ...")
    result["four_columns"] = bench_four_columns(passages, queries[0], repeats)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    return result


def format_table(result: dict) -> str:
    """The benchmark as a plain-text table."""
    from explorer.tools.int8_bench import format_engines

    m, r, e = result["machine"], result["rerank"], result["encode"]
    lines = [
        f"CPU: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, torch threads {m['torch_threads']}, "
        f"native bf16 {m['native_bf16']}; load avg {m['load_average_1min_at_start']} -> {m.get('load_average_1min_at_end')}",
        f"Each figure: {result['statistic']}, {result['repeats']} runs.",
        "",
        f"{'measure':<44} {'ours':>12} {'sentence-transformers':>22} {'ratio':>7}",
        f"{'rerank 100 pairs (pairs/s), ours ' + r['ours_precision']:<44} {r['ours_pairs_per_s']:>12} {r['peer_pairs_per_s']:>22} {r['ratio']:>6}x",
        f"{'encode 1,000 passages (passages/s), ours ' + e['ours_precision']:<44} {e['ours_passages_per_s']:>12} {e['peer_passages_per_s']:>22} {e['ratio']:>6}x",
    ]
    end = result["end_to_end"]
    lines.append(f"{'end to end, 1,000 cached, top-50 (ms)':<44} {end['ours_ms']:>12} {end['peer_ms']:>22} {end['ratio']:>6}x")
    a = r["agreement_with_fp32"]
    lines += [
        "",
        f"Rerank agreement with fp32 (same weights): Spearman {a['spearman']}, max |logit diff| "
        f"{a['max_abs_logit_diff']} logit, same top-10 order {a['same_top10_order']}",
        f"Encode agreement with fp32: min cosine {e['min_cosine_with_fp32']}",
        *(["", format_engines(result["engines"])] if result.get("engines") else []),
        "",
        f"{'query latency (encode + search)':<34} {'index':<6} {'ms/query':>9} {'build s':>8} {'recall@10':>10}",
    ]
    for row in result["query_latency"]:
        recall = row.get("recall_at_10", "")
        lines.append(f"{row['passages']:>28,} passages {row['index']:<6} {row['query_ms']:>9} {row['build_s']:>8} {recall!s:>10}")
    four = result.get("four_columns")
    if four:
        lines += ["", f"Four columns ({four['pipeline']}), {four['passages']:,} cached passages, top-{four['top_k']}: "
                      f"{four['ours_ms']} ms ({', '.join(f'{k} {v}' for k, v in four['stage_ms'].items())} ms)"]
    att, cold = result["attention"], result["cold_start"]
    lines += [
        "",
        f"Attention pass, one pair: inspect_pair {att['inspect_pair_ms']} ms (forward with attentions "
        f"{att['forward_with_attentions_ms']} ms)",
        *([format_head_grid(result["head_grid"])] if result.get("head_grid") else []),
        f"End-to-end stages (ms): {', '.join(f'{k} {v}' for k, v in end['ours_stage_ms'].items())}",
        f"Cold start until serving: {cold.get('seconds_until_serving', cold.get('error'))} s; "
        f"app peak RSS {cold.get('app_peak_rss_mb')} MB",
        f"Peak RSS of this benchmark process (ours and the peers' models): {result['peak_rss_mb']} MB",
    ]
    return "\n".join(lines)
