"""Evaluation: the decision threshold, held-out test metrics with intervals, and the model card.

The model is searched and fitted on the development rows (train + validation). The threshold
is chosen on scores of rows the scoring model did not train on: the out-of-fold scores of
every development row from the CV of the chosen candidate (about 200 strokes; the validation
split alone has about 50, too few for a precision estimate to hold). It is the highest-recall
threshold whose out-of-fold precision has its one-sided lower confidence bound
(``EvaluationConfig.precision_confidence``) at or above the floor, so the promise "precision
≥ floor" holds on new patients with that confidence, not only on the rows that chose it. The
test set is touched once, at the end.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stroke_mlops.data import schema
from stroke_mlops.data.dataset import features_and_target, rows_champion_may_have_trained_on
from stroke_mlops.training.promotion_gate import Bounded, ChampionComparison

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# scikit-learn and SciPy (through ``metrics``) are imported where scores are computed, so the
# pipeline steps that only read an Evaluation or render its card do not load them.

ROC_POINTS = 200  # the KFP UI draws the curve from this many points at most


@dataclass(frozen=True)
class EvaluationConfig:
    """How the threshold is chosen and the estimates made; these defaults are the only ones."""

    precision_floor: float = 0.15
    threshold_margin: float = 0.0
    # The threshold is the highest-recall one whose out-of-fold precision has its one-sided
    # lower confidence bound at this level at or above the floor (the promise on new patients).
    # 95 %: the population precision then sits near 0.17, which a 1,022-row test split (its
    # own sampling SD about 0.025) shows at >= 0.15 on 8 of seeds 40-49; at 90 % it was 6 of 10
    # (benchmarks/gate_reliability.py, benchmarks/precision_promise_sweep.py; README).
    precision_confidence: float = 0.95
    bootstrap_resamples: int = 1000
    seed: int = 42


@dataclass
class Evaluation:
    """Everything the gate, the model card and the KFP UI need from one evaluation."""

    threshold: float
    threshold_choice: dict[str, float]
    test: dict[str, float]
    intervals: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]  # rows = actual [no stroke, stroke], cols = predicted
    roc_curve: dict[str, list[float]] = field(repr=False)
    out_of_fold: dict[str, float] = field(default_factory=dict)
    # The gate's estimate: repeated-CV scores, cross-fitted threshold, bootstrap intervals.
    cross_validated: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Evaluation:
        return cls(**json.loads(text))


def score(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    """P(stroke) for every row of a cleaned frame."""
    features, _ = features_and_target(frame) if schema.TARGET_COLUMN in frame else (frame, None)
    return np.asarray(model.predict_proba(features)[:, 1], dtype=np.float64)


def held_out_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Ranking metrics plus the operating point at ``threshold``."""
    from stroke_mlops.training import metrics

    point = metrics.operating_point(y_true, scores, threshold)
    return {
        **metrics.ranking_metrics(y_true, scores),
        "recall": point.recall,
        "precision": point.precision,
        "f2": point.f_beta(2.0),
        "flagged_share": (point.true_positives + point.false_positives) / len(y_true),
        "true_positives": point.true_positives,
        "false_positives": point.false_positives,
        "true_negatives": point.true_negatives,
        "false_negatives": point.false_negatives,
    }


