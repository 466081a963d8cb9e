"""Paired statistics of pipelines against a baseline, over the same labelled queries.

For every measure and every pipeline other than the baseline, on the per-query differences
d = pipeline - baseline:

* ``mean_diff``: the mean of d;
* ``ci_low``, ``ci_high``: a percentile bootstrap 95% interval of that mean (queries resampled
  with replacement, ``BOOTSTRAP_RESAMPLES`` times, seeded);
* ``p_t``: the paired t-test's two-sided p (``scipy.stats.ttest_rel``); 1.0 when every
  difference is zero (scipy gives nan there: the two runs are the same);
* ``p_perm``: a paired randomization test: each query's difference has its sign flipped at
  random (``PERMUTATIONS`` times, seeded), and p is the share of those whose |mean| is at least
  the observed |mean|, two-sided, *with* the +1 correction: (count + 1) / (permutations + 1),
  so p is never 0;
* ``p_holm``: ``p_perm`` adjusted by Holm-Bonferroni over every comparison made (pipelines x
  measures);
* ``wins``, ``ties``, ``losses``: queries where d > 0, d = 0 (within 1e-9), d < 0.

With fewer than ``MIN_QUERIES_FOR_TESTS`` queries a note says that the tests mean little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from explorer.errors import ExplorerError

BOOTSTRAP_RESAMPLES = 10_000
PERMUTATIONS = 10_000
SEED = 20240601
MIN_QUERIES_FOR_TESTS = 10
TIE_EPSILON = 1e-9


@dataclass
class Comparison:
    pipeline: str
    baseline: str
    measure: str
    mean_diff: float
    ci_low: float
    ci_high: float
    p_t: float
    p_perm: float
    p_holm: float
    wins: int
    ties: int
    losses: int

    def to_dict(self) -> dict:
        return asdict(self)


def bootstrap_ci(diffs: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = SEED,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `diffs`."""
    d = np.asarray(diffs, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def permutation_p(diffs: Sequence[float], permutations: int = PERMUTATIONS, seed: int = SEED) -> float:
    """Two-sided paired sign-flip randomization test of mean(diffs) = 0, with the +1 correction.

    Permutation i flips the sign of query j's difference where the i-th row of
    ``rng.random((permutations, n)) < 0.5`` is true (one uniform per query per permutation).
    """
    d = np.asarray(diffs, dtype=np.float64)
    observed = abs(d.mean())
    rng = np.random.default_rng(seed)
    flips = rng.random((permutations, len(d))) < 0.5
    means = np.abs(np.where(flips, -d, d).mean(axis=1))
    count = int(np.sum(means >= observed - 1e-12))
    return (count + 1) / (permutations + 1)


def paired_t_p(values: Sequence[float], baseline: Sequence[float]) -> float:
    a, b = np.asarray(values, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if np.all(np.abs(a - b) <= TIE_EPSILON):
        return 1.0
    p = float(stats.ttest_rel(a, b).pvalue)
    return 0.0 if np.isnan(p) else p  # a constant non-zero difference: t is infinite


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given.

    Sorted ascending, the i-th smallest (1-based) is multiplied by (m - i + 1), capped at 1,
    and made non-decreasing by a running maximum.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for i, index in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - i) * p[index]))
        adjusted[index] = running
    return [float(x) for x in adjusted]


def compare_to_baseline(
    per_query: dict[str, dict[str, dict[str, float]]],
    baseline: str,
    measures: Sequence[str],
    resamples: int = BOOTSTRAP_RESAMPLES,
    permutations: int = PERMUTATIONS,
    seed: int = SEED,
) -> tuple[list[Comparison], list[str]]:
    """Every non-baseline pipeline against `baseline` on each measure, and notes.

    `per_query` is {pipeline: {query_id: {measure: value}}}, every pipeline over the same queries.
    """
    if baseline not in per_query:
        raise ExplorerError(f"The baseline {baseline!r} is not among the pipelines: {', '.join(per_query)}.")
    queries = list(per_query[baseline])
    rows = []
    for name, values in per_query.items():
        if name == baseline:
            continue
        if set(values) != set(queries):
            raise ExplorerError(f"{name} and {baseline} were not scored on the same queries.")
        for measure in measures:
            a = np.array([values[q][measure] for q in queries])
            b = np.array([per_query[baseline][q][measure] for q in queries])
            d = a - b
            low, high = bootstrap_ci(d, resamples, seed)
            rows.append(Comparison(
                pipeline=name, baseline=baseline, measure=measure, mean_diff=float(d.mean()),
                ci_low=low, ci_high=high, p_t=paired_t_p(a, b), p_perm=permutation_p(d, permutations, seed),
                p_holm=float("nan"), wins=int(np.sum(d > TIE_EPSILON)), ties=int(np.sum(np.abs(d) <= TIE_EPSILON)),
                losses=int(np.sum(d < -TIE_EPSILON)),
            ))
    for row, adjusted in zip(rows, holm([r.p_perm for r in rows])):
        row.p_holm = adjusted
    notes = []
    if len(queries) < MIN_QUERIES_FOR_TESTS:
        notes.append(
            f"Only {len(queries)} labelled queries: with fewer than {MIN_QUERIES_FOR_TESTS} the p-values and "
            "intervals mean little; read the per-query differences instead."
        )
    if rows:
        notes.append(
            f"p_holm adjusts p_perm (sign-flip randomization, {permutations:,} permutations, +1 correction) by "
            f"Holm-Bonferroni over all {len(rows)} comparisons; intervals are percentile bootstrap, "
            f"{resamples:,} resamples, seed {seed}."
        )
    return rows, notes


def format_significance(rows: Sequence[Comparison]) -> str:
    lines = [f"{'pipeline':<22}{'measure':<10}{'diff':>8}{'95% CI':>18}{'p_t':>8}{'p_perm':>8}{'p_holm':>8}  W/T/L"]
    for r in rows:
        ci = f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        lines.append(f"{r.pipeline:<22}{r.measure:<10}{r.mean_diff:>+8.3f}{ci:>18}{r.p_t:>8.3f}{r.p_perm:>8.3f}"
                     f"{r.p_holm:>8.3f}  {r.wins}/{r.ties}/{r.losses}")
    return "\n".join(lines)
