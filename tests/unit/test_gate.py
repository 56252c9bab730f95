"""The promotion gate: bounds not point estimates, every reason at once, the champion paired."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from stroke_mlops.data import dataset, schema
from stroke_mlops.training import evaluate, metrics
from stroke_mlops.training.promotion_gate import (
    Bounded,
    ChallengerEvidence,
    ChampionComparison,
    GateDecision,
    GateThresholds,
    decide_promotion,
)
from stroke_mlops.training.train import build_model_pipeline

GOOD = ChallengerEvidence(
    cv_recall=Bounded(0.78, 0.74, 0.82),
    cv_precision=Bounded(0.15, 0.14, 0.17),
    cv_roc_auc=Bounded(0.84, 0.82, 0.86),
    test_recall=Bounded(0.76, 0.62, 0.88),
    test_precision=Bounded(0.15, 0.11, 0.19),
    test_roc_auc=0.84,
    threshold_precision=Bounded(0.17, 0.152, 0.17),
)
THRESHOLDS = GateThresholds(min_recall=0.70, min_precision=0.15, min_roc_auc=0.80)


def test_good_evidence_is_blessed_and_lists_every_check() -> None:
    decision = decide_promotion(GOOD, THRESHOLDS)
    assert decision.blessed and decision.reasons == []
    assert len(decision.checks) == 7 and all(c.startswith("ok:") for c in decision.checks)
    assert decision.champion_version is None


def test_a_point_estimate_above_the_threshold_is_not_enough() -> None:
    # A small model: recall 0.77 estimated, but from so few strokes its lower bound is 0.60.
    uncertain = GOOD.__class__(**{**vars(GOOD), "cv_recall": Bounded(0.74, 0.68, 0.80)})
    decision = decide_promotion(uncertain, THRESHOLDS)
    assert not decision.blessed
    assert decision.reasons == ["CV recall 0.740 (lower bound 0.680) >= min_recall 0.700"]


def test_too_little_evidence_is_not_judged() -> None:
    # A model trained on a tenth of the rows: its recall looks fine but ~20 strokes cannot
    # pin it down, so even a lower bound above min_recall is not enough.
    small = GOOD.__class__(**{**vars(GOOD), "cv_recall": Bounded(0.86, 0.73, 0.96)})
    decision = decide_promotion(small, THRESHOLDS)
    assert decision.reasons == [
        "CV recall interval width 0.230 <= max_cv_recall_width 0.160 (enough strokes to judge)"
    ]


def test_every_violation_is_reported_at_once() -> None:
    weak = ChallengerEvidence(
        cv_recall=Bounded(0.30, 0.25, 0.35),
        cv_precision=Bounded(0.06, 0.05, 0.07),  # a threshold tuned for precision 0.05
        cv_roc_auc=Bounded(0.72, 0.69, 0.75),
        test_recall=Bounded(0.30, 0.18, 0.44),
        test_precision=Bounded(0.06, 0.03, 0.09),
        test_roc_auc=0.71,
        threshold_precision=Bounded(0.06, 0.055, 0.06),
    )
    decision = decide_promotion(weak, THRESHOLDS)
    assert not decision.blessed and len(decision.reasons) == 6
    assert "CV precision 0.060 (upper bound 0.070) reaches min_precision 0.150" in decision.reasons
    assert decision.message().startswith("not blessed (6 violation(s)): CV recall 0.300")


def test_precision_near_the_floor_passes_but_clearly_below_it_fails() -> None:
    near = GOOD.__class__(**{**vars(GOOD), "cv_precision": Bounded(0.145, 0.13, 0.16)})
    below = GOOD.__class__(**{**vars(GOOD), "cv_precision": Bounded(0.10, 0.09, 0.11)})
    assert decide_promotion(near, THRESHOLDS).blessed
    assert not decide_promotion(below, THRESHOLDS).blessed


def test_the_threshold_must_keep_the_precision_promise() -> None:
    """A threshold whose out-of-fold precision reaches the floor only as a point estimate (its
    lower confidence bound below it) breaks the promise on new patients: refused."""
    point_only = GOOD.__class__(**{**vars(GOOD), "threshold_precision": Bounded(0.15, 0.138, 0.15)})
    decision = decide_promotion(point_only, THRESHOLDS)
    assert decision.reasons == [
        "out-of-fold precision 0.150 at the threshold (lower bound 0.138) >= min_precision 0.150"
    ]


def test_champion_comparison_uses_the_paired_lower_bound() -> None:
    tolerance = GateThresholds(champion_tolerance=0.05, min_recall=0.7, min_roc_auc=0.8)
    assert decide_promotion(GOOD, tolerance).blessed
    close = ChampionComparison(
        "v1", {"recall": Bounded(-0.02, -0.04, 0.0), "roc_auc": Bounded(0.0, -0.01, 0.01)}
    )
    worse = ChampionComparison(
        "v1", {"recall": Bounded(-0.05, -0.09, -0.01), "roc_auc": Bounded(0.0, -0.01, 0.01)}
    )
    blessed = decide_promotion(GOOD, tolerance, close)
    assert blessed.blessed and blessed.champion_version == "v1"
    refused = decide_promotion(GOOD, tolerance, worse)
    assert not refused.blessed
    assert refused.reasons == [
        "recall vs champion v1: difference -0.050 (lower bound -0.090) >= -0.050"
    ]
    again = GateDecision.from_json(refused.to_json())
    assert again.champion_version == "v1" and again.reasons == refused.reasons


def test_a_refused_comparison_refuses_the_promotion() -> None:
    comparison = ChampionComparison("v1", refused="refused: it may have trained on 7 test rows")
    decision = decide_promotion(GOOD, THRESHOLDS, comparison)
    assert not decision.blessed
    assert decision.reasons == [
        "comparison with champion v1: refused: it may have trained on 7 test rows"
    ]


def test_thresholds_outside_unit_interval_are_rejected() -> None:
    with pytest.raises(ValueError, match="min_recall must be within"):
        GateThresholds(min_recall=1.5)


# --- the statistics ------------------------------------------------------------------------


def test_cross_fitted_threshold_does_not_flatter_a_weak_model() -> None:
    """Choosing a threshold on the rows it is judged on meets the precision floor by
    construction; the cross-fitted estimate (each row's threshold chosen without it) reports
    the weak model's real precision, below the floor."""
    in_sample, cross_fitted = [], []
    for seed in range(30):
        rng = np.random.default_rng(seed)
        y = (rng.random(300) < 0.10).astype(int)
        scores = rng.random((1, 300)) + 0.1 * y  # a weak signal, 30 positives
        try:
            chosen = metrics.select_threshold(y, scores[0], precision_floor=0.15)
        except ValueError:
            continue
        in_sample.append(chosen.precision)
        estimate = metrics.cross_validated_estimate(
            y, scores, precision_floor=0.15, seed=0, resamples=20
        )
        cross_fitted.append(estimate.precision)
    assert len(in_sample) >= 10 and min(in_sample) >= 0.15
    assert np.mean(cross_fitted) < 0.14


def test_cross_fitted_recall_is_the_shipped_rules_not_a_stricter_ones() -> None:
    """A fold's threshold is chosen on 4/5 of the rows: with the full rule's confidence its
    precision bound is wider, its threshold higher and the cross-fitted recall understated.
    Scaled to the same margin, the cross-fitted recall is close to the full-data rule's."""
    differences = []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        scores = rng.random((1, 1000))
        y = (rng.random(1000) < 0.02 + 0.3 * scores[0] ** 2).astype(int)
        shipped = metrics.select_confident_threshold(
            y, scores, precision_floor=0.15, confidence=0.95
        )
        estimate = metrics.cross_validated_estimate(
            y, scores, precision_floor=0.15, confidence=0.95, seed=seed, resamples=10
        )
        differences.append(estimate.recall - shipped.recall)
    # Same margin: -0.014 on average (fold thresholds still vary); the full confidence: -0.031.
    assert np.mean(differences) > -0.025


def test_cross_validated_estimate_of_a_perfect_ranking() -> None:
    y = np.array([0] * 90 + [1] * 10)
    scores = np.vstack([np.where(y == 1, 0.9, 0.1)] * 2)
    estimate = metrics.cross_validated_estimate(
        y, scores, precision_floor=0.5, seed=1, resamples=100
    )
    assert (estimate.recall, estimate.precision, estimate.roc_auc) == (1.0, 1.0, 1.0)
    assert estimate.repeats == 2 and estimate.positives == 10


def test_paired_differences_cancel_what_both_models_share() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.05).astype(int)
    scores = np.clip(0.3 * y + rng.random(2000) * 0.8, 0, 1)
    same = metrics.paired_differences(y, scores, 0.5, scores, 0.5, seed=0, resamples=200)
    assert same["recall"].difference == 0.0 and same["recall"].low == same["recall"].high == 0
    # The challenger misses every stroke the champion catches above 0.9.
    missing = np.where((y == 1) & (scores >= 0.9), 0.0, scores)
    worse = metrics.paired_differences(y, missing, 0.5, scores, 0.5, seed=0, resamples=200)
    assert worse["recall"].difference < 0 and worse["recall"].high < 0
    assert worse["roc_auc"].high < 0


