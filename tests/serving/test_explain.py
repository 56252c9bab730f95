"""Explanations (serving/explain.py): exact, additive, in the stated output space, on real rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from stroke_mlops.serving.explain import OUTPUT, Explainer, Explanations
from stroke_mlops.serving.protocol.columns import columns_from_v1
from stroke_mlops.serving.scoring import compile_model, instances_to_frame

ADDITIVITY = 1e-6


def _explain(
    pipeline: Pipeline, signature_doc: dict[str, Any], instances: list[dict[str, Any]]
) -> Explanations:
    compiled = compile_model(pipeline, signature_doc, threshold=0.5, version="t")
    columns, count = columns_from_v1({"instances": instances}, compiled.specs, len(instances))
    return Explainer(compiled, pipeline[-1]).explain(columns, count)


@pytest.mark.parametrize("family", ["lr", "xgb", "vote"])
def test_contributions_add_up_to_the_served_probability_on_every_real_row(
    family: str,
    request: pytest.FixtureRequest,
    signature_doc: dict[str, Any],
    real_instances: list[dict[str, Any]],
) -> None:
    pipeline: Pipeline = request.getfixturevalue(f"{family}_pipeline")
    explained = _explain(pipeline, signature_doc, real_instances)
    served = pipeline.predict_proba(instances_to_frame(real_instances))[:, 1]

    assert len(real_instances) == 5110
    assert explained.contributions.shape == (5110, 10)
    assert np.max(np.abs(explained.probabilities - served)) <= 1e-9
    total = explained.base_values + explained.contributions.sum(axis=1)
    assert np.max(np.abs(total - served)) <= ADDITIVITY


@pytest.mark.parametrize(("family", "tolerance"), [("lr", 1e-9), ("xgb", 1e-5)])
def test_log_odds_step_adds_up_to_the_margin_on_every_real_row(
    family: str,
    tolerance: float,
    request: pytest.FixtureRequest,
    signature_doc: dict[str, Any],
    real_instances: list[dict[str, Any]],
) -> None:
    """Exact in log-odds: to float64 for the linear model, XGBoost's float32 for trees."""
    pipeline: Pipeline = request.getfixturevalue(f"{family}_pipeline")
    explained = _explain(pipeline, signature_doc, real_instances)
    transformed = pipeline[0].transform(instances_to_frame(real_instances))
    if family == "lr":
        margin = pipeline[-1].decision_function(transformed)
    else:
        margin = pipeline[-1].predict(transformed, output_margin=True)
    ((base, phi),) = explained.log_odds
    assert np.max(np.abs(base + phi.sum(axis=1) - margin)) <= tolerance


def test_logistic_contributions_are_coefficients_times_centred_values(
    lr_pipeline: Pipeline, signature_doc: dict[str, Any], real_instances: list[dict[str, Any]]
) -> None:
    scaler = lr_pipeline[0].named_transformers_["numeric"].named_steps["scale"]
    numeric = list(lr_pipeline[0].transformers_[0][2])
    patient = dict(real_instances[0])
    patient["age"] = float(scaler.mean_[numeric.index("age")])  # the training mean
    other = dict(patient, hypertension=1 - patient["hypertension"])
    explained = _explain(lr_pipeline, signature_doc, [patient, other])
    features = list(explained.features)
    ((_, phi),) = explained.log_odds

    assert phi[0, features.index("age")] == pytest.approx(0.0, abs=1e-12)
    assert explained.contributions[0, features.index("age")] == pytest.approx(0.0, abs=1e-12)
    # flipping one input moves that input's log-odds contribution only, by its coefficient
    moved = phi[1] - phi[0]
    column = lr_pipeline[0].get_feature_names_out().tolist().index("binary__hypertension")
    coef = lr_pipeline[-1].coef_[0][column]
    assert moved[features.index("hypertension")] == pytest.approx(
        coef * (other["hypertension"] - patient["hypertension"])
    )
    assert np.count_nonzero(np.abs(moved) > 1e-12) == 1
    # a category: its coefficient minus the mean of its input's coefficients (centre 1/K)
    names = lr_pipeline[0].get_feature_names_out().tolist()
    smoking = [k for k, name in enumerate(names) if name.startswith("categorical__smoking_status_")]
    chosen = names.index(f"categorical__smoking_status_{patient['smoking_status']}")
    weights = lr_pipeline[-1].coef_[0]
    assert phi[0, features.index("smoking_status")] == pytest.approx(
        weights[chosen] - weights[smoking].mean()
    )
    # an indicator centred at 0.5: +-coef/2 around the base
    assert abs(phi[0, features.index("hypertension")]) == pytest.approx(abs(coef) / 2)


