"""What the precision promise costs: test precision and recall over seeds, per recipe and level.

    .venv/bin/python benchmarks/precision_promise_sweep.py [--seeds 40 41 ...]
        [--rules 0.9 0.95 0.5+0.02 ...] [--recipes NAME ...]

For each split seed (default 40-49) and each recipe, the development rows get 3 x 5-fold
out-of-fold scores (the fold seeds ``train_candidates`` uses) and the recipe is refitted on all
of them, as the pipeline does. Then, for each rule ``confidence[+margin]``, the
threshold is the highest-recall one whose out-of-fold precision has its one-sided lower bound
at that level at or above 0.15 + margin (``metrics.select_confident_threshold``, the
pipeline's rule; confidence 0.5 is the point estimate), and the test split — untouched until
then — gives the precision and recall at it.
Two ways to carry the operating point to the refit are compared: the raw score threshold (what
ships) and the same share of patients flagged (the refit's threshold is the quantile of its own
scores on the development rows that flags the share the out-of-fold scores flagged there).

It prints, per recipe and level, the seeds whose test precision is at least 0.15, the median
test precision and recall, and every seed's pair. This is the equal-retrain half of
``gate_reliability.py`` without the gate's bootstraps, so many settings fit in a few minutes;
it reads test rows, so it measures settings and must not be used to pick a model. Not a timed
test: about 2 CPU minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from stroke_mlops.data import dataset
from stroke_mlops.training import train
from stroke_mlops.training.metrics import operating_point, select_confident_threshold

REPO = Path(__file__).resolve().parents[1]
FLOOR = 0.15
REPEATS = 3


@dataclass
class Scored:
    oof: np.ndarray  # (repeats, development rows)
    development: np.ndarray  # the refit's scores on its own training rows
    test: np.ndarray  # the refit's scores on the test rows


def soft_vote(imbalance: float, **xgb_overrides: object) -> Pipeline:
    members = [
        ("logistic", LogisticRegression(C=0.1, class_weight="balanced", max_iter=5000)),
        ("xgboost", train._xgboost(0, imbalance).set_params(max_depth=2, **xgb_overrides)),
    ]
    return train.build_model_pipeline(VotingClassifier(members, voting="soft"))


RECIPES: dict[str, Callable[[float], Pipeline] | None] = {
    "shipped (search picks logistic / xgboost / vote)": None,
    "soft vote, fixed": lambda imbalance: soft_vote(imbalance),
    "soft vote, xgb min_child_weight 20": lambda imbalance: soft_vote(
        imbalance, min_child_weight=20
    ),
}


def score_recipe(name: str, X: object, y: np.ndarray, test_X: object, seed: int) -> Scored:
    import pandas as pd

    assert isinstance(X, pd.DataFrame) and isinstance(test_X, pd.DataFrame)
    make = RECIPES[name]
    if make is None:
        result = train.train_candidates(X, y, seed=seed, precision_floor=FLOOR)
        model, oof = result.model, result.oof_scores
    else:
        imbalance = float((len(y) - y.sum()) / y.sum())
        rows = []
        for repeat in range(REPEATS):
            scores = np.zeros(len(y))
            splitter = StratifiedKFold(5, shuffle=True, random_state=seed + 1000 * repeat)
            for fit_rows, held in splitter.split(X, y):
                fold_model = clone(make(imbalance)).fit(X.iloc[fit_rows], y[fit_rows])
                scores[held] = fold_model.predict_proba(X.iloc[held])[:, 1]
            rows.append(scores)
        oof = np.vstack(rows)
        model = make(imbalance).fit(X, y)
    return Scored(
        oof=oof,
        development=model.predict_proba(X)[:, 1],
        test=model.predict_proba(test_X)[:, 1],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(40, 50)))
    parser.add_argument(
        "--rules",
        nargs="+",
        default=["0.5", "0.8", "0.9", "0.95", "0.975", "0.5+0.02", "0.5+0.03", "0.9+0.01"],
        help="confidence[+margin]: the precision bound's level and the precision above 0.15 "
        "it must reach (0.5+0.02: the point estimate must reach 0.17)",
    )
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), help="recipe names")
    parser.add_argument("--data", default=str(REPO / "data/raw/healthcare-dataset-stroke-data.csv"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    patients = dataset.clean_patients(dataset.read_raw_patients_file(args.data), keep_id=True)
    rules = [tuple(float(part) for part in (rule + "+0").split("+")[:2]) for rule in args.rules]
    # (recipe, carry, rule) -> seed -> (test precision, test recall)
    table: dict[tuple[str, str, str], dict[int, tuple[float, float]]] = {}
    started = time.perf_counter()
    for seed in args.seeds:
        split = dataset.split_patients(patients, seed=seed)
        X, y = dataset.features_and_target(split.development)
        test_X, test_y = dataset.features_and_target(split.test)
        for name in args.recipes:
            with threadpool_limits(limits=1):
                scored = score_recipe(name, X, y, test_X, seed)
            for rule, (confidence, margin) in zip(args.rules, rules, strict=True):
                try:
                    choice = select_confident_threshold(
                        y, scored.oof, precision_floor=FLOOR, confidence=confidence, margin=margin
                    )
                except ValueError:
                    threshold_by = {"score": np.inf, "share": np.inf}
                else:
                    share = float(np.mean(scored.oof >= choice.threshold))
                    threshold_by = {
                        "score": choice.threshold,
                        "share": float(np.quantile(scored.development, 1 - share)),
                    }
                for carry, threshold in threshold_by.items():
                    point = operating_point(test_y, scored.test, threshold)
                    table.setdefault((name, carry, rule), {})[seed] = (
                        point.precision,
                        point.recall,
                    )
        print(f"seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    print(f"\nseeds {args.seeds}; test precision and recall at the chosen operating point")
    print(
        f"| recipe | carried to the refit as | confidence+margin | seeds with precision ≥ {FLOOR} "
        "| median precision | median recall | per seed precision/recall |"
    )
    print("|---|---|---|---|---|---|---|")
    for (name, carry, rule), seeds in table.items():
        precisions = [p for p, _ in seeds.values()]
        recalls = [r for _, r in seeds.values()]
        kept = sum(p >= FLOOR for p in precisions)
        per_seed = " ".join(f"{p:.3f}/{r:.2f}" for p, r in seeds.values())
        print(
            f"| {name} | {carry} | {rule} | {kept}/{len(seeds)} "
            f"| {statistics.median(precisions):.3f} | {statistics.median(recalls):.3f} "
            f"| {per_seed} |"
        )
    print(f"\n{time.perf_counter() - started:.0f} s wall", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
