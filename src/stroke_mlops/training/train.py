"""Candidate models, a small stratified-CV search for each, and the choice between them.

Every candidate is one scikit-learn ``Pipeline`` whose first step fits the preprocessing
(impute, scale, one-hot encode), so the published artifact carries it and serving cannot drift
from training. Class imbalance (about 5 % strokes) is handled with class weights.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from xgboost import XGBClassifier

from stroke_mlops.data import schema
from stroke_mlops.training.metrics import recall_at_precision

log = logging.getLogger(__name__)

PREPROCESS_STEP = "preprocess"
CLASSIFIER_STEP = "classifier"


def build_preprocessor() -> ColumnTransformer:
    """Median-impute and standardise numbers, pass indicators, one-hot encode categories.

    Categories come from the schema (not from the data), so the encoded layout is the same for
    every split and a category absent from training still has its column.
    """
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = OneHotEncoder(
        categories=[list(f.categories) for f in schema.CATEGORICAL_FEATURES],
        handle_unknown="error",
        sparse_output=False,
        dtype=np.float64,
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, list(schema.NUMERIC_COLUMNS)),
            ("binary", "passthrough", list(schema.BINARY_COLUMNS)),
            ("categorical", categorical, list(schema.CATEGORICAL_COLUMNS)),
        ],
        remainder="drop",
        verbose_feature_names_out=True,
    )


def build_model_pipeline(classifier: ClassifierMixin) -> Pipeline:
    """The published model's shape: ``Pipeline([("preprocess", ...), ("classifier", ...)])``."""
    return Pipeline([(PREPROCESS_STEP, build_preprocessor()), (CLASSIFIER_STEP, classifier)])


@dataclass(frozen=True)
class Candidate:
    """A model family and the small grid searched for it."""

    name: str
    make_classifier: Callable[[int, float], ClassifierMixin]  # (seed, negatives/positives)
    grid: dict[str, Sequence[Any]]


def _logistic_regression(seed: int, _imbalance: float) -> ClassifierMixin:
    return LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed)


def _xgboost(seed: int, imbalance: float) -> ClassifierMixin:
    return XGBClassifier(
        n_estimators=300,
        learning_rate=0.03,
        subsample=0.8,
        colsample_bytree=0.8,
        min_child_weight=5,
        reg_lambda=5.0,
        scale_pos_weight=imbalance,
        tree_method="hist",
        eval_metric="aucpr",
        # One thread: on a shared machine two OpenMP threads per fit ran 30x slower (spinning
        # threads competing for cores), and CV parallelism belongs to the caller anyway.
        n_jobs=1,
        random_state=seed,
    )


CANDIDATES: tuple[Candidate, ...] = (
    Candidate(
        "logistic_regression",
        _logistic_regression,
        {f"{CLASSIFIER_STEP}__C": (0.01, 0.1, 1.0)},
    ),
    Candidate(
        "xgboost",
        _xgboost,
        {f"{CLASSIFIER_STEP}__max_depth": (2, 3), f"{CLASSIFIER_STEP}__n_estimators": (150, 300)},
    ),
)


SOFT_VOTE = "soft_vote"


def build_soft_vote(fitted: dict[str, tuple[Pipeline, np.ndarray]]) -> Pipeline:
    """One pipeline averaging the probabilities of each family's best classifier (unfitted)."""
    members = [
        (name, clone(pipe.named_steps[CLASSIFIER_STEP])) for name, (pipe, _) in fitted.items()
    ]
    return build_model_pipeline(VotingClassifier(members, voting="soft"))


def _soft_vote_result(
    fitted: dict[str, tuple[Pipeline, np.ndarray]], target: np.ndarray, precision_floor: float
) -> CandidateResult:
    """The average of the families' out-of-fold scores is exactly the soft vote's out-of-fold
    score (same folds, same deterministic preprocessing), so it is scored without refitting."""
    oof = np.mean([oof for _, oof in fitted.values()], axis=0)
    average_precision = round(float(average_precision_score(target, oof)), 5)
    return CandidateResult(
        name=SOFT_VOTE,
        best_params={"members": list(fitted)},
        cv_average_precision=average_precision,
        oof_average_precision=average_precision,
        oof_roc_auc=round(float(roc_auc_score(target, oof)), 5),
        oof_recall_at_precision=round(recall_at_precision(target, oof, precision_floor), 5),
        seconds=0.0,
    )


