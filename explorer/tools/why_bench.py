"""Benchmark of the "Why not this document?" panel on python_docs (6,128 passages): the panel for a
document outside top-k, per pipeline, after the comparison it follows (the corpus index is cached,
as on the page). Word-level attribution is timed apart: it is the one part allowed to be slow.
"""

from __future__ import annotations

import statistics
import time

from explorer.tools.bench import machine_info

QUERY = "how do I parse a JSON string into a Python object"
PIPELINES = (("bi", ("cross",)), ("bm25", ("cross",)), ("hybrid", ("late", "cross")))
TOP_K = 10
RANKS = (40, 2000)  # first-stage ranks of the documents explained: just past top-k's reach, and deep


def run_why_benchmark(repeats: int = 3, progress=print) -> dict:
    """Median ms of the panel's work (`why_document` and its HTML) per pipeline and first-stage rank, each run
    just after a comparison (untimed; the pair-score cache cleared first, so the document and the ones
    between top-k and it are scored in the timed part): the quick answer without attribution and with the
    occlusion first view, the completion with what top-k at its rank would give, and word level (apart)."""
    from explorer import caches
    from explorer.data.builtin_corpora import load_set
    from explorer.interpret.why import why_document, with_would_rank
    from explorer.pipeline.compare import compare
    from explorer.views.why_view import why_html

    corpus = load_set("python_docs").corpus
    rows = []
    for first_stage, rerankers in PIPELINES:
        def fresh_comparison():
            caches.PAIR_SCORES.clear()
            compare(QUERY, corpus, top_k=TOP_K, first_stage=first_stage, rerankers=rerankers, persist_embeddings=True)

        progress(f"{first_stage}+{'+'.join(rerankers)}: the comparison first (indexes the corpus once) ...")
        fresh_comparison()
        full_order = _first_stage_order(first_stage, corpus)
        for rank in RANKS:
            doc_id = full_order[rank - 1]
            row = {"pipeline": f"{first_stage}+{'+'.join(rerankers)}", "first_stage_rank": rank, "doc_id": doc_id}
            why_html([why_document(QUERY, corpus, doc_id, first_stage, rerankers, TOP_K)])  # models warm
            for view, runs in (("none", repeats), ("first", repeats), ("words", 1)):
                quick, complete = [], []
                for _ in range(runs):
                    fresh_comparison()
                    started = time.perf_counter()
                    report = why_document(QUERY, corpus, doc_id, first_stage, rerankers, TOP_K, attribution=view,
                                          would_rank=False)
                    why_html([report])
                    quick.append((time.perf_counter() - started) * 1000.0)
                    started = time.perf_counter()
                    why_html([with_would_rank(report, corpus, first_stage, rerankers)])
                    complete.append((time.perf_counter() - started) * 1000.0)
                row[f"ms_{view}"] = round(statistics.median(quick), 1)
                row[f"ms_would_rank_after_{view}"] = round(statistics.median(complete), 1)
            rows.append(row)
            progress(f"  rank {rank}: {row}")
    return {"machine": machine_info(), "corpus": f"python_docs ({len(corpus):,} passages)", "query": QUERY,
            "top_k": TOP_K, "repeats": repeats, "rows": rows}


def _first_stage_order(first_stage: str, corpus) -> list[str]:
    from explorer.engine.catalog import DEFAULT_BI_ENCODER
    from explorer.pipeline.compare import first_stage_ranker

    ranker = first_stage_ranker(first_stage, DEFAULT_BI_ENCODER, "auto", False)
    index, _ = ranker.index_corpus(corpus.texts, corpus.fingerprint)
    _, positions = ranker.search(index, ranker.encode_queries([QUERY]), len(corpus))
    return [corpus.documents[int(p)].id for p in positions[0]]


def format_why_bench(result: dict) -> str:
    """The table `bench --why` prints: median ms of the panel per pipeline and first-stage rank."""
    lines = [f"Why panel on {result['corpus']}, query {result['query']!r}, top-k {result['top_k']}, "
             f"median of {result['repeats']}, each just after a comparison",
             f"{'pipeline':<22}{'rank':>6}{'quick answer':>14}{'+ first view':>14}{'then would-rank':>17}"
             f"{'word level':>12}"]
    for row in result["rows"]:
        lines.append(f"{row['pipeline']:<22}{row['first_stage_rank']:>6}{row['ms_none']:>11.0f} ms"
                     f"{row['ms_first']:>11.0f} ms{row['ms_would_rank_after_first']:>14.0f} ms{row['ms_words']:>9.0f} ms")
    lines.append("Quick answer: where it stands (rank among today's candidates) and every ranker's explanation; "
                 "'+ first view' adds the cross-encoder's occlusion of runs of words; 'then would-rank' scores the "
                 "documents between top-k and it (at most 100) to say what top-k at its rank would give. "
                 "Word-level attribution is timed apart (one run).")
    return "\n".join(lines)
