"""The promotion gate: named thresholds plus champion/challenger, failing loudly with every reason.

A challenger is blessed when its held-out metrics meet every threshold and, when a production
model (the champion) exists, it is not worse than the champion on the same test set by more
than a tolerance. The decision and all its reasons travel together, so the graph can branch on
it and a person can read why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class GateThresholds:
    """Named promotion thresholds (pipeline parameters)."""

    min_recall: float = 0.75
    min_precision: float = 0.15
    min_roc_auc: float = 0.83
    champion_tolerance: float = 0.02

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"gate threshold {name} must be within [0, 1]; got {value}")


@dataclass(frozen=True)
class ModelScore:
    """What the gate compares: a model's test metrics at its own threshold."""

    version: str
    recall: float
    precision: float
    roc_auc: float
    pr_auc: float


@dataclass
class GateDecision:
    blessed: bool
    reasons: list[str] = field(default_factory=list)  # every violated condition
    checks: list[str] = field(default_factory=list)  # every condition, passed or not
    champion: ModelScore | None = None

    def summary(self) -> str:
        verdict = "BLESSED" if self.blessed else "NOT BLESSED"
        lines = [f"**{verdict}**", *(f"- {check}" for check in self.checks)]
        return "\n".join(lines)

    def message(self) -> str:
        """One line: why it passed or every reason it failed."""
        if self.blessed:
            return "blessed: " + "; ".join(self.checks)
        return f"not blessed ({len(self.reasons)} violation(s)): " + "; ".join(self.reasons)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def decide_promotion(
    challenger: ModelScore,
    thresholds: GateThresholds,
    champion: ModelScore | None = None,
) -> GateDecision:
    """Check every threshold and the champion comparison; never stop at the first failure."""
    decision = GateDecision(blessed=True, champion=champion)

    def check(passed: bool, text: str) -> None:
        decision.checks.append(f"{'ok' if passed else 'FAILED'}: {text}")
        if not passed:
            decision.reasons.append(text)

    c = challenger
    check(
        c.recall >= thresholds.min_recall,
        f"recall {c.recall:.3f} >= min_recall {thresholds.min_recall:.3f}",
    )
    check(
        c.precision >= thresholds.min_precision,
        f"precision {c.precision:.3f} >= min_precision {thresholds.min_precision:.3f}",
    )
    check(
        c.roc_auc >= thresholds.min_roc_auc,
        f"ROC AUC {c.roc_auc:.3f} >= min_roc_auc {thresholds.min_roc_auc:.3f}",
    )
    if champion is not None:
        tol = thresholds.champion_tolerance
        for metric in ("recall", "pr_auc"):
            mine, theirs = getattr(c, metric), getattr(champion, metric)
            check(
                mine >= theirs - tol,
                f"{metric} {mine:.3f} not worse than champion {champion.version} "
                f"({theirs:.3f}) by more than {tol:.3f}",
            )
    decision.blessed = not decision.reasons
    return decision
