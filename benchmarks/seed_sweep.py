"""Held-out metrics across split seeds: how much of the result is the split's luck.

    .venv/bin/python benchmarks/seed_sweep.py [--seeds 1 2 3 ...]

Runs the library's own preprocess → train → evaluate (no KFP) for each seed and prints the
selected model, threshold, and test recall / precision / ROC AUC, plus whether the default gate
(recall ≥ 0.75, precision ≥ 0.15, ROC AUC ≥ 0.83) would bless it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

from stroke_mlops.data import dataset
from stroke_mlops.training import evaluate, promotion_gate, train

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(40, 50)))
    parser.add_argument("--data", default=str(REPO / "data/raw/healthcare-dataset-stroke-data.csv"))
    args = parser.parse_args()
    patients = dataset.clean_patients(dataset.read_raw_patients_file(args.data))
    thresholds = promotion_gate.GateThresholds()
    print(
        f"{'seed':>4} {'model':<20} {'thresh':>6} {'recall':>6} {'prec':>6} {'rocauc':>6} "
        f"{'blessed':>7} {'s':>5}"
    )
    recalls, precisions, aucs, blessed = [], [], [], 0
    for seed in args.seeds:
        started = time.perf_counter()
        split = dataset.split_patients(patients, seed=seed)
        development = pd.concat([split.train, split.validation], ignore_index=True)
        X, y = dataset.features_and_target(development)
        result = train.train_candidates(X, y, seed=seed, precision_floor=0.15)
        measured = evaluate.evaluate_model(
            result.model,
            development=development,
            oof_scores=result.oof_scores,
            test=split.test,
            config=evaluate.EvaluationConfig(seed=seed, bootstrap_resamples=200),
        )
        t = measured.test
        ok = promotion_gate.decide_promotion(
            promotion_gate.ModelScore("c", t["recall"], t["precision"], t["roc_auc"], t["pr_auc"]),
            thresholds,
        ).blessed
        blessed += ok
        recalls.append(t["recall"])
        precisions.append(t["precision"])
        aucs.append(t["roc_auc"])
        print(
            f"{seed:>4} {result.selected:<20} {measured.threshold:6.3f} {t['recall']:6.3f} "
            f"{t['precision']:6.3f} {t['roc_auc']:6.3f} {'yes' if ok else 'no':>7} "
            f"{time.perf_counter() - started:5.1f}"
        )
    print(
        f"median recall {statistics.median(recalls):.3f}, precision "
        f"{statistics.median(precisions):.3f}, ROC AUC {statistics.median(aucs):.3f}; "
        f"blessed {blessed}/{len(args.seeds)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
