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
the equal recipe, the test precision and recall per seed, how many seeds keep the precision at
or above the floor, the median test recall, and how the final refit's flagged share compares
with the out-of-fold models'. This calls the library the pipeline's steps call (split, train,
evaluate, compare, decide); the champion is held in memory, not downloaded from a store.
``--confidence`` sets ``EvaluationConfig.precision_confidence`` (the pipeline's default
otherwise). Not a timed test: each seed trains four models and bootstraps six evaluations,
about 1 CPU minute per seed; ``--jobs 2`` runs seeds in two processes; ``--quick`` runs the
first three seeds with fewer bootstrap resamples.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
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


@dataclass
class SeedOutcome:
    """One split seed's printed rows, verdicts and the equal recipe's test figures."""

    seed: int
    lines: list[str] = field(default_factory=list)
    verdicts: dict[str, bool] = field(default_factory=dict)
    equal_test: tuple[float, float] | None = None  # (precision, recall)
    # Share of patients flagged at the threshold: out-of-fold models (development rows) vs the
    # final refit on all development rows (test rows; no label used): the refit's scale shift.
    flagged: tuple[float, float] | None = None


def run_seed(seed: int, data: str, resamples: int, confidence: float) -> SeedOutcome:
    """Every variant of one split seed (a separate process with ``--jobs``)."""
    outcome = SeedOutcome(seed)
    patients = dataset.clean_patients(dataset.read_raw_patients_file(data), keep_id=True)
    config = evaluate.EvaluationConfig(
        seed=seed, bootstrap_resamples=resamples, precision_confidence=confidence
    )
    split = dataset.split_patients(patients, seed=seed)
    development = split.development
    older = patients.iloc[: int(len(patients) * 0.9)].reset_index(drop=True)
    old_split = dataset.split_patients(older, seed=seed)
    champion_result = fit(old_split.development, seed)
    champion_evaluation, _ = judge(champion_result, old_split.development, old_split.test, config)
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
            outcome.verdicts[name] = False
            outcome.lines.append(f"{seed:>4} {name:<20} {'':>59} {'refused':>8}  evaluate: {error}")
            continue
        cv, ci = measured.cross_validated, measured.cross_validated["intervals"]
        outcome.verdicts[name] = decision.blessed
        if name == "equal":
            outcome.equal_test = (measured.test["precision"], measured.test["recall"])
            outcome.flagged = (
                measured.out_of_fold["flagged_share"],
                measured.test["flagged_share"],
            )
        outcome.lines.append(
            f"{seed:>4} {name:<20} {cv['recall']:9.3f} {ci['recall']['low']:6.3f} "
            f"{cv['roc_auc']:6.3f} {ci['roc_auc']['low']:6.3f} {cv['precision']:7.3f} "
            f"{measured.test['recall']:8.3f} {measured.test['precision']:9.3f} "
            f"{'BLESSED' if decision.blessed else 'refused':>8}"
            f"  {decision.reasons[0] if decision.reasons else ''}"
        )
    return outcome


def print_summary(outcomes: list[SeedOutcome], floor: float) -> None:
    verdicts: dict[str, list[bool]] = defaultdict(list)
    for outcome in outcomes:
        for name, was_blessed in outcome.verdicts.items():
            verdicts[name].append(was_blessed)
    print(f"\n{'variant':<20} {'blessed':>8} {'refused':>8}  target")
    for name, results in verdicts.items():
        blessed, total = sum(results), len(results)
        target = "refused on >= 90 %" if name in WORSE else "blessed on >= 90 %"
        print(f"{name:<20} {blessed:>5}/{total:<2} {total - blessed:>5}/{total:<2}  {target}")
    equal = {o.seed: o.equal_test for o in outcomes if o.equal_test is not None}
    if not equal:
        return
    print("\nequal recipe on the untouched test split of each seed:")
    print("| seed | " + " | ".join(map(str, equal)) + " | median |")
    print("|---" * (len(equal) + 2) + "|")
    for label, index in (("test precision", 0), ("test recall", 1)):
        values = [pair[index] for pair in equal.values()]
        print(
            f"| {label} | "
            + " | ".join(f"{v:.3f}" for v in values)
            + f" | **{np.median(values):.3f}** |"
        )
    precisions = [p for p, _ in equal.values()]
    kept = sum(p >= floor for p in precisions)
    print(
        f"test precision >= {floor}: {kept}/{len(precisions)} seeds; median test precision "
        f"{np.median(precisions):.3f}; median test recall "
        f"{np.median([r for _, r in equal.values()]):.3f}; equal retrains blessed "
        f"{sum(verdicts['equal'])}/{len(verdicts['equal'])}; worse variants refused "
        + ", ".join(f"{n} {len(verdicts[n]) - sum(verdicts[n])}/{len(verdicts[n])}" for n in WORSE)
    )
    shares = {o.seed: o.flagged for o in outcomes if o.flagged is not None}
    ratios = [test / oof for oof, test in shares.values()]
    print(
        "share flagged at the threshold, final refit on test rows / out-of-fold models: "
        + ", ".join(f"{seed} {r:.2f}" for seed, r in zip(shares, ratios, strict=True))
        + f"; median {np.median(ratios):.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(40, 50)))
    parser.add_argument("--quick", action="store_true", help="seeds 40-42, 300 resamples")
    parser.add_argument(
        "--confidence",
        type=float,
        default=evaluate.EvaluationConfig().precision_confidence,
        help="EvaluationConfig.precision_confidence (default: the pipeline's)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in this many processes")
    parser.add_argument("--data", default=str(REPO / "data/raw/healthcare-dataset-stroke-data.csv"))
    args = parser.parse_args()
    seeds = args.seeds[:3] if args.quick else args.seeds
    resamples = 300 if args.quick else 1000
    thresholds = promotion_gate.GateThresholds()
    print(
        f"default thresholds: {thresholds}; precision confidence {args.confidence}; seeds "
        f"{seeds}; {resamples} bootstrap resamples; {args.jobs} process(es)"
    )
    print(
        f"{'seed':>4} {'variant':<20} {'cv_recall':>9} {'(low)':>6} {'cv_auc':>6} {'(low)':>6} "
        f"{'cv_prec':>7} {'test_rec':>8} {'test_prec':>9} {'verdict':>8}  first reason",
        flush=True,
    )
    started = time.perf_counter()
    outcomes: list[SeedOutcome] = []
    work = functools.partial(
        run_seed, data=args.data, resamples=resamples, confidence=args.confidence
    )
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for outcome in pool.map(work, seeds):
            outcomes.append(outcome)
            print("\n".join(outcome.lines), flush=True)
    print_summary(outcomes, evaluate.EvaluationConfig().precision_floor)
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