def _fit(rows: pd.DataFrame) -> object:
    X, y = dataset.features_and_target(rows)
    return build_model_pipeline(LogisticRegression(max_iter=1000)).fit(X, y)


def test_champion_comparison_is_refused_when_it_may_have_trained_on_the_test_rows(
    patients_with_ids: pd.DataFrame,
) -> None:
    config = evaluate.EvaluationConfig(bootstrap_resamples=100)
    champion_split = dataset.split_patients(patients_with_ids, seed=1)
    challenger_split = dataset.split_patients(patients_with_ids, seed=2)  # another rule
    champion, challenger = _fit(champion_split.development), _fit(challenger_split.development)
    refused = evaluate.compare_with_champion(
        champion,
        version="v1",
        threshold=0.5,
        training_rows=dataset.training_rows_record(champion_split),
        challenger=challenger,
        test=challenger_split.test,
        config=config,
    )
    assert refused.differences == {}
    assert refused.refused.startswith("refused: it may have trained on ")
    assert "differs from this run's" in refused.refused
    # Grown data, same rule: the champion never saw the challenger's test rows.
    older = dataset.split_patients(patients_with_ids.iloc[:4500], seed=2)
    compared = evaluate.compare_with_champion(
        _fit(older.development),
        version="v1",
        threshold=0.5,
        training_rows=dataset.training_rows_record(older),
        challenger=challenger,
        test=challenger_split.test,
        config=config,
    )
    assert compared.refused == "" and set(compared.differences) == {"recall", "roc_auc"}
    assert abs(compared.differences["roc_auc"].value) < 0.02
    assert schema.ID_COLUMN in challenger_split.test
