"""`python -m explorer bench --depth`: the depth sweep's time on python_docs (40 queries, depths up to 100).

One `depth_sweep` of `bi+cross` at depths 5, 10, 20, 50, 100 with the default settings (precision
"auto"), timed end to end by `time.perf_counter` (model loading and the cached corpus embeddings
included; a first run also builds and encodes the corpus). It prints the pairs the cross-encoder
scored (at most 40 x 100, shared across depths) beside what five separate runs would score.
"""

from __future__ import annotations

import time

from explorer.tools.bench import machine_info

DEPTHS = (5, 10, 20, 50, 100)


def bench_depth_sweep(pipelines: str = "bi+cross", depths=DEPTHS, set_name: str = "python_docs") -> dict:
    """Run and time the sweep; returns the machine, the wall time, pairs scored and each depth's point."""
    from explorer.data.builtin_corpora import load_set
    from explorer.pipeline.depth import depth_sweep

    data = load_set(set_name)
    started = time.perf_counter()
    sweep = depth_sweep(data.corpus, data.queries, data.qrels, pipelines, depths, persist_embeddings=True)
    wall_s = time.perf_counter() - started
    return {
        "machine": machine_info(), "set": set_name, "pipelines": pipelines, "queries": sweep.query_count,
        "depths": sweep.depths, "wall_s": round(wall_s, 2), "pairs_scored": sweep.pairs_scored,
        "pair_ceiling": sweep.pair_ceiling, "pairs_without_sharing": sweep.query_count * sum(sweep.depths),
        "curves": {name: [vars(p).copy() for p in curve] for name, curve in sweep.curves.items()},
        "chosen": {name: sweep.sentence(name) for name in sweep.pipelines},
    }


def format_depth_bench(result: dict) -> str:
    """The printed lines of `bench --depth`."""
    machine = result["machine"]
    pairs = ", ".join(f"{kind} {count:,}" for kind, count in result["pairs_scored"].items())
    lines = [
        f"Depth sweep on {result['set']} ({result['queries']} queries), {result['pipelines']}, depths "
        f"{', '.join(map(str, result['depths']))}: {result['wall_s']:.1f} s",
        f"  pairs scored: {pairs} (at most {result['pair_ceiling']:,}; five separate runs would score "
        f"{result['pairs_without_sharing']:,})",
        f"  on {machine['cpu_model']} ({machine['logical_cpus']} logical CPUs, load {machine['load_average_1min_at_start']} "
        f"at the start), precision {machine['default_precision']}",
    ]
    lines += [f"  {sentence}" for sentence in result["chosen"].values()]
    return "\n".join(lines)
