"""The drift tests: one registry that :func:`~stroke_mlops.monitoring.monitor.judge_window`, the
summary and the report iterate.

A test compares the production version's reference profile with the window's counts and returns
a :class:`Comparison` (a two-sample outcome from :mod:`stroke_mlops.monitoring.stats` and the
shares to draw). Adding one is a function plus one :func:`register` call: it joins the Holm
family, gets a row in ``summary.json`` (under its section) and a row with a chart in the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np

from stroke_mlops.data import schema
from stroke_mlops.monitoring import stats
from stroke_mlops.monitoring.reference import SCORE_COLUMN, ReferenceProfile
from stroke_mlops.monitoring.summary import Distribution
from stroke_mlops.monitoring.window import WindowCounts

__all__ = [
    "DISPLAY_BINS",
    "Comparison",
    "DriftTest",
    "register",
    "registered",
    "unregister",
]

DISPLAY_BINS = 10
Section = Literal["features", "prediction"]


@dataclass(frozen=True)
class Comparison:
    """One test's outcome on a window, and the reference-vs-window shares the report draws."""

    outcome: stats.TwoSampleResult
    distribution: Distribution | None


@dataclass(frozen=True)
class DriftTest:
    """A registered test: ``name`` is unique; ``kind`` says how the report draws its chart
    ("numeric" and "score" as an axis of bins, the others as named levels)."""

    name: str
    kind: str
    section: Section
    compare: Callable[[ReferenceProfile, WindowCounts], Comparison]


_REGISTRY: dict[str, DriftTest] = {}


def register(
    name: str,
    kind: str,
    section: Section,
    compare: Callable[[ReferenceProfile, WindowCounts], Comparison],
) -> DriftTest:
    """Add a test to the family (in the order of registration); a name is registered once."""
    if name in _REGISTRY:
        raise ValueError(f"a drift test named {name!r} is already registered")
    test = DriftTest(name=name, kind=kind, section=section, compare=compare)
    _REGISTRY[name] = test
    return test


def unregister(name: str) -> None:
    """Remove a test (for tests of the registry itself)."""
    _REGISTRY.pop(name, None)


def registered() -> tuple[DriftTest, ...]:
    """Every registered test, in registration order."""
    return tuple(_REGISTRY.values())


# --------------------------------------------------------------------------------------------
# Shares for the report


def grouped(
    reference_counts: np.ndarray, window_counts: np.ndarray, edges: np.ndarray
) -> Distribution:
    """Percentile bins merged into about DISPLAY_BINS groups of ~equal reference mass."""
    total_ref, total_win = max(reference_counts.sum(), 1), max(window_counts.sum(), 1)
    decile = np.floor(np.cumsum(reference_counts) / total_ref * DISPLAY_BINS - 1e-9)
    labels, ref_shares, win_shares = [], [], []
    start = 0
    for end in range(len(reference_counts)):
        last = end == len(reference_counts) - 1
        if not last and decile[end] == decile[end + 1]:
            continue
        low = f"{edges[start - 1]:.3g}" if start > 0 else None
        high = f"{edges[end]:.3g}" if end < len(edges) else None
        labels.append(
            f"< {high}" if low is None else (f"≥ {low}" if high is None else f"{low}–{high}")
        )
        ref_shares.append(float(reference_counts[start : end + 1].sum() / total_ref))
        win_shares.append(float(window_counts[start : end + 1].sum() / total_win))
        start = end + 1
    return Distribution(labels=labels, reference=ref_shares, window=win_shares)


def levels(reference: dict[str, int], window: dict[str, int]) -> Distribution:
    names = sorted(set(reference) | set(window), key=lambda k: (-reference.get(k, 0), k))
    total_ref, total_win = max(sum(reference.values()), 1), max(sum(window.values()), 1)
    return Distribution(
        labels=names,
        reference=[reference.get(k, 0) / total_ref for k in names],
        window=[window.get(k, 0) / total_win for k in names],
    )


# --------------------------------------------------------------------------------------------
# The tests


def binned_column(column: str, profile: ReferenceProfile, window: WindowCounts) -> Comparison:
    """Binned KS of a numeric column (a feature or the score) on the reference's percentiles."""
    ref = profile.numeric[column]
    return Comparison(
        stats.binned_ks_test(ref.counts, window.numeric[column]),
        grouped(ref.counts, window.numeric[column], ref.edges),
    )


def categorical_feature(name: str, profile: ReferenceProfile, window: WindowCounts) -> Comparison:
    """Contingency chi-square of a feature's levels (rare levels pooled; Fisher for 2×2)."""
    ref_levels, win_levels = profile.categorical[name], window.category_counts(name)
    return Comparison(
        stats.contingency_test(ref_levels, win_levels), levels(ref_levels, win_levels)
    )


def missing_rate(name: str, profile: ReferenceProfile, window: WindowCounts) -> Comparison:
    """The share of rows without a value, against the reference's."""
    ref_missing = profile.numeric[name].missing
    ref = {"missing": ref_missing, "present": profile.rows - ref_missing}
    win_missing = window.missing_count(name)
    win = {"missing": win_missing, "present": window.rows - win_missing}
    return Comparison(stats.contingency_test(ref, win), levels(ref, win))


def positive_decision_rate(profile: ReferenceProfile, window: WindowCounts) -> Comparison:
    """The share of rows the model flags, against the reference's."""
    ref = {
        "positive": profile.positive_decisions,
        "negative": profile.rows - profile.positive_decisions,
    }
    win = {
        "positive": window.positive_decisions,
        "negative": window.rows - window.positive_decisions,
    }
    return Comparison(stats.contingency_test(ref, win), levels(ref, win))


def _register_defaults() -> None:
    numeric = {f.name for f in schema.NUMERIC_FEATURES}
    for name in schema.FEATURE_COLUMNS:
        if name in numeric:
            register(name, "numeric", "features", partial(binned_column, name))
        else:
            register(name, "categorical", "features", partial(categorical_feature, name))
    for feature in schema.NUMERIC_FEATURES:
        if feature.nullable:
            register(
                f"{feature.name} (missing rate)",
                "missing rate",
                "features",
                partial(missing_rate, feature.name),
            )
    register("score", "score", "prediction", partial(binned_column, SCORE_COLUMN))
    register("positive-decision rate", "decision rate", "prediction", positive_decision_rate)


_register_defaults()
