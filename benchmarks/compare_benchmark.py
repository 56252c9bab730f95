"""Error rates and power of `stroke-mlops compare`'s verdict, on simulated outcomes.

    .venv/bin/python benchmarks/compare_benchmark.py [--simulations 50000] [--seed 7]
        [--labelled 600,1000,2000,5000,10000] [--recall 0.65] [--precision 0.18] [--prevalence 0.05]

Each simulation gives each version N labelled rows (independent patients, as a traffic split
sends each request to one version): strokes ~ Binomial(N, prevalence), strokes caught ~
Binomial(strokes, recall), non-strokes flagged ~ Binomial(N - strokes, false-positive rate). The
false-positive rate is fixed so that the champion's precision is ``--precision`` at
``--recall`` (defaults near the shipped model's held-out figures: recall 0.686, precision 0.208
on the test set; 0.50 and 0.169 cross-validated); the challenger keeps that rate, so its
precision moves with its recall. The counts go through the command's own rule
(``stroke_mlops.monitoring.compare.decide`` with the default ``DecisionRule``).

Printed per number of labelled rows per version: the share of each verdict when the versions
are equal (false "better" and false "worse" rates), when the challenger is worse by exactly the
non-inferiority margin (the false "not worse" rate: promoting on it would be wrong), and the
power to say "better" / "worse" at several true recall differences, and how often a challenger
with the champion's recall but a precision of 0.12 (under the 15 % floor) is called "worse".
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from stroke_mlops.monitoring.compare import LabelCounts, decide  # noqa: E402
from stroke_mlops.monitoring.comparison_rule import VERDICTS, DecisionRule  # noqa: E402


def simulate(
    rng: np.random.Generator,
    labelled: int,
    recall: float,
    false_positive_rate: float,
    prevalence: float,
    count: int,
) -> list[LabelCounts]:
    strokes = rng.binomial(labelled, prevalence, size=count)
    caught = rng.binomial(strokes, recall)
    false_alarms = rng.binomial(labelled - strokes, false_positive_rate)
    return [
        LabelCounts(int(s), int(c), int(c + f))
        for s, c, f in zip(strokes, caught, false_alarms, strict=True)
    ]


def verdict_shares(
    rng: np.random.Generator,
    rule: DecisionRule,
    labelled: int,
    base: float,
    difference: float,
    false_positive_rates: tuple[float, float],
    prevalence: float,
    count: int,
) -> dict[str, float]:
    champion_fpr, challenger_fpr = false_positive_rates
    champions = simulate(rng, labelled, base, champion_fpr, prevalence, count)
    challengers = simulate(rng, labelled, base + difference, challenger_fpr, prevalence, count)
    tally = Counter(
        decide(champion, challenger, rule)[0]
        for champion, challenger in zip(champions, challengers, strict=True)
    )
    return {verdict: tally[verdict] / count for verdict in VERDICTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--simulations", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--labelled", default="600,1000,2000,5000,10000")
    parser.add_argument("--recall", type=float, default=0.65)
    parser.add_argument("--precision", type=float, default=0.18)
    parser.add_argument("--prevalence", type=float, default=0.05)
    parser.add_argument("--effects", default="0.05,0.10,0.15")
    args = parser.parse_args()

    rule = DecisionRule()
    rng = np.random.default_rng(args.seed)
    counts = [int(n) for n in args.labelled.split(",")]
    effects = [float(e) for e in args.effects.split(",")]

    def false_positive_rate(precision: float) -> float:
        hits = args.prevalence * args.recall
        return hits * (1 - precision) / (precision * (1 - args.prevalence))

    fpr = false_positive_rate(args.precision)
    low_precision = false_positive_rate(0.12)
    started = time.perf_counter()
    print(
        f"rule: alpha {rule.alpha} one-sided, margin {rule.margin}, at least "
        f"{rule.min_labelled_positives} labelled strokes a version, precision floor "
        f"{rule.precision_floor}; champion recall {args.recall}, precision {args.precision}, "
        f"prevalence {args.prevalence}; {args.simulations} simulations a cell "
        f"(Monte Carlo SE about {100 * (0.05 * 0.95 / args.simulations) ** 0.5:.1f} points at 5 %)"
    )
    print("labelled rows per version (expected strokes), and the share of simulations giving:")
    header = f"{'true recall difference':<30}" + "".join(
        f"{f'{n} (~{n * args.prevalence:.0f})':>14}" for n in counts
    )
    promotable = "not_worse|challenger_better"
    scenarios = [
        ("equal: false 'better'", 0.0, "challenger_better", fpr),
        ("equal: false 'worse'", 0.0, "worse", fpr),
        ("equal: 'not worse' (power)", 0.0, "not_worse", fpr),
        (f"-{rule.margin:.2f}: false 'not worse'", -rule.margin, promotable, fpr),
        *((f"+{e:.2f}: 'better' (power)", e, "challenger_better", fpr) for e in effects),
        *((f"-{e:.2f}: 'worse' (power)", -e, "worse", fpr) for e in effects),
        ("equal, precision 0.12: 'worse'", 0.0, "worse", low_precision),
    ]
    print(header)
    for label, difference, wanted, challenger_fpr in scenarios:
        cells = []
        for labelled in counts:
            shares = verdict_shares(
                rng, rule, labelled, args.recall, difference, (fpr, challenger_fpr),
                args.prevalence, args.simulations,
            )  # fmt: skip
            share = sum(shares[v] for v in wanted.split("|"))
            cells.append(f"{share:>14.1%}")
        print(f"{label:<30}" + "".join(cells), flush=True)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
