"""The compiled fast path returns the fitted pipeline's probabilities on every real row,
and refuses pipeline shapes it does not know instead of silently diverging."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from stroke_mlops.data import schema
from stroke_mlops.data.dataset import features_and_target
from stroke_mlops.serving import protocol, scoring
from stroke_mlops.serving.scoring import UnsupportedPipelineError, compile_model
from stroke_mlops.training.train import build_model_pipeline
from tests.serving.model_dirs import TEST_THRESHOLD, fit_pipeline

PARITY = 1e-6


def compiled_for(pipeline: Pipeline, signature_doc: dict[str, Any]) -> scoring.CompiledModel:
    return compile_model(pipeline, signature_doc, threshold=TEST_THRESHOLD, version="parity")


@pytest.mark.parametrize("pipeline_name", ["lr_pipeline", "xgb_pipeline", "vote_pipeline"])
def test_every_real_row_scores_like_the_pipeline(
    pipeline_name: str,
    request: pytest.FixtureRequest,
    real_patients: pd.DataFrame,
    real_instances: list[dict[str, Any]],
    signature_doc: dict[str, Any],
) -> None:
    pipeline: Pipeline = request.getfixturevalue(pipeline_name)
    compiled = compiled_for(pipeline, signature_doc)
    features, _ = features_and_target(real_patients)
    expected = pipeline.predict_proba(features)[:, 1]

    batch = compiled.predict_instances(real_instances).probabilities
    one_by_one = np.array(
        [compiled.predict_instances([i]).probabilities[0] for i in real_instances]
    )
    columns = {name: features[name].tolist() for name in schema.FEATURE_COLUMNS}
    columns["bmi"] = [None if np.isnan(v) else v for v in columns["bmi"]]
    columnar = compiled.predict(columns, len(features)).probabilities

    assert len(batch) == len(real_patients) == 5110
    assert real_patients["bmi"].isna().sum() == 201  # the imputed rows are in the comparison
    for ours in (batch, one_by_one, columnar):
        worst = np.abs(ours - expected).max()
        assert worst <= PARITY, f"{pipeline_name}: max |difference| {worst:.3g}"
    decisions = compiled.predict_instances(real_instances).decisions
    assert decisions.tolist() == (expected >= TEST_THRESHOLD).astype(int).tolist()


def test_probe_rows_cover_every_category_bound_and_null(signature_doc: dict[str, Any]) -> None:
    specs = protocol.input_specs(signature_doc)
    probes = scoring.probe_instances(specs)
    for spec in specs:
        seen = {row[spec.name] for row in probes}
        if spec.kind == "string":
            assert seen == set(spec.categories)
        elif spec.kind == "number":
            assert {spec.minimum, spec.maximum} <= seen
            assert (None in seen) == spec.nullable


def _with_steps(pipeline: Pipeline, **replace: Any) -> Pipeline:
    """An unfitted copy of the project pipeline with some ColumnTransformer parts replaced."""
    preprocess = pipeline.named_steps["preprocess"]
    transformers = [
        (name, replace.get(name, transformer), columns)
        for name, transformer, columns in preprocess.transformers
    ]
    return Pipeline(
        [
            ("preprocess", ColumnTransformer(transformers, remainder="drop")),
            ("classifier", LogisticRegression(max_iter=2000)),
        ]
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda p: build_model_pipeline(RandomForestClassifier(n_estimators=5, random_state=0)),
            "cannot compile classifier RandomForestClassifier",
        ),
        (
            lambda p: _with_steps(
                p, numeric=Pipeline([("impute", SimpleImputer()), ("scale", MinMaxScaler())])
            ),
            "MinMaxScaler is not supported",
        ),
        (
            lambda p: _with_steps(
                p,
                categorical=OneHotEncoder(
                    categories=[list(f.categories) for f in schema.CATEGORICAL_FEATURES],
                    drop="first",
                    sparse_output=False,
                ),
            ),
            "drops categories",
        ),
        (
            lambda p: _with_steps(
                p,
                categorical=OneHotEncoder(
                    handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False
                ),
            ),
            "groups infrequent categories",
        ),
        (
            lambda p: _with_steps(p, numeric=StandardScaler()),
            "input 'bmi' may be null but transformer 'numeric' does not impute it",
        ),
        (
            lambda p: Pipeline(
                [
                    ("preprocess", clone(p.named_steps["preprocess"])),  # never refit the fixture
                    ("classifier", VotingClassifier([("lr", LogisticRegression())], voting="hard")),
                ]
            ),
            "VotingClassifier must vote 'soft'",
        ),
    ],
)
def test_unknown_pipeline_shapes_are_refused(
    make: Any,
    message: str,
    lr_pipeline: Pipeline,
    real_patients: pd.DataFrame,
    signature_doc: dict[str, Any],
) -> None:
    features, target = features_and_target(real_patients.dropna())
    pipeline = make(lr_pipeline).fit(features, target)
    with pytest.raises(UnsupportedPipelineError, match=message.replace("(", r"\(")):
        compiled_for(pipeline, signature_doc)


def test_a_pipeline_with_an_extra_step_is_refused(
    lr_pipeline: Pipeline, signature_doc: dict[str, Any]
) -> None:
    three = Pipeline([*lr_pipeline.steps[:1], ("noop", "passthrough"), *lr_pipeline.steps[1:]])
    with pytest.raises(UnsupportedPipelineError, match="preprocess=ColumnTransformer, noop=str"):
        compiled_for(three, signature_doc)


def test_signature_must_match_the_fitted_columns(
    lr_pipeline: Pipeline, signature_doc: dict[str, Any]
) -> None:
    fewer = {**signature_doc, "inputs": signature_doc["inputs"][:-1]}
    with pytest.raises(UnsupportedPipelineError, match=r"not in signature: \['smoking_status'\]"):
        compiled_for(lr_pipeline, fewer)


def test_a_category_the_encoder_never_saw_is_refused(
    lr_pipeline: Pipeline, signature_doc: dict[str, Any]
) -> None:
    inputs = [
        {**spec, "categories": [*spec["categories"], "Unknown"]}
        if spec["name"] == "gender"
        else spec
        for spec in signature_doc["inputs"]
    ]
    with pytest.raises(UnsupportedPipelineError, match=r"'gender' = \['Unknown'\]"):
        compiled_for(lr_pipeline, {**signature_doc, "inputs": inputs})


def test_a_diverging_compilation_is_caught_by_the_parity_check(
    real_patients: pd.DataFrame, signature_doc: dict[str, Any]
) -> None:
    # Imputing with a constant the compiler reads correctly, then shifting the fitted scaler
    # behind the encoder's back: the structure is known, the numbers are not what sklearn uses.
    pipeline = fit_pipeline(real_patients, LogisticRegression(max_iter=2000))
    compiled_ok = compiled_for(pipeline, signature_doc)
    assert compiled_ok.classifier == "LogisticRegression"

    class ShiftedScaler(StandardScaler):
        def transform(self, X: Any, copy: Any = None) -> Any:
            return super().transform(X, copy=copy) + 1.0

    numeric = pipeline.named_steps["preprocess"].named_transformers_["numeric"]
    shifted = ShiftedScaler()
    shifted.__dict__.update(numeric.named_steps["scale"].__dict__)
    numeric.steps[-1] = ("scale", shifted)
    with pytest.raises(
        UnsupportedPipelineError, match="refusing to serve a model that would diverge"
    ):
        compiled_for(pipeline, signature_doc)
