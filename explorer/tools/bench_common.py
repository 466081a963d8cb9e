"""What every benchmark shares: the machine it ran on, the passages and queries it runs, Spearman."""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np

MIN_WORDS, MAX_WORDS = 30, 200


def machine_info() -> dict:
    """What a benchmark ran on: CPU model (from /proc/cpuinfo where readable), logical CPUs, torch threads,
    native bf16 support, the precision "auto" resolves to, the Python and torch versions, and the 1-minute
    load average at the start."""
    import torch

    from explorer.engine.allocator import retain_freed_memory
    from explorer.engine.precision import bf16_supported, cpu_kind, resolve_precision

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "cpu_kind": cpu_kind(),
        "native_bf16": bf16_supported(),
        "default_precision": resolve_precision("auto"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "glibc_keeps_freed_memory": retain_freed_memory(),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }


def realistic_passages() -> list[str]:
    """Passages of 30 to 200 words from the Python-documentation corpus, in corpus order."""
    from explorer.data.python_docs import load_python_docs

    texts = load_python_docs().texts
    return [t for t in texts if MIN_WORDS <= len(t.split()) <= MAX_WORDS]


def benchmark_queries() -> list[str]:
    """The hand-written queries of the shipped python_docs set (plain questions, 4 to 10 words)."""
    from explorer.data.builtin_corpora import get_set
    from explorer.data.corpus import read_queries

    return [q.text for q in read_queries(get_set("python_docs").queries_path)]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equal-length score vectors, from scipy.stats.spearmanr (nan when
    either is constant)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def bench_pairs(passages: list[str], queries: list[str], count: int = 100, seed: int = 0) -> tuple[list[str], list[str]]:
    """`count` passages drawn with `seed`, each paired with the queries in turn: (queries, passages)."""
    docs = random.Random(seed).sample(passages, min(count, len(passages)))
    return [queries[i % len(queries)] for i in range(len(docs))], docs


def agreement_with(exact: np.ndarray, scores: np.ndarray) -> dict:
    """How `scores` rank the pairs against `exact` (fp32): Spearman (scipy), overlap of the top 10 (a fraction),
    and the largest absolute difference in logits."""
    top = min(10, len(exact))
    top_exact = set(np.argsort(-exact, kind="stable")[:top].tolist())
    top_scores = set(np.argsort(-scores, kind="stable")[:top].tolist())
    return {"spearman": round(spearman(scores, exact), 5), "top10_overlap": len(top_exact & top_scores) / top,
            "max_abs_logit_diff": round(float(np.abs(scores - exact).max()), 4)}