@dataclass
class CandidateResult:
    """How one family did: its best grid point and the CV scores of its refit choice."""

    name: str
    best_params: dict[str, Any]
    cv_average_precision: float
    oof_average_precision: float
    oof_roc_auc: float
    oof_recall_at_precision: float
    seconds: float


@dataclass
class TrainingResult:
    """The chosen pipeline (fitted on all training rows) and what the search saw."""

    model: Pipeline
    selected: str
    candidates: list[CandidateResult]
    # Out-of-fold P(stroke) of the chosen config, shape (repeats, rows): row r is a stratified
    # k-fold CV with its own shuffle (repeat 0 is the search's own folds).
    oof_scores: np.ndarray = field(repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "candidates": [vars(c) for c in self.candidates],
        }


def train_candidates(
    features: pd.DataFrame,
    target: np.ndarray,
    *,
    seed: int,
    precision_floor: float,
    folds: int = 5,
    cv_repeats: int = 3,
    candidates: Sequence[Candidate] = CANDIDATES,
) -> TrainingResult:
    """Search each candidate by stratified CV, choose the best, return it fitted on all rows.

    Within a family the grid point with the best average precision (PR AUC) wins. With two or
    more families, their soft vote (mean probability) is a further candidate. The candidate
    whose out-of-fold scores reach the highest recall at ``precision_floor`` wins (PR AUC
    breaks ties). The chosen config is then cross-validated ``cv_repeats - 1`` more times with
    fresh shuffles, so the gate's estimate does not rest on one fold assignment. Everything is
    reproducible from ``seed``.
    """
    if cv_repeats < 1:
        raise ValueError(f"cv_repeats must be at least 1; got {cv_repeats}")
    if not candidates:
        raise ValueError("at least one candidate is needed")
    positives = int(target.sum())
    if positives < folds or positives == len(target):
        raise ValueError(
            f"training needs both classes with at least {folds} strokes; got {positives} "
            f"of {len(target)} rows"
        )
    imbalance = (len(target) - positives) / positives
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    results: list[CandidateResult] = []
    fitted: dict[str, tuple[Pipeline, np.ndarray]] = {}
    for candidate in candidates:
        started = time.perf_counter()
        search = GridSearchCV(
            build_model_pipeline(candidate.make_classifier(seed, imbalance)),
            dict(candidate.grid),
            scoring="average_precision",
            cv=splitter,
            refit=True,
            n_jobs=1,
        )
        search.fit(features, target)
        best: Pipeline = search.best_estimator_
        oof = cross_val_predict(
            best, features, target, cv=splitter, method="predict_proba", n_jobs=1
        )[:, 1]
        result = CandidateResult(
            name=candidate.name,
            best_params={
                k.removeprefix(f"{CLASSIFIER_STEP}__"): v for k, v in search.best_params_.items()
            },
            cv_average_precision=round(float(search.best_score_), 5),
            oof_average_precision=round(float(average_precision_score(target, oof)), 5),
            oof_roc_auc=round(float(roc_auc_score(target, oof)), 5),
            oof_recall_at_precision=round(recall_at_precision(target, oof, precision_floor), 5),
            seconds=round(time.perf_counter() - started, 2),
        )
        log.info(
            "candidate %s: %s, CV PR AUC %.3f, OOF recall@precision>=%.2f %.3f (%.1fs)",
            result.name,
            result.best_params,
            result.cv_average_precision,
            precision_floor,
            result.oof_recall_at_precision,
            result.seconds,
        )
        results.append(result)
        fitted[candidate.name] = (best, oof)
    if len(fitted) >= 2:
        results.append(_soft_vote_result(fitted, target, precision_floor))
    chosen = max(results, key=lambda r: (r.oof_recall_at_precision, r.oof_average_precision))
    if chosen.name == SOFT_VOTE:
        model = build_soft_vote(fitted).fit(features, target)
        first_oof = np.mean([oof for _, oof in fitted.values()], axis=0)
        members = [pipe for pipe, _ in fitted.values()]
    else:
        model, first_oof = fitted[chosen.name]
        members = [model]
    repeats = [first_oof]
    for repeat in range(1, cv_repeats):
        shuffled = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + 1000 * repeat)
        member_oof = [
            cross_val_predict(
                clone(member), features, target, cv=shuffled, method="predict_proba", n_jobs=1
            )[:, 1]
            for member in members
        ]
        repeats.append(np.mean(member_oof, axis=0))
    log.info("selected %s (%d x %d-fold out-of-fold scores)", chosen.name, cv_repeats, folds)
    return TrainingResult(
        model=model, selected=chosen.name, candidates=results, oof_scores=np.vstack(repeats)
    )
