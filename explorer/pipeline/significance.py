"""Paired statistics of pipelines against a baseline, over the same labelled queries.

For every measure and every pipeline other than the baseline, on the per-query differences
d = pipeline - baseline (one number per query, in the measure's units):

* ``mean_diff``: the mean of d;
* ``ci_low``, ``ci_high``: a percentile bootstrap 95% interval of that mean
  (``scipy.stats.bootstrap``, queries resampled with replacement, ``BOOTSTRAP_RESAMPLES`` times,
  seeded);
* ``p_t``: the paired t-test's two-sided p (``scipy.stats.ttest_rel``); 1.0 when every
  difference is zero (scipy gives nan there: the two runs are the same);
* ``p_perm``: the paired randomization (sign-flip) test's two-sided p, from
  ``scipy.stats.permutation_test`` with ``permutation_type="samples"``: under the null each
  query's difference is as likely to have either sign. With at most ``EXACT_MAX_QUERIES``
  queries every one of the 2^n sign vectors is enumerated (an exact p); above that,
  ``PERMUTATIONS`` random sign vectors (seeded), and scipy's +1 correction keeps p above 0;
* ``p_holm``: ``p_perm`` adjusted by Holm-Bonferroni (statsmodels' ``multipletests``,
  ``method="holm"``) over every comparison made (pipelines x measures);
* ``wins``, ``ties``, ``losses``: queries where d > 0, d = 0 (within 1e-9), d < 0.

With fewer than ``MIN_QUERIES_FOR_TESTS`` queries a note says that the tests mean little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from explorer.errors import ExplorerError
from explorer.pipeline.measures import mean_label

BOOTSTRAP_RESAMPLES = 10_000
PERMUTATIONS = 10_000
# 2^16 = 65,536 sign vectors: enumerated in well under a second; one more query doubles it.
EXACT_MAX_QUERIES = 16
SEED = 20240601
MIN_QUERIES_FOR_TESTS = 10
TIE_EPSILON = 1e-9


@dataclass
class SignificanceTest:
    """One pipeline against the baseline on one measure; the fields are described in the module docstring."""

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
        """Every field, as JSON-ready values."""
        return asdict(self)


def bootstrap_ci(diffs: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES, seed: int = SEED,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval (``scipy.stats.bootstrap``) of the mean of `diffs`.

    `diffs`: one difference per query. A single query gives the degenerate interval (d, d).
    Raises ValueError on no differences at all.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        raise ValueError("no differences to resample")
    if d.size == 1:
        return float(d[0]), float(d[0])
    result = stats.bootstrap((d,), np.mean, n_resamples=resamples, confidence_level=level, method="percentile",
                             vectorized=True, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def permutation_p(diffs: Sequence[float], permutations: int = PERMUTATIONS, seed: int = SEED) -> float:
    """Two-sided paired sign-flip test of mean(diffs) = 0 (``scipy.stats.permutation_test``).

    Exact (all 2^n sign vectors) for n <= ``EXACT_MAX_QUERIES`` queries; otherwise `permutations`
    random sign vectors drawn from `seed`, with scipy's +1 correction (p >= 1 / (permutations + 1)).
    One query: both signs give the same |mean|, so p = 1. Raises ValueError on no differences.
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.size == 0:
        raise ValueError("no differences to test")
    if d.size == 1:
        return 1.0
    exact = d.size <= EXACT_MAX_QUERIES
    result = stats.permutation_test((d,), np.mean, permutation_type="samples", vectorized=True,
                                    n_resamples=2 ** d.size if exact else permutations,
                                    alternative="two-sided", rng=np.random.default_rng(seed))
    return float(result.pvalue)


def paired_t_p(values: Sequence[float], baseline: Sequence[float]) -> float:
    """Two-sided p of the paired t-test (``scipy.stats.ttest_rel``) of `values` against `baseline`.

    1.0 where the two are equal on every query (scipy's nan: nothing to test); 0.0 where they
    differ by the same non-zero amount on every query (t is infinite).
    """
    a, b = np.asarray(values, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if np.all(np.abs(a - b) <= TIE_EPSILON):
        return 1.0
    p = float(stats.ttest_rel(a, b).pvalue)
    return 0.0 if np.isnan(p) else p  # a constant non-zero difference: t is infinite


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given (statsmodels' ``multipletests``)."""
    from statsmodels.stats.multitest import multipletests  # imported on first use: a heavy package

    if len(p_values) == 0:
        return []
    return [float(p) for p in multipletests(np.asarray(p_values, dtype=np.float64), method="holm")[1]]


def compare_to_baseline(
    per_query: dict[str, dict[str, dict[str, float]]],
    baseline: str,
    measures: Sequence[str],
    resamples: int = BOOTSTRAP_RESAMPLES,
    permutations: int = PERMUTATIONS,
    seed: int = SEED,
) -> tuple[list[SignificanceTest], list[str]]:
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
            rows.append(SignificanceTest(
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
        flips = (f"exact over all {2 ** len(queries):,} sign vectors" if len(queries) <= EXACT_MAX_QUERIES
                 else f"{permutations:,} random sign vectors, +1 correction")
        notes.append(
            f"p_holm adjusts p_perm (sign-flip randomization, {flips}) by "
            f"Holm-Bonferroni over all {len(rows)} comparisons; intervals are percentile bootstrap, "
            f"{resamples:,} resamples, seed {seed}."
        )
    return rows, notes


def format_significance(rows: Sequence[SignificanceTest]) -> str:
    """The comparisons as a plain-text table for the command line, one line each; a measure is
    named for its mean over the queries (RR@10's is MRR@10)."""
    lines = [f"{'pipeline':<22}{'measure':<10}{'diff':>8}{'95% CI':>18}{'p_t':>8}{'p_perm':>8}{'p_holm':>8}  W/T/L"]
    for r in rows:
        ci = f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        lines.append(f"{r.pipeline:<22}{mean_label(r.measure):<10}{r.mean_diff:>+8.3f}{ci:>18}{r.p_t:>8.3f}{r.p_perm:>8.3f}"
                     f"{r.p_holm:>8.3f}  {r.wins}/{r.ties}/{r.losses}")
    return "\n".join(lines)
