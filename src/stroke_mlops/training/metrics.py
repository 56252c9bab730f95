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
