"""How often the promotion gate blesses equal retrains and refuses clearly worse ones.

    .venv/bin/python benchmarks/gate_reliability.py [--seeds 40 41 ...] [--quick]

For each split seed (default 40-49) on the real data, with the default thresholds:

* ``equal``: the pipeline's own recipe (train on the development rows, threshold at precision
  0.15) — should be blessed;
* ``no_age``: the same recipe with ``age`` held constant in training (the model cannot use it);
* ``10pct_rows``: the recipe trained on a stratified 10 % of the development rows;
* ``precision_0.05``: the equal model with its threshold tuned to precision 0.05;
* with a champion in production (the recipe trained on the first 90 % of the file, as if the
  last 10 % arrived later; same split seed, so its test rows are a subset of the challenger's):
  ``equal vs champion`` and ``no_age vs champion``.

Each row prints the variant's repeated-CV recall and ROC AUC (with the gate's lower bounds), its
test recall and precision beside the verdict; the last lines print the blessing rates and, for
the equal recipe, the test precision per seed, how many seeds keep it at or above the floor
and the median test recall. This calls the library the
pipeline's steps call (split, train, evaluate, compare, decide); the champion is held in
memory, not downloaded from a store. Not a timed test: each seed trains four models, 2.5-8
minutes per seed on this shared 2-core machine (seeds can run as separate processes with
``--seeds``); ``--quick`` runs the first three seeds with fewer bootstrap resamples.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from stroke_mlops.data import dataset
from stroke_mlops.training import evaluate, promotion_gate, train

REPO = Path(__file__).resolve().parents[1]
WORSE = ("no_age", "10pct_rows", "precision_0.05", "no_age vs champion")


def fit(development: pd.DataFrame, seed: int) -> train.TrainingResult:
    X, y = dataset.features_and_target(development)
    return train.train_candidates(X, y, seed=seed, precision_floor=0.15)


def judge(
    result: train.TrainingResult,
    development: pd.DataFrame,
    test: pd.DataFrame,
    config: evaluate.EvaluationConfig,
    champion: tuple[train.TrainingResult, evaluate.Evaluation, dict[str, object]] | None = None,
) -> tuple[evaluate.Evaluation, promotion_gate.GateDecision]:
    measured = evaluate.evaluate_model(
        result.model,
        development=development,
        oof_scores=result.oof_scores,
        test=test,
        config=config,
    )
    evidence = promotion_gate.ChallengerEvidence.from_evaluation(
        measured.cross_validated, measured.test, measured.intervals, measured.threshold_choice
    )
    comparison = None
    if champion is not None:
        champion_result, champion_evaluation, record = champion
        comparison = evaluate.compare_with_champion(
            champion_result.model,
            version="champion",
            threshold=champion_evaluation.threshold,
            training_rows=record,
            challenger=result.model,
            test=test,
            config=config,
        )
    decision = promotion_gate.decide_promotion(
        evidence, promotion_gate.GateThresholds(), comparison
    )
    return measured, decision


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(40, 50)))
    parser.add_argument("--quick", action="store_true", help="seeds 40-42, 300 resamples")
    parser.add_argument("--data", default=str(REPO / "data/raw/healthcare-dataset-stroke-data.csv"))
    args = parser.parse_args()
    seeds = args.seeds[:3] if args.quick else args.seeds
    resamples = 300 if args.quick else 1000
    patients = dataset.clean_patients(dataset.read_raw_patients_file(args.data), keep_id=True)
    thresholds = promotion_gate.GateThresholds()
    print(f"default thresholds: {thresholds}; seeds {seeds}; {resamples} bootstrap resamples")
    print(
        f"{'seed':>4} {'variant':<20} {'cv_recall':>9} {'(low)':>6} {'cv_auc':>6} {'(low)':>6} "
        f"{'cv_prec':>7} {'test_rec':>8} {'test_prec':>9} {'verdict':>8}  first reason"
    )
    verdicts: dict[str, list[bool]] = defaultdict(list)
    equal_test: dict[int, tuple[float, float]] = {}  # seed -> (precision, recall)
    # seed -> share of patients flagged: out-of-fold models (development rows) vs the final
    # refit on all development rows (test rows; no label used): the refit's score scale shift.
    flagged: dict[int, tuple[float, float]] = {}
    started = time.perf_counter()
    for seed in seeds:
        config = evaluate.EvaluationConfig(seed=seed, bootstrap_resamples=resamples)
        split = dataset.split_patients(patients, seed=seed)
        development = split.development
        older = patients.iloc[: int(len(patients) * 0.9)].reset_index(drop=True)
        old_split = dataset.split_patients(older, seed=seed)
        champion_result = fit(old_split.development, seed)
        champion_evaluation, _ = judge(
            champion_result, old_split.development, old_split.test, config
        )
        champion = (champion_result, champion_evaluation, dataset.training_rows_record(old_split))

        equal = fit(development, seed)
        no_age_rows = development.assign(age=float(development["age"].median()))
        no_age = fit(no_age_rows, seed)
        rng = np.random.default_rng(seed)
        tenth = pd.concat(
            part.sample(frac=0.1, random_state=int(rng.integers(1 << 31)))
            for _, part in development.groupby("stroke")
        )
        small = fit(tenth.reset_index(drop=True), seed)
        runs = (
            ("equal", equal, development, config, None),
            ("no_age", no_age, no_age_rows, config, None),
            ("10pct_rows", small, tenth.reset_index(drop=True), config, None),
            ("precision_0.05", equal, development, replace(config, precision_floor=0.05), None),
            ("equal vs champion", equal, development, config, champion),
            ("no_age vs champion", no_age, no_age_rows, config, champion),
        )
        for name, result, rows, variant_config, against in runs:
            try:
                measured, decision = judge(result, rows, split.test, variant_config, against)
            except ValueError as error:  # evaluate fails the run: nothing reaches the gate
                verdicts[name].append(False)
                print(f"{seed:>4} {name:<20} {'':>59} {'refused':>8}  evaluate: {error}")
                continue
            cv, ci = measured.cross_validated, measured.cross_validated["intervals"]
            verdicts[name].append(decision.blessed)
            if name == "equal":
                equal_test[seed] = (measured.test["precision"], measured.test["recall"])
                flagged[seed] = (
                    measured.out_of_fold["flagged_share"],
                    measured.test["flagged_share"],
                )
            print(
                f"{seed:>4} {name:<20} {cv['recall']:9.3f} {ci['recall']['low']:6.3f} "
                f"{cv['roc_auc']:6.3f} {ci['roc_auc']['low']:6.3f} {cv['precision']:7.3f} "
                f"{measured.test['recall']:8.3f} {measured.test['precision']:9.3f} "
                f"{'BLESSED' if decision.blessed else 'refused':>8}"
                f"  {decision.reasons[0] if decision.reasons else ''}",
                flush=True,
            )
    print(f"\n{'variant':<20} {'blessed':>8} {'refused':>8}  target")
    for name, results in verdicts.items():
        blessed, total = sum(results), len(results)
        target = "refused on >= 90 %" if name in WORSE else "blessed on >= 90 %"
        print(f"{name:<20} {blessed:>5}/{total:<2} {total - blessed:>5}/{total:<2}  {target}")
    if equal_test:
        floor = evaluate.EvaluationConfig().precision_floor
        precisions = [p for p, _ in equal_test.values()]
        print(
            "\nequal recipe, test precision per seed: "
            + ", ".join(f"{seed} {p:.3f}" for seed, (p, _) in equal_test.items())
        )
        print(
            f"test precision >= {floor}: {sum(p >= floor for p in precisions)}/{len(precisions)} "
            f"seeds; median test precision {np.median(precisions):.3f}; median test recall "
            f"{np.median([r for _, r in equal_test.values()]):.3f}"
        )
        ratios = [test / oof for oof, test in flagged.values()]
        print(
            "share flagged at the threshold, final refit on test rows / out-of-fold models: "
            + ", ".join(f"{seed} {r:.2f}" for seed, r in zip(flagged, ratios, strict=True))
            + f"; median {np.median(ratios):.2f}"
        )
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
