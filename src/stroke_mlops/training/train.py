"""Candidate models, a small stratified-CV search for each, and the choice between them.

Every candidate is one scikit-learn ``Pipeline`` whose first step fits the preprocessing
(impute, scale, one-hot encode), so the published artifact carries it and serving cannot drift
from training. Class imbalance (about 5 % strokes) is handled with class weights.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import ParameterGrid, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits
from xgboost import XGBClassifier

from stroke_mlops.data import schema
from stroke_mlops.training.metrics import recall_at_precision

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

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


@dataclass(frozen=True)
class _EncodedFold:
    """One CV fold with the preprocessing fitted on its fitting rows, shared by every candidate
    (the preprocessing is deterministic, so this is what each candidate's pipeline would do)."""

    fit_rows: np.ndarray
    held_rows: np.ndarray
    fit_matrix: np.ndarray
    held_matrix: np.ndarray


def _encode_folds(
    features: pd.DataFrame, target: np.ndarray, splitter: StratifiedKFold
) -> list[_EncodedFold]:
    folds = []
    for fit_rows, held_rows in splitter.split(features, target):
        preprocessor = build_preprocessor().fit(features.iloc[fit_rows])
        folds.append(
            _EncodedFold(
                fit_rows,
                held_rows,
                preprocessor.transform(features.iloc[fit_rows]),
                preprocessor.transform(features.iloc[held_rows]),
            )
        )
    return folds


def _out_of_fold(
    classifier: ClassifierMixin,
    folds: Sequence[_EncodedFold],
    target: np.ndarray,
    tree_counts: Sequence[int] = (),
) -> dict[int, np.ndarray]:
    """Out-of-fold P(stroke) of ``classifier`` (key 0); for an XGBoost model also of its first
    ``n`` trees for every n in ``tree_counts`` (key n): boosting builds trees in order, so the
    first n trees of a longer fit are the n-tree model, and one fit scores every count."""
    scores = {count: np.zeros(len(target)) for count in (0, *tree_counts)}
    for fold in folds:
        model = clone(classifier).fit(fold.fit_matrix, target[fold.fit_rows])
        for count in scores:
            if count:
                probability = model.predict_proba(fold.held_matrix, iteration_range=(0, count))
            else:
                probability = model.predict_proba(fold.held_matrix)
            scores[count][fold.held_rows] = probability[:, 1]
    return scores


def _search(
    candidate: Candidate,
    base: ClassifierMixin,
    folds: Sequence[_EncodedFold],
    target: np.ndarray,
) -> tuple[dict[str, Any], float, np.ndarray]:
    """Every grid point scored on the same folds, as GridSearchCV would (mean per-fold PR AUC,
    first best point wins ties); returns the best point, its score and its out-of-fold scores."""
    grid = {
        key.removeprefix(f"{CLASSIFIER_STEP}__"): values for key, values in candidate.grid.items()
    }
    tree_grid = isinstance(base, XGBClassifier) and "n_estimators" in grid
    # Grid points in GridSearchCV's order (ParameterGrid: keys sorted, last varies fastest).
    points = list(ParameterGrid(grid))
    scored: dict[int, tuple[float, np.ndarray]] = {}
    fits: dict[tuple[tuple[str, Any], ...], dict[int, np.ndarray]] = {}
    for index, point in enumerate(points):
        if tree_grid:
            rest = tuple(sorted((k, v) for k, v in point.items() if k != "n_estimators"))
            if rest not in fits:
                most = max(grid["n_estimators"])
                fits[rest] = _out_of_fold(
                    clone(base).set_params(**dict(rest), n_estimators=most),
                    folds,
                    target,
                    tree_counts=tuple(grid["n_estimators"]),
                )
            oof = fits[rest][point["n_estimators"]]
        else:
            oof = _out_of_fold(clone(base).set_params(**point), folds, target)[0]
        per_fold = [
            average_precision_score(target[fold.held_rows], oof[fold.held_rows]) for fold in folds
        ]
        scored[index] = (float(np.mean(per_fold)), oof)
    best = max(scored, key=lambda i: (scored[i][0], -i))
    return points[best], scored[best][0], scored[best][1]


def _one_thread(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with one BLAS and one OpenMP thread. On a shared machine the idle
    threads of a two-thread pool spin against other processes: training took twice the CPU
    (5.0 s against 2.1 s) and wall time with OpenBLAS's default two threads."""

    @functools.wraps(function)
    def limited(*args: P.args, **kwargs: P.kwargs) -> R:
        with threadpool_limits(limits=1):
            return function(*args, **kwargs)

    return limited


@_one_thread
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
    reproducible from ``seed``. Each fold's preprocessing is fitted once and shared by every
    candidate and grid point (the same numbers each pipeline would compute).
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
    encoded = _encode_folds(
        features, target, StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    )
    results: list[CandidateResult] = []
    fitted: dict[str, tuple[Pipeline, np.ndarray]] = {}
    for candidate in candidates:
        started = time.perf_counter()
        base = candidate.make_classifier(seed, imbalance)
        best_point, best_score, oof = _search(candidate, base, encoded, target)
        best = build_model_pipeline(clone(base).set_params(**best_point))  # unfitted
        result = CandidateResult(
            name=candidate.name,
            best_params=dict(best_point),
            cv_average_precision=round(best_score, 5),
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
        model = build_soft_vote(fitted)
        first_oof = np.mean([oof for _, oof in fitted.values()], axis=0)
        members = [pipe.named_steps[CLASSIFIER_STEP] for pipe, _ in fitted.values()]
    else:
        model, first_oof = fitted[chosen.name]
        members = [model.named_steps[CLASSIFIER_STEP]]
    model.fit(features, target)
    repeats = [first_oof]
    for repeat in range(1, cv_repeats):
        shuffled = _encode_folds(
            features,
            target,
            StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + 1000 * repeat),
        )
        member_oof = [_out_of_fold(member, shuffled, target)[0] for member in members]
        repeats.append(np.mean(member_oof, axis=0))
    log.info("selected %s (%d x %d-fold out-of-fold scores)", chosen.name, cv_repeats, folds)
    return TrainingResult(
        model=model, selected=chosen.name, candidates=results, oof_scores=np.vstack(repeats)
    )