def evaluate_model(
    model: Pipeline,
    *,
    development: pd.DataFrame,
    oof_scores: np.ndarray,
    test: pd.DataFrame,
    config: EvaluationConfig,
) -> Evaluation:
    """Choose the threshold on the out-of-fold development scores; measure on the test set.

    ``oof_scores`` has shape (repeats, rows) (a 1-d array is one repeat); the threshold is chosen
    on every repeat's scores together.
    """
    from sklearn.metrics import roc_curve

    from stroke_mlops.training import metrics

    _, y_development = features_and_target(development)
    _, y_test = features_and_target(test)
    oof_scores = np.atleast_2d(oof_scores)
    if oof_scores.shape[1] != len(y_development):
        raise ValueError(
            f"{oof_scores.shape[1]} out-of-fold scores for {len(y_development)} development rows"
        )
    repeats = len(oof_scores)
    choice = metrics.select_confident_threshold(
        y_development,
        oof_scores,
        precision_floor=config.precision_floor,
        confidence=config.precision_confidence,
        margin=config.threshold_margin,
    )
    estimate = metrics.cross_validated_estimate(
        y_development,
        oof_scores,
        precision_floor=config.precision_floor,
        margin=config.threshold_margin,
        confidence=config.precision_confidence,
        seed=config.seed,
        resamples=config.bootstrap_resamples,
    )
    test_scores = score(model, test)
    measured = held_out_metrics(y_test, test_scores, choice.threshold)
    intervals = metrics.bootstrap_intervals(
        y_test,
        test_scores,
        choice.threshold,
        seed=config.seed,
        resamples=config.bootstrap_resamples,
    )
    fpr, tpr, roc_thresholds = roc_curve(y_test, test_scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), ROC_POINTS)).astype(int))
    return Evaluation(
        threshold=choice.threshold,
        threshold_choice=asdict(choice),
        test=measured,
        intervals={name: asdict(interval) for name, interval in intervals.items()},
        confusion_matrix=[
            [int(measured["true_negatives"]), int(measured["false_positives"])],
            [int(measured["false_negatives"]), int(measured["true_positives"])],
        ],
        roc_curve={
            "fpr": [float(v) for v in fpr[keep]],
            "tpr": [float(v) for v in tpr[keep]],
            # roc_curve's first threshold is +inf; JSON and the KFP UI want a number.
            "thresholds": [float(min(v, 1.0)) for v in roc_thresholds[keep]],
        },
        out_of_fold=held_out_metrics(
            np.tile(y_development, repeats), oof_scores.ravel(), choice.threshold
        ),
        cross_validated=estimate.as_dict(),
        config=asdict(config),
    )


def matched_threshold(scores: np.ndarray, flagged: int) -> float:
    """The threshold flagging the ``flagged`` highest scores (ties may flag a few more)."""
    if flagged <= 0:
        return float("inf")
    ranked = np.sort(scores)[::-1]
    return float(ranked[min(flagged, len(ranked)) - 1])


def compare_with_champion(
    champion: Pipeline,
    *,
    version: str,
    threshold: float,
    training_rows: dict[str, Any] | None,
    challenger: Pipeline,
    test: pd.DataFrame,
    config: EvaluationConfig,
) -> ChampionComparison:
    """Score both models on the challenger's test rows, paired by patient.

    Recall is compared at the champion's workload: the champion at its threshold, the
    challenger flagging as many patients (so a different precision/recall trade-off, which the
    absolute checks judge, does not pass for better or worse ranking). ROC AUC is compared as is.

    Refused (with the reason) when the champion may have trained on any of those rows: its
    recorded split rule would put them in its development part, or it recorded none.
    """
    from stroke_mlops.training import metrics

    if schema.ID_COLUMN not in test:
        return ChampionComparison(version, refused="the test rows carry no patient id")
    overlap = rows_champion_may_have_trained_on(training_rows, test[schema.ID_COLUMN])
    if overlap:
        why = (
            "it recorded no split rule (trained before hash splits)"
            if not (training_rows or {}).get("split_rule")
            else f"its split rule {training_rows['split_rule']} differs from this run's"  # type: ignore[index]
        )
        return ChampionComparison(
            version,
            refused=f"refused: it may have trained on {overlap} of the {len(test)} test rows "
            f"({why}); a fair comparison needs rows it never saw",
        )
    y_test = test[schema.TARGET_COLUMN].to_numpy()
    champion_scores = score(champion, test)
    challenger_scores = score(challenger, test)
    differences = metrics.paired_differences(
        y_test,
        challenger_scores,
        matched_threshold(challenger_scores, int((champion_scores >= threshold).sum())),
        champion_scores,
        threshold,
        seed=config.seed,
        resamples=config.bootstrap_resamples,
    )
    return ChampionComparison(
        version,
        differences={name: Bounded(d.difference, d.low, d.high) for name, d in differences.items()},
    )


def _cross_validated_section(cv: dict[str, Any]) -> str:
    if not cv:
        return ""
    ci = cv["intervals"]
    level = round(cv["level"] * 100)
    rows = "\n".join(
        f"| {label} | **{cv[key]:.3f}** | {ci[key]['low']:.3f} – {ci[key]['high']:.3f} |"
        for key, label in (("recall", "recall"), ("precision", "precision"), ("roc_auc", "ROC AUC"))
    )
    return f"""
## Repeated cross-validation (what the gate judges)
{cv["repeats"]} x k-fold out-of-fold scores of the {cv["rows"]} development rows
({cv["positives"]} strokes); each row's threshold chosen on the other rows (cross-fitted).

| metric | estimate | {level} % bootstrap interval |
|---|---|---|
{rows}
"""


