"""Two-sample tests on counts, the Holm correction, and the Wilson interval.

Every test compares a window's counts with the reference set's counts, so the reference's own
sampling error is part of the test (a two-sample test, never goodness-of-fit against the
reference's proportions as if they were exact):

* categories: a 2×k contingency chi-square, after pooling the levels too rare for the
  chi-square approximation (expected count < 5 in the smaller sample); 2×2 tables with a small
  expected count use Fisher's exact test;
* numbers: the two-sample Kolmogorov–Smirnov statistic on counts binned at the reference's
  percentiles (what a streaming reader can keep), with the asymptotic KS p-value. Binning can only
  lower the statistic, so the test stays valid (slightly conservative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

MIN_EXPECTED_COUNT = 5.0
POOLED_LEVEL = "(rare levels pooled)"


@dataclass(frozen=True)
class TwoSampleResult:
    """A test's name, statistic, p-value and a distance (effect size) with its name."""

    test: str
    statistic: float
    p_value: float
    distance: float
    distance_name: str
    note: str = ""


def pool_rare_levels(
    reference: dict[str, int], window: dict[str, int]
) -> tuple[list[str], np.ndarray]:
    """Levels and a 2×k table, with levels too rare for a chi-square pooled into one.

    A level is rare when its reference share times the smaller sample's size is under 5 (decided
    on the reference alone, so the window cannot choose its own pooling); levels seen only in the
    window are rare. A pooled level that is still too small joins the smallest remaining level.
    Two levels are never pooled into one: that 2×2 table goes to Fisher's exact test.
    """
    total_reference = sum(reference.values())
    total_window = sum(window.values())
    smaller = min(total_reference, total_window)
    levels = sorted(set(reference) | set(window))
    kept: list[str] = []
    rare: list[str] = []
    for level in levels:
        share = reference.get(level, 0) / total_reference if total_reference else 0.0
        (kept if share * smaller >= MIN_EXPECTED_COUNT else rare).append(level)
    groups: list[tuple[str, list[str]]] = [(level, [level]) for level in kept]
    if len(levels) == 2 or (rare and not kept):  # a 2×2 table: Fisher's test needs no pooling
        biggest = max(levels, key=lambda level: reference.get(level, 0))
        rest = [level for level in levels if level != biggest]
        groups = [(biggest, [biggest]), (rest[0] if len(rest) == 1 else POOLED_LEVEL, rest)]
        rare = []
    if rare:
        rare_count = sum(reference.get(level, 0) for level in rare)
        rare_share = rare_count / max(total_reference, 1)
        if rare_share * smaller >= MIN_EXPECTED_COUNT or not groups:
            groups.append((POOLED_LEVEL, rare))
        else:
            smallest = min(range(len(groups)), key=lambda i: reference.get(groups[i][0], 0))
            name, members = groups[smallest]
            groups[smallest] = (f"{name} + rare", members + rare)
    table = np.array(
        [
            [sum(reference.get(m, 0) for m in members) for _, members in groups],
            [sum(window.get(m, 0) for m in members) for _, members in groups],
        ],
        dtype=np.float64,
    )
    return [name for name, _ in groups], table


def contingency_test(reference: dict[str, int], window: dict[str, int]) -> TwoSampleResult:
    """Chi-square test of homogeneity (rare levels pooled); Fisher's exact test for a small 2×2."""
    labels, table = pool_rare_levels(reference, window)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table.sum(axis=1).min() == 0:
        return TwoSampleResult("chi-square", 0.0, 1.0, 0.0, "Cramér's V", "one level only: no test")
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    total = float(table.sum())
    if table.shape[1] == 2 and expected.min() < MIN_EXPECTED_COUNT:
        _, p_value = scipy_stats.fisher_exact(table.astype(np.int64))
        chi2 = float(scipy_stats.chi2_contingency(table, correction=False)[0])
        return TwoSampleResult(
            "Fisher exact", chi2, float(p_value), math.sqrt(chi2 / total), "Cramér's V"
        )
    chi2, p_value, _, _ = scipy_stats.chi2_contingency(table, correction=False)
    note = f"{len(labels)} levels" + (
        "; rare levels pooled" if any("rare" in label for label in labels) else ""
    )
    return TwoSampleResult(
        "chi-square",
        float(chi2),
        float(p_value),
        math.sqrt(float(chi2) / total),
        "Cramér's V",
        note,
    )


def binned_ks_test(reference_counts: np.ndarray, window_counts: np.ndarray) -> TwoSampleResult:
    """Two-sample KS on counts over the same ordered bins (reference percentiles)."""
    n, m = float(reference_counts.sum()), float(window_counts.sum())
    if n == 0 or m == 0:
        return TwoSampleResult("Kolmogorov-Smirnov", 0.0, 1.0, 0.0, "KS distance", "no values")
    gap = np.abs(np.cumsum(reference_counts) / n - np.cumsum(window_counts) / m)
    distance = float(gap.max())
    effective = round(n * m / (n + m))
    p_value = float(scipy_stats.kstwo.sf(distance, max(effective, 1)))
    return TwoSampleResult(
        "Kolmogorov-Smirnov", distance, min(max(p_value, 0.0), 1.0), distance, "KS distance"
    )


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error under any dependence)."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [1.0] * count
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (0, 1 when there are no trials)."""
    if trials <= 0:
        return 0.0, 1.0
    z = float(scipy_stats.norm.ppf(0.5 + level / 2))
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile_edges(values: np.ndarray, bins: int = 100) -> np.ndarray:
    """Distinct inner percentiles of ``values`` (NaN ignored): the bin edges for streaming KS."""
    present = values[~np.isnan(values)]
    if present.size == 0:
        return np.array([], dtype=np.float64)
    return np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of the non-missing ``values`` in the bins ``edges`` delimit (len(edges) + 1)."""
    present = values[~np.isnan(values)]
    return np.bincount(np.searchsorted(edges, present, side="right"), minlength=edges.size + 1)
