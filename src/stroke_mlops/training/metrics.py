"""Pure metric functions on labels and scores: thresholds, operating points, intervals."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
)


@dataclass(frozen=True)
class ThresholdChoice:
    """A decision threshold and the operating point it had where it was chosen."""

    threshold: float
    recall: float
    precision: float
    rows: int
    positives: int


def select_threshold(
    y_true: np.ndarray,
    scores: np.ndarray,
    *,
    precision_floor: float,
    margin: float = 0.0,
    stability_window: float = 0.05,
) -> ThresholdChoice:
    """The threshold with the highest recall whose precision stays at or above the floor.

    To hold on unseen data, precision must reach ``precision_floor + margin`` on a plateau, not
    a spike: at the chosen threshold and at every higher threshold whose recall is within
    ``stability_window`` of the chosen recall. Among thresholds with the same recall the highest
    is taken (fewest false alarms). Raises ValueError when no threshold qualifies.
    """
    y_true, scores = _check(y_true, scores)
    required = precision_floor + margin
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    # Thresholds ascend, recall descends: for index i the plateau is every j >= i whose recall
    # is at least recall[i] - stability_window.
    plateau_end = np.searchsorted(-recall, -(recall - stability_window), side="right")
    holds = np.array(
        [precision[i:end].min() >= required for i, end in enumerate(plateau_end)], dtype=bool
    )
    if not holds.any():
        raise ValueError(
            f"no threshold reaches precision {required:.3f} on {len(y_true)} rows "
            f"({int(y_true.sum())} positives)"
        )
    eligible = np.flatnonzero(holds)
    best_recall = recall[eligible].max()
    index = eligible[recall[eligible] == best_recall].max()
    return ThresholdChoice(
        threshold=float(thresholds[index]),
        recall=float(recall[index]),
        precision=float(precision[index]),
        rows=len(y_true),
        positives=int(y_true.sum()),
    )


def recall_at_precision(y_true: np.ndarray, scores: np.ndarray, floor: float) -> float:
    """Highest recall of any threshold whose precision (there and above) is at least floor."""
    try:
        return select_threshold(y_true, scores, precision_floor=floor).recall
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class OperatingPoint:
    """Confusion counts and rates at one threshold."""

    threshold: float
    true_positives: int
    false_positives: int
    true_negatives: int
    false_negatives: int

    @property
    def recall(self) -> float:
        positives = self.true_positives + self.false_negatives
        return self.true_positives / positives if positives else 0.0

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    def f_beta(self, beta: float) -> float:
        p, r = self.precision, self.recall
        if p == 0 and r == 0:
            return 0.0
        return (1 + beta**2) * p * r / (beta**2 * p + r)

    def as_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "recall": self.recall,
            "precision": self.precision,
            "f2": self.f_beta(2.0),
        }


def operating_point(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> OperatingPoint:
    """Confusion counts when ``score >= threshold`` means stroke."""
    y_true, scores = _check(y_true, scores)
    predicted = (scores >= threshold).astype(np.int64)
    tn, fp, fn, tp = confusion_matrix(y_true, predicted, labels=[0, 1]).ravel()
    return OperatingPoint(threshold, int(tp), int(fp), int(tn), int(fn))


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def bootstrap_intervals(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    seed: int,
    resamples: int = 1000,
    level: float = 0.95,
) -> dict[str, Interval]:
    """Percentile bootstrap intervals of recall and precision at a fixed threshold."""
    y_true, scores = _check(y_true, scores)
    rng = np.random.default_rng(seed)
    predicted = scores >= threshold
    rows = len(y_true)
    index = rng.integers(0, rows, size=(resamples, rows))
    y_boot = y_true[index].astype(bool)
    p_boot = predicted[index]
    tp = (y_boot & p_boot).sum(axis=1)
    positives = y_boot.sum(axis=1)
    flagged = p_boot.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(positives > 0, tp / positives, np.nan)
        precision = np.where(flagged > 0, tp / flagged, np.nan)
    tail = (1 - level) / 2 * 100
    return {
        name: Interval(
            float(np.nanpercentile(values, tail)), float(np.nanpercentile(values, 100 - tail))
        )
        for name, values in (("recall", recall), ("precision", precision))
    }


def ranking_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Threshold-free metrics: ROC AUC and PR AUC (average precision)."""
    y_true, scores = _check(y_true, scores)
    return {
        "roc_auc": float(roc_auc_score(y_true, scores)),
        "pr_auc": float(average_precision_score(y_true, scores)),
    }


def _check(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-d and equally long; got {y.shape}, {s.shape}"
        )
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("labels must be 0 or 1")
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError(f"both classes are needed; got {int(y.sum())} positives of {len(y)}")
    return y, s


@dataclass(frozen=True)
class CrossValidatedEstimate:
    """Recall and precision of the whole recipe (model + threshold rule) on held-out rows.

    Every row's score is out-of-fold (``repeats`` rounds of k-fold CV), and every row's threshold
    is chosen on the other rows' scores (cross-fitted), so neither the model nor the threshold
    saw the row it is judged on. ``intervals`` are percentile bootstrap intervals over patients
    at ``level``; their ``low`` is a one-sided lower bound at (1 + level) / 2.
    """

    recall: float
    precision: float
    roc_auc: float
    intervals: dict[str, Interval]
    level: float
    rows: int
    positives: int
    repeats: int

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "intervals": {k: asdict(v) for k, v in self.intervals.items()}}


