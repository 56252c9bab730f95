"""Threshold selection and metrics on hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest

from stroke_mlops.training import metrics


def test_threshold_takes_highest_recall_meeting_precision_floor() -> None:
    # Scores descending; labels chosen so precision at each cut is easy to compute by hand.
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    labels = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
    # cut at 0.4 flags 6 rows with 3 strokes: recall 1.0, precision 0.5
    choice = metrics.select_threshold(labels, scores, precision_floor=0.5, stability_window=0.0)
    assert choice.threshold == pytest.approx(0.4)
    assert choice.recall == 1.0
    assert choice.precision == pytest.approx(0.5)
    # demanding 0.6 leaves the cut at 0.7: 2 of 3 flagged are strokes, recall 2/3
    strict = metrics.select_threshold(labels, scores, precision_floor=0.6, stability_window=0.0)
    assert strict.threshold == pytest.approx(0.7)
    assert strict.recall == pytest.approx(2 / 3)


def test_a_precision_spike_is_not_chosen() -> None:
    # Precision clears 0.5 only at the single cut 0.3 (5/10); just above it, it is 4/9.
    scores = np.linspace(1.0, 0.01, 20)
    labels = np.zeros(20, dtype=int)
    labels[[0, 4, 6, 7, 9]] = 1
    spike = metrics.select_threshold(labels, scores, precision_floor=0.5, stability_window=0.0)
    plateau = metrics.select_threshold(labels, scores, precision_floor=0.5, stability_window=0.25)
    assert spike.recall == 1.0
    assert plateau.recall < spike.recall
    assert plateau.threshold > spike.threshold


def test_no_threshold_reaches_the_floor() -> None:
    labels = np.array([0, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    with pytest.raises(ValueError, match="no threshold reaches precision"):
        metrics.select_threshold(labels, scores, precision_floor=0.5)
    assert metrics.recall_at_precision(labels, scores, 0.5) == 0.0


def test_operating_point_counts() -> None:
    labels = np.array([1, 1, 0, 0, 1])
    scores = np.array([0.9, 0.2, 0.8, 0.1, 0.5])
    point = metrics.operating_point(labels, scores, 0.5)
    assert (point.true_positives, point.false_positives) == (2, 1)
    assert (point.true_negatives, point.false_negatives) == (1, 1)
    assert point.recall == pytest.approx(2 / 3)
    assert point.precision == pytest.approx(2 / 3)
    assert point.f_beta(2.0) == pytest.approx(2 / 3)


def test_bootstrap_interval_brackets_the_point_estimate() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(labels * 0.3 + rng.random(400) * 0.7, 0, 1)
    point = metrics.operating_point(labels, scores, 0.5)
    ci = metrics.bootstrap_intervals(labels, scores, 0.5, seed=1, resamples=300)
    assert ci["recall"].low < point.recall < ci["recall"].high
    assert ci["precision"].low < point.precision < ci["precision"].high
    again = metrics.bootstrap_intervals(labels, scores, 0.5, seed=1, resamples=300)
    assert again == ci  # reproducible from the seed


@pytest.mark.parametrize(
    ("labels", "message"),
    [([0, 0, 0], "both classes"), ([0, 2, 1], "0 or 1")],
)
def test_bad_labels_are_refused(labels: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metrics.ranking_metrics(np.array(labels), np.array([0.1, 0.2, 0.3]))


# --- a threshold whose precision holds on new patients -------------------------------------


def test_confident_threshold_demands_a_lower_bound_above_the_floor() -> None:
    """Where the point precision just reaches the floor, its lower bound does not: the
    confident rule flags fewer patients, and its recorded lower bound is at the floor or above."""
    rng = np.random.default_rng(5)
    y = (rng.random(3000) < 0.05).astype(int)
    base = rng.random(3000) + 0.5 * y
    oof = np.vstack([base + 0.1 * rng.random(3000) for _ in range(3)])
    point = metrics.select_threshold(np.tile(y, 3), oof.ravel(), precision_floor=0.15)
    confident = metrics.select_confident_threshold(y, oof, precision_floor=0.15, confidence=0.95)
    assert confident.threshold > point.threshold
    assert confident.recall < point.recall
    assert confident.precision_lower_bound >= 0.15 > point.precision - 0.01
    assert confident.confidence == 0.95
    assert (confident.rows, confident.positives) == (3000, int(y.sum()))


def test_confident_lower_bound_covers_the_population_precision() -> None:
    """Over many samples from one population, the one-sided 90 % bound of precision at a fixed
    threshold sits below the population's precision in about 90 % of them (patients clustered
    over repeats, so three copies of a score do not count as three patients)."""
    rng = np.random.default_rng(11)
    population_precision = 0.3  # P(stroke | score >= 0.5) by construction below
    covered = 0
    for _ in range(400):
        flagged = rng.random(2000) < 0.25
        y = np.where(flagged, rng.random(2000) < population_precision, rng.random(2000) < 0.02)
        scores = np.where(flagged, 0.75, 0.25)
        oof = np.vstack([scores] * 3)  # three identical repeats: no extra information
        bounds = metrics.precision_bounds(y.astype(int), oof, confidence=0.90)
        at_half = bounds.lower_bound[bounds.thresholds >= 0.5][-1]
        covered += at_half <= population_precision
    assert 0.85 <= covered / 400 <= 0.95


def test_no_threshold_is_confidently_above_the_floor() -> None:
    y = np.array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    oof = np.linspace(1, 0.1, 10)[None, :]
    with pytest.raises(ValueError, match="no threshold reaches precision"):
        metrics.select_confident_threshold(y, oof, precision_floor=0.4, confidence=0.95)


def test_bootstrap_roc_auc_is_the_ranked_auc_of_every_resample() -> None:
    """Same figures as ranking each resample with scipy (ties, repeated rows, a resample
    without positives), only without a sort per resample."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(5)
    rows = 300
    positive = rng.random(rows) < 0.1
    scores = np.round(np.vstack([rng.random(rows), rng.random(rows) + 0.3 * positive]), 2)
    index = rng.integers(0, rows, size=(50, rows))
    index[0] = np.flatnonzero(~positive)[0]  # one class only: undefined
    got = metrics.bootstrap_roc_auc(scores, positive, index)
    for resample, rows_drawn in enumerate(index):
        labels = positive[rows_drawn]
        n_pos, n_neg = labels.sum(), (~labels).sum()
        if n_pos == 0:
            assert np.isnan(got[resample]).all()
            continue
        ranks = rankdata(scores[:, rows_drawn], axis=1)
        expected = (ranks[:, labels].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        np.testing.assert_allclose(got[resample], expected, rtol=1e-12)
