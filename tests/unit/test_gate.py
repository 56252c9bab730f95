"""Both branches of the promotion gate, and champion/challenger."""

from __future__ import annotations

import pytest

from stroke_mlops.data.enforcement import DataContractError, enforce_contract
from stroke_mlops.training.promotion_gate import GateThresholds, ModelScore, decide_promotion

GOOD = ModelScore("challenger", recall=0.80, precision=0.16, roc_auc=0.85, pr_auc=0.25)


def test_blessed_when_every_threshold_holds_and_no_champion() -> None:
    decision = decide_promotion(GOOD, GateThresholds())
    assert decision.blessed
    assert decision.reasons == []
    assert decision.message().startswith("blessed")


def test_every_violation_is_reported_at_once() -> None:
    weak = ModelScore("challenger", recall=0.50, precision=0.10, roc_auc=0.70, pr_auc=0.1)
    decision = decide_promotion(
        weak, GateThresholds(min_recall=0.75, min_precision=0.15, min_roc_auc=0.83)
    )
    assert not decision.blessed
    assert len(decision.reasons) == 3
    message = decision.message()
    for expected in ("recall 0.500 >= min_recall 0.750", "precision 0.100", "ROC AUC 0.700"):
        assert expected in message


def test_challenger_worse_than_champion_beyond_tolerance_is_refused() -> None:
    champion = ModelScore("v1", recall=0.90, precision=0.17, roc_auc=0.86, pr_auc=0.30)
    decision = decide_promotion(GOOD, GateThresholds(champion_tolerance=0.02), champion)
    assert not decision.blessed
    assert any(
        "champion v1" in reason and reason.startswith("recall") for reason in decision.reasons
    )
    assert any(reason.startswith("pr_auc") for reason in decision.reasons)


def test_challenger_within_tolerance_of_champion_is_blessed() -> None:
    champion = ModelScore("v1", recall=0.81, precision=0.16, roc_auc=0.85, pr_auc=0.26)
    assert decide_promotion(GOOD, GateThresholds(champion_tolerance=0.02), champion).blessed


def test_thresholds_outside_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError, match="min_recall"):
        GateThresholds(min_recall=1.5)


def test_data_gate_stops_with_every_failure_in_the_message() -> None:
    enforce_contract(True, "")
    failures = "age: expected numbers, got 'abc' (row 3)\ngender: expected one of Female, Male"
    with pytest.raises(DataContractError) as caught:
        enforce_contract(False, failures)
    assert "row 3" in str(caught.value)
    assert "gender" in str(caught.value)