def cross_validated_estimate(
    y_true: np.ndarray,
    oof_scores: np.ndarray,
    *,
    precision_floor: float,
    margin: float = 0.0,
    folds: int = 5,
    seed: int = 0,
    resamples: int = 1000,
    level: float = 0.90,
) -> CrossValidatedEstimate:
    """Cross-fitted operating point and ROC AUC of out-of-fold scores of shape (repeats, rows)."""
    from scipy.stats import rankdata
    from sklearn.model_selection import StratifiedKFold

    scores = np.atleast_2d(np.asarray(oof_scores, dtype=np.float64))
    y, _ = _check(y_true, scores[0])
    repeats, rows = scores.shape
    flagged = np.zeros_like(scores, dtype=bool)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_rows, held_rows in splitter.split(np.zeros(rows), y):
        try:
            threshold = select_threshold(
                np.tile(y[fit_rows], repeats),
                scores[:, fit_rows].ravel(),
                precision_floor=precision_floor,
                margin=margin,
            ).threshold
        except ValueError:  # no threshold reaches the floor: this fold flags nobody
            threshold = np.inf
        flagged[:, held_rows] = scores[:, held_rows] >= threshold
    positive = y.astype(bool)
    # Per-patient counts summed over repeats: a bootstrap resamples patients, repeats together.
    tp_row = (flagged & positive).sum(axis=0)
    flagged_row = flagged.sum(axis=0)
    positives = int(positive.sum())

    def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)

    def auc(index: np.ndarray) -> float:
        labels = positive[index]
        n_pos = labels.sum()
        n_neg = len(labels) - n_pos
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        ranks = rankdata(scores[:, index], axis=1)
        per_repeat = (ranks[:, labels].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        return float(per_repeat.mean())

    rng = np.random.default_rng(seed)
    index = rng.integers(0, rows, size=(resamples, rows))
    boot_recall = ratio(tp_row[index].sum(axis=1), repeats * positive[index].sum(axis=1))
    boot_precision = ratio(tp_row[index].sum(axis=1), flagged_row[index].sum(axis=1))
    boot_auc = np.array([auc(i) for i in index])
    tail = (1 - level) / 2 * 100

    def interval(values: np.ndarray) -> Interval:
        return Interval(
            float(np.nanpercentile(values, tail)), float(np.nanpercentile(values, 100 - tail))
        )

    total_flagged = int(flagged_row.sum())
    return CrossValidatedEstimate(
        recall=float(tp_row.sum() / (repeats * positives)),
        precision=float(tp_row.sum() / total_flagged) if total_flagged else 0.0,
        roc_auc=auc(np.arange(rows)),
        intervals={
            "recall": interval(boot_recall),
            "precision": interval(boot_precision),
            "roc_auc": interval(boot_auc),
        },
        level=level,
        rows=rows,
        positives=positives,
        repeats=repeats,
    )


@dataclass(frozen=True)
class PairedDifference:
    """Challenger minus champion on the same rows, with a paired bootstrap interval."""

    challenger: float
    champion: float
    difference: float
    low: float
    high: float


def paired_differences(
    y_true: np.ndarray,
    challenger_scores: np.ndarray,
    challenger_threshold: float,
    champion_scores: np.ndarray,
    champion_threshold: float,
    *,
    seed: int = 0,
    resamples: int = 1000,
    level: float = 0.90,
) -> dict[str, PairedDifference]:
    """Recall (each model at its own threshold) and ROC AUC differences, paired by patient.

    Each bootstrap resample draws the same patients for both models, so what the two share
    cancels and the interval reflects only where they disagree.
    """
    from scipy.stats import rankdata

    y, challenger = _check(y_true, challenger_scores)
    _, champion = _check(y_true, champion_scores)
    positive = y.astype(bool)
    hit_challenger = (challenger >= challenger_threshold) & positive
    hit_champion = (champion >= champion_threshold) & positive
    both = np.vstack([challenger, champion])

    def auc_pair(index: np.ndarray) -> np.ndarray:
        labels = positive[index]
        n_pos = labels.sum()
        n_neg = len(labels) - n_pos
        if n_pos == 0 or n_neg == 0:
            return np.array([np.nan, np.nan])
        ranks = rankdata(both[:, index], axis=1)
        return (ranks[:, labels].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)

    rng = np.random.default_rng(seed)
    rows = len(y)
    index = rng.integers(0, rows, size=(resamples, rows))
    with np.errstate(invalid="ignore", divide="ignore"):
        recall_diff = (
            hit_challenger[index].sum(axis=1) - hit_champion[index].sum(axis=1)
        ) / positive[index].sum(axis=1)
    auc_diff = np.array([np.subtract(*auc_pair(i)) for i in index])
    tail = (1 - level) / 2 * 100
    full_auc = auc_pair(np.arange(rows))
    recall_pair = (hit_challenger.sum() / positive.sum(), hit_champion.sum() / positive.sum())
    result = {}
    for name, (mine, theirs), boot in (
        ("recall", recall_pair, recall_diff),
        ("roc_auc", (float(full_auc[0]), float(full_auc[1])), auc_diff),
    ):
        result[name] = PairedDifference(
            challenger=float(mine),
            champion=float(theirs),
            difference=float(mine - theirs),
            low=float(np.nanpercentile(boot, tail)),
            high=float(np.nanpercentile(boot, 100 - tail)),
        )
    return result