def test_tree_contributions_are_xgboosts_own_shap_values_grouped_by_input(
    xgb_pipeline: Pipeline, signature_doc: dict[str, Any], real_instances: list[dict[str, Any]]
) -> None:
    from xgboost import DMatrix

    rows = real_instances[:50]
    explained = _explain(xgb_pipeline, signature_doc, rows)
    transformed = xgb_pipeline[0].transform(instances_to_frame(rows))
    shap = xgb_pipeline[-1].get_booster().predict(DMatrix(transformed), pred_contribs=True)
    names = xgb_pipeline[0].get_feature_names_out().tolist()
    gender = [k for k, name in enumerate(names) if name.startswith("categorical__gender_")]
    work = [k for k, name in enumerate(names) if name.startswith("categorical__work_type_")]
    features = list(explained.features)
    ((base, phi),) = explained.log_odds
    np.testing.assert_allclose(
        phi[:, features.index("gender")], shap[:, gender].sum(axis=1), atol=1e-6
    )
    np.testing.assert_allclose(
        phi[:, features.index("work_type")], shap[:, work].sum(axis=1), atol=1e-6
    )
    np.testing.assert_allclose(base, shap[:, -1], atol=1e-6)
    # mapped to probability with one factor per row: the split between inputs is kept
    ratio = explained.contributions / np.where(phi == 0.0, 1.0, phi)
    nonzero = np.abs(phi) > 1e-6
    for row in range(len(rows)):
        assert np.ptp(ratio[row][nonzero[row]]) <= 1e-9 * np.abs(ratio[row]).max()


def test_soft_vote_weights_each_members_mapped_contributions(
    vote_pipeline: Pipeline, signature_doc: dict[str, Any], real_instances: list[dict[str, Any]]
) -> None:
    from scipy.special import expit

    explained = _explain(vote_pipeline, signature_doc, real_instances[:200])
    assert len(explained.log_odds) == 2
    expected_base = sum(0.5 * expit(base) for base, _ in explained.log_odds)
    np.testing.assert_allclose(explained.base_values, expected_base, rtol=0, atol=1e-12)
    expected = np.zeros_like(explained.contributions)
    for base, phi in explained.log_odds:
        margin = base + phi.sum(axis=1)
        slope = (expit(margin) - expit(base)) / (margin - base)
        expected += 0.5 * slope[:, None] * phi
    np.testing.assert_allclose(explained.contributions, expected, rtol=0, atol=1e-12)


def test_v1_body_names_every_input_and_the_threshold(
    xgb_pipeline: Pipeline, signature_doc: dict[str, Any], real_instances: list[dict[str, Any]]
) -> None:
    body = _explain(xgb_pipeline, signature_doc, real_instances[:2]).v1_body()
    first = body["explanations"][0]
    assert set(first["contributions"]) == {
        "gender",
        "age",
        "hypertension",
        "heart_disease",
        "ever_married",
        "work_type",
        "Residence_type",
        "avg_glucose_level",
        "bmi",
        "smoking_status",
    }
    assert first["threshold"] == 0.5 and first["output"] == OUTPUT == "probability"
    assert first["decision"] == int(first["probability"] >= 0.5)
    total = first["base_value"] + sum(first["contributions"].values())
    assert total == pytest.approx(first["probability"], abs=1e-6)
