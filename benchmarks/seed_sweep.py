"""Held-out metrics across split seeds: how much of the result is the split's luck.

    .venv/bin/python benchmarks/seed_sweep.py [--seeds 1 2 3 ...]

Runs the library's own preprocess → train → evaluate (no KFP) for each seed and prints the
selected model, threshold, the repeated-CV recall / ROC AUC (the gate's estimate) and the test
recall / precision / ROC AUC, plus whether the default gate (GateThresholds()) would bless it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from stroke_mlops.data import dataset
from stroke_mlops.training import evaluate, promotion_gate, train

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(40, 50)))
    parser.add_argument("--data", default=str(REPO / "data/raw/healthcare-dataset-stroke-data.csv"))
    args = parser.parse_args()
    patients = dataset.clean_patients(dataset.read_raw_patients_file(args.data), keep_id=True)
    thresholds = promotion_gate.GateThresholds()
    print(
        f"{'seed':>4} {'model':<20} {'thresh':>6} {'cv_rec':>6} {'cv_auc':>6} {'recall':>6} "
        f"{'prec':>6} {'rocauc':>6} {'blessed':>7} {'s':>5}"
    )
    recalls, precisions, aucs, cv_recalls, cv_aucs, blessed = [], [], [], [], [], 0
    for seed in args.seeds:
        started = time.perf_counter()
        split = dataset.split_patients(patients, seed=seed)
        development = split.development
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
        cv = measured.cross_validated
        evidence = promotion_gate.ChallengerEvidence.from_evaluation(
            cv, measured.test, measured.intervals, measured.threshold_choice
        )
        ok = promotion_gate.decide_promotion(evidence, thresholds).blessed
        cv_recalls.append(cv["recall"])
        cv_aucs.append(cv["roc_auc"])
        blessed += ok
        recalls.append(t["recall"])
        precisions.append(t["precision"])
        aucs.append(t["roc_auc"])
        print(
            f"{seed:>4} {result.selected:<20} {measured.threshold:6.3f} {cv['recall']:6.3f} "
            f"{cv['roc_auc']:6.3f} {t['recall']:6.3f} "
            f"{t['precision']:6.3f} {t['roc_auc']:6.3f} {'yes' if ok else 'no':>7} "
            f"{time.perf_counter() - started:5.1f}"
        )
    print(
        f"median repeated-CV recall {statistics.median(cv_recalls):.3f}, ROC AUC "
        f"{statistics.median(cv_aucs):.3f}; test: "
        f"median recall {statistics.median(recalls):.3f}, precision "
        f"{statistics.median(precisions):.3f}, ROC AUC {statistics.median(aucs):.3f}; "
        f"blessed {blessed}/{len(args.seeds)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
