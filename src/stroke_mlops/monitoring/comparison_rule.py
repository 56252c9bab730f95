"""The comparison's decision rule and its defaults: light to import (the CLI's help reads them).

The rule itself is :func:`stroke_mlops.monitoring.compare.decide`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from stroke_mlops.training.promotion_gate import GateThresholds

__all__ = ["VERDICTS", "ComparisonError", "DecisionRule", "Verdict"]

Verdict = Literal["challenger_better", "not_worse", "worse", "too_few_labels"]
VERDICTS: tuple[Verdict, ...] = ("challenger_better", "not_worse", "worse", "too_few_labels")


class ComparisonError(ValueError):
    """The comparison cannot be made or read; the message is one line naming what and why."""


@dataclass(frozen=True)
class DecisionRule:
    """The verdict's parameters; every default is stated in the README with its error rates."""

    alpha: float = 0.05  # each one-sided claim (better, not worse, worse) at this level
    margin: float = 0.05  # non-inferiority margin on recall (absolute)
    min_labelled_positives: int = 30  # labelled strokes each version needs before any claim
    precision_floor: float = GateThresholds().min_precision

    def check(self) -> DecisionRule:
        if not 0 < self.alpha < 0.5:
            raise ComparisonError(f"alpha must be in (0, 0.5); got {self.alpha}")
        if not 0 < self.margin < 1:
            raise ComparisonError(f"margin must be in (0, 1); got {self.margin}")
        if self.min_labelled_positives < 1:
            raise ComparisonError(
                f"min_labelled_positives must be >= 1; got {self.min_labelled_positives}"
            )
        if not 0 <= self.precision_floor < 1:
            raise ComparisonError(f"precision_floor must be in [0, 1); got {self.precision_floor}")
        return self