def render_model_card(
    evaluation: Evaluation,
    *,
    version: str,
    selected: str,
    training_summary: dict[str, Any],
    fingerprint: dict[str, Any],
    gate_summary: str | None = None,
) -> str:
    """A Markdown model card (Mitchell et al.) the KFP UI renders and the model directory ships."""
    t, ci = evaluation.test, evaluation.intervals
    recall_ci = f"{ci['recall']['low']:.3f} – {ci['recall']['high']:.3f}"
    precision_ci = f"{ci['precision']['low']:.3f} – {ci['precision']['high']:.3f}"
    parts = fingerprint.get("parts", {})
    rows = "\n".join(
        f"| {name} | {p['rows']} | {p['positives']} | {p['positive_rate']:.2%} |"
        for name, p in parts.items()
    )
    candidates = "\n".join(
        f"| {c['name']} | `{c['best_params']}` | {c['cv_average_precision']:.3f} | "
        f"{c['oof_roc_auc']:.3f} | {c['oof_recall_at_precision']:.3f} |"
        for c in training_summary.get("candidates", [])
    )
    cm = evaluation.confusion_matrix
    floor = evaluation.config.get("precision_floor", 0.15)
    choice = evaluation.threshold_choice
    confidence = choice.get("confidence", 0.0)
    cross_validated = _cross_validated_section(evaluation.cross_validated)
    return f"""# Model card: stroke risk — version `{version}`

## Intended use
Flags adult and paediatric patients at raised risk of stroke for follow-up, from ten routine
fields (gender, age, hypertension, heart disease, marital status, work type, residence, average
glucose, BMI, smoking status). It is a screening aid that favours **recall** (catching strokes)
while keeping **precision ≥ {floor:.0%}**; it is not a diagnosis, and it was trained on a
public Kaggle dataset of 5,110 patients of unknown provenance, not validated clinically.

## Model
- Selected candidate: **{selected}** (one scikit-learn pipeline: median imputation + scaling,
  one-hot categories, classifier — `soft_vote` averages the logistic regression's and
  XGBoost's probabilities; the preprocessing ships inside the artifact), fitted on the train +
  validation rows
- Decision threshold: **{evaluation.threshold:.4f}** — the highest recall whose out-of-fold
  precision ({choice["precision"]:.3f}) has its one-sided {confidence:.0%} lower confidence
  bound ({choice.get("precision_lower_bound", 0.0):.3f}) at ≥ {floor:.0%}, chosen on the
  out-of-fold scores of the {choice["rows"]} train + validation rows ({choice["positives"]}
  strokes): precision on new patients like these is ≥ {floor:.0%} with {confidence:.0%}
  confidence

| candidate | best parameters | CV PR AUC | OOF ROC AUC | OOF recall @ precision floor |
|---|---|---|---|---|
{candidates}

{cross_validated}
## Held-out test set (untouched until now)
| metric | value | 95 % bootstrap interval |
|---|---|---|
| recall | **{t["recall"]:.3f}** | {recall_ci} |
| precision | **{t["precision"]:.3f}** | {precision_ci} |
| F2 | {t["f2"]:.3f} | |
| ROC AUC | {t["roc_auc"]:.3f} | |
| PR AUC | {t["pr_auc"]:.3f} | |
| patients flagged | {t["flagged_share"]:.1%} | |

Confusion matrix at the threshold (rows: actual, columns: predicted):

| | predicted no stroke | predicted stroke |
|---|---|---|
| **no stroke** | {cm[0][0]} | {cm[0][1]} |
| **stroke** | {cm[1][0]} | {cm[1][1]} |

## Data
Raw file sha256 `{fingerprint.get("raw_sha256", "unknown")}`, split seed {fingerprint.get("seed")}.

| split | rows | strokes | rate |
|---|---|---|---|
{rows}

## Limitations and risks
- The test set holds about 50 strokes: recall moves in steps of 2 points and its interval is wide.
- `smoking_status` is "Unknown" for about 30 % of patients and `bmi` is missing for 4 %.
- Performance on populations unlike the source data is unknown; monitor inputs for drift.
{f"{chr(10)}## Gate{chr(10)}{gate_summary}{chr(10)}" if gate_summary else ""}"""
