"""Ranking candidates on identical folds: CV recall at the precision floor and ROC AUC, with noise.

    .venv/bin/python benchmarks/candidate_benchmark.py [--seeds 40 41 42 43 44] [--repeats 2]

For each split seed, only the development rows (train + validation) are used — no test row is
read. They are cross-validated ``--repeats`` times (stratified 5-fold, fold seeds fixed), and
every candidate is fitted and scored on exactly the same folds. Per (seed, repeat) each
candidate gets its out-of-fold ROC AUC and its recall at precision 0.15 (the threshold rule
``metrics.select_threshold`` on those out-of-fold scores: a ranking measure). The table prints
the mean and the standard deviation over the replicates, and the paired difference from the
shipped recipe (``soft_vote``) with its standard error over split seeds (repeats averaged
within a seed first). A candidate "wins" only when its difference exceeds twice that standard
error; the split seeds share 80 % of their rows, so even that error is optimistic.

A third metric is the recall at the shipped operating point: the threshold whose one-sided
90 % lower bound of precision reaches the floor (``metrics.select_confident_threshold``, one
repeat of scores). The spline model is not servable (the serving compiler knows no
SplineTransformer): it would ship only if it won. Calibration (Platt or isotonic) is a
monotone map of the scores and cannot change recall at a precision floor or ROC AUC, so it is
not a ranking candidate. Not a timed test; about 1 CPU minute.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.base import ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

from stroke_mlops.data import dataset, schema
from stroke_mlops.training import train
from stroke_mlops.training.metrics import recall_at_precision, select_confident_threshold

REPO = Path(__file__).resolve().parents[1]
FLOOR = 0.15
REFERENCE = "soft_vote"
# Encoded column order of train.build_preprocessor: age, glucose, bmi, hypertension,
# heart_disease, then the one-hot categories. Risk rises with the first two and the flags.
MONOTONE_LEADING = (1, 1, 0, 1, 1)


def spline_preprocessor() -> ColumnTransformer:
    """Natural-cubic-like splines for age and glucose (5 knots), the rest as shipped."""
    splines = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("spline", SplineTransformer(n_knots=5, degree=3, knots="quantile")),
            ("scale", StandardScaler()),
        ]
    )
    bmi = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = OneHotEncoder(
        categories=[list(f.categories) for f in schema.CATEGORICAL_FEATURES],
        sparse_output=False,
    )
    return ColumnTransformer(
        [
            ("splines", splines, ["age", "avg_glucose_level"]),
            ("bmi", bmi, ["bmi"]),
            ("binary", "passthrough", list(schema.BINARY_COLUMNS)),
            ("categorical", categorical, list(schema.CATEGORICAL_COLUMNS)),
        ]
    )


def logistic(c: float) -> ClassifierMixin:
    return LogisticRegression(C=c, class_weight="balanced", max_iter=5000)


def xgb(imbalance: float, **overrides: object) -> ClassifierMixin:
    model = train._xgboost(0, imbalance)
    return model.set_params(**overrides)


def monotone(encoded_width: int) -> str:
    signs = MONOTONE_LEADING + (0,) * (encoded_width - len(MONOTONE_LEADING))
    return "(" + ",".join(map(str, signs)) + ")"


def candidates(imbalance: float, width: int) -> dict[str, Callable[[], Pipeline]]:
    """Name -> fresh unfitted pipeline. ``width`` is the shipped preprocessor's output width."""
    shipped = train.build_model_pipeline
    return {
        "logistic C=0.1": lambda: shipped(logistic(0.1)),
        "logistic C=1": lambda: shipped(logistic(1.0)),
        "logistic splines C=0.1": lambda: Pipeline(
            [("preprocess", spline_preprocessor()), ("classifier", logistic(0.1))]
        ),
        "xgb d2 lr.03 n300": lambda: shipped(xgb(imbalance, max_depth=2)),
        "xgb d3 lr.03 n300": lambda: shipped(xgb(imbalance, max_depth=3)),
        "xgb d2 lr.03 n150": lambda: shipped(xgb(imbalance, max_depth=2, n_estimators=150)),
        "xgb d2 lr.1 n100": lambda: shipped(
            xgb(imbalance, max_depth=2, learning_rate=0.1, n_estimators=100)
        ),
        "xgb d2 monotone": lambda: shipped(
            xgb(imbalance, max_depth=2, monotone_constraints=monotone(width))
        ),
        "xgb d3 monotone": lambda: shipped(
            xgb(imbalance, max_depth=3, monotone_constraints=monotone(width))
        ),
    }


# Soft votes: the mean of members' out-of-fold scores equals the vote's own (same folds).
VOTES: dict[str, tuple[str, ...]] = {
    "soft_vote": ("logistic C=0.1", "xgb d2 lr.03 n300"),
    "soft_vote monotone": ("logistic C=0.1", "xgb d2 monotone"),
    "soft_vote splines+monotone": ("logistic splines C=0.1", "xgb d2 monotone"),
}


def confident_recall(y: np.ndarray, scores: np.ndarray) -> float:
    try:
        return select_confident_threshold(
            y, scores[None, :], precision_floor=FLOOR, confidence=0.90
        ).recall
    except ValueError:
        return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[40, 41, 42, 43, 44])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", default=str(REPO / "data/raw/healthcare-dataset-stroke-data.csv"))
    args = parser.parse_args()
    patients = dataset.clean_patients(dataset.read_raw_patients_file(args.data), keep_id=True)
    # metric -> candidate -> seed -> values over repeats
    results: dict[str, dict[str, dict[int, list[float]]]] = {"auc": {}, "recall": {}, "sure": {}}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for seed in args.seeds:
        X, y = dataset.features_and_target(dataset.split_patients(patients, seed=seed).development)
        imbalance = float((len(y) - y.sum()) / y.sum())
        width = train.build_preprocessor().fit(X).transform(X.iloc[:1]).shape[1]
        makers = candidates(imbalance, width)
        for repeat in range(args.repeats):
            folds = list(
                StratifiedKFold(5, shuffle=True, random_state=1000 * repeat + seed).split(X, y)
            )
            oof: dict[str, np.ndarray] = {}
            for name, make in makers.items():
                clock = time.process_time()
                scores = np.zeros(len(y))
                for fit_rows, held in folds:
                    model = clone(make()).fit(X.iloc[fit_rows], y[fit_rows])
                    scores[held] = model.predict_proba(X.iloc[held])[:, 1]
                seconds[name] = seconds.get(name, 0.0) + time.process_time() - clock
                oof[name] = scores
            for vote, members in VOTES.items():
                oof[vote] = np.mean([oof[m] for m in members], axis=0)
            for name, scores in oof.items():
                results["auc"].setdefault(name, {}).setdefault(seed, []).append(
                    float(roc_auc_score(y, scores))
                )
                results["recall"].setdefault(name, {}).setdefault(seed, []).append(
                    recall_at_precision(y, scores, FLOOR)
                )
                results["sure"].setdefault(name, {}).setdefault(seed, []).append(
                    confident_recall(y, scores)
                )
        print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    def summary(metric: str, name: str) -> str:
        values = [v for vs in results[metric][name].values() for v in vs]
        per_seed = {s: statistics.mean(vs) for s, vs in results[metric][name].items()}
        reference = {s: statistics.mean(vs) for s, vs in results[metric][REFERENCE].items()}
        diffs = [per_seed[s] - reference[s] for s in per_seed]
        se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
        mean_diff = statistics.mean(diffs)
        verdict = "win" if mean_diff > 2 * se else ("loss" if mean_diff < -2 * se else "")
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return (
            f"{statistics.mean(values):.3f} ± {spread:.3f} | {mean_diff:+.3f} ± {se:.3f} {verdict}"
        )

    replicates = len(args.seeds) * args.repeats
    print(
        f"\nseeds {args.seeds}, {args.repeats} x 5-fold each ({replicates} replicates), "
        f"development rows only; mean ± SD over replicates | difference from {REFERENCE} ± SE"
    )
    print(
        f"| candidate | CV recall @ precision {FLOOR} | Δ recall | CV ROC AUC | Δ ROC AUC "
        "| recall @ 90 % bound | Δ | CPU s per 5-fold |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in results["auc"]:
        recall, recall_diff = summary("recall", name).split(" | ")
        auc, auc_diff = summary("auc", name).split(" | ")
        sure, sure_diff = summary("sure", name).split(" | ")
        parts: tuple[str, ...] = VOTES.get(name, (name,))
        cpu = sum(seconds[m] for m in parts) / replicates
        print(
            f"| {name} | {recall} | {recall_diff} | {auc} | {auc_diff} | {sure} | {sure_diff} "
            f"| {cpu:.1f} |"
        )
    print(f"\n{time.perf_counter() - started:.0f} s wall", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
