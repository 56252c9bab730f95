"""Training candidates, selection, reproducibility, evaluation and the model card."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from stroke_mlops.data import dataset
from stroke_mlops.training import evaluate, train

SMALL = (
    train.Candidate(
        "logistic_regression",
        lambda seed, _: LogisticRegression(
            class_weight="balanced", max_iter=2000, random_state=seed
        ),
        {"classifier__C": (0.1, 1.0)},
    ),
    train.Candidate(
        "xgboost",
        train.CANDIDATES[1].make_classifier,
        {"classifier__max_depth": (2,), "classifier__n_estimators": (60,)},
    ),
)


@pytest.fixture(scope="module")
def split(patients_with_ids: pd.DataFrame) -> dataset.PatientSplit:
    return dataset.split_patients(patients_with_ids, seed=3)


@pytest.fixture(scope="module")
def trained(split: dataset.PatientSplit) -> train.TrainingResult:
    X, y = dataset.features_and_target(split.train)
    return train.train_candidates(X, y, seed=3, precision_floor=0.15, folds=3, candidates=SMALL)


def test_selects_a_fitted_pipeline_with_its_preprocessing(
    trained: train.TrainingResult, split: dataset.PatientSplit
) -> None:
    assert trained.selected in {"logistic_regression", "xgboost", train.SOFT_VOTE}
    assert {c.name for c in trained.candidates} == {"logistic_regression", "xgboost", "soft_vote"}
    assert [name for name, _ in trained.model.steps] == ["preprocess", "classifier"]
    chosen = next(c for c in trained.candidates if c.name == trained.selected)
    best = max(
        trained.candidates, key=lambda c: (c.oof_recall_at_precision, c.oof_average_precision)
    )
    assert chosen is best
    # Serving sends raw fields (with a missing bmi) and gets a probability back.
    X_test, _ = dataset.features_and_target(split.test)
    raw_rows = X_test.head(5).copy()
    raw_rows.loc[raw_rows.index[0], "bmi"] = np.nan
    proba = trained.model.predict_proba(raw_rows)[:, 1]
    assert proba.shape == (5,)
    assert np.all((proba >= 0) & (proba <= 1))
    # Repeated CV: one row of out-of-fold scores per repeat, each with its own shuffle.
    assert trained.oof_scores.shape == (3, len(split.train))
    assert not np.allclose(trained.oof_scores[0], trained.oof_scores[1])


def test_training_is_reproducible_from_the_seed(
    trained: train.TrainingResult, split: dataset.PatientSplit
) -> None:
    X, y = dataset.features_and_target(split.train)
    again = train.train_candidates(X, y, seed=3, precision_floor=0.15, folds=3, candidates=SMALL)
    np.testing.assert_allclose(again.oof_scores, trained.oof_scores)
    X_test, _ = dataset.features_and_target(split.test)
    np.testing.assert_allclose(
        again.model.predict_proba(X_test), trained.model.predict_proba(X_test)
    )


def test_too_few_strokes_is_a_clear_error(split: dataset.PatientSplit) -> None:
    X, y = dataset.features_and_target(split.train)
    y_few = np.zeros_like(y)
    y_few[:2] = 1
    with pytest.raises(ValueError, match="at least 5 strokes; got 2"):
        train.train_candidates(X, y_few, seed=0, precision_floor=0.15, candidates=SMALL)


def test_evaluation_is_consistent_and_the_card_says_so(
    trained: train.TrainingResult, split: dataset.PatientSplit
) -> None:
    result = evaluate.evaluate_model(
        trained.model,
        development=split.train,
        oof_scores=trained.oof_scores,
        test=split.test,
        config=evaluate.EvaluationConfig(bootstrap_resamples=200, seed=3),
    )
    cm = np.array(result.confusion_matrix)
    assert cm.sum() == len(split.test)
    assert cm[1].sum() == int(split.test["stroke"].sum())
    assert result.test["recall"] == pytest.approx(cm[1, 1] / cm[1].sum())
    # The threshold was chosen on the out-of-fold development scores, not on the test set.
    assert result.threshold_choice["rows"] == len(split.train)
    assert result.out_of_fold["recall"] == pytest.approx(result.threshold_choice["recall"])
    assert result.threshold_choice["precision"] >= 0.15
    # The promise: the chosen threshold's precision lower bound (95 %) reaches the floor.
    assert result.threshold_choice["confidence"] == 0.95
    assert result.threshold_choice["precision_lower_bound"] >= 0.15
    assert (
        result.intervals["recall"]["low"]
        <= result.test["recall"]
        <= result.intervals["recall"]["high"]
    )
    assert len(result.roc_curve["fpr"]) <= evaluate.ROC_POINTS
    assert all(0.0 <= t <= 1.0 for t in result.roc_curve["thresholds"])
    again = evaluate.Evaluation.from_json(result.to_json())
    assert again.threshold == result.threshold
    card = evaluate.render_model_card(
        result,
        version="v-test",
        selected=trained.selected,
        training_summary=trained.summary(),
        fingerprint={"raw_sha256": "abc", "seed": 3, "parts": split.summary()},
    )
    assert "v-test" in card
    assert "is ≥ 15% with 95% confidence" in " ".join(card.split())
    cv = result.cross_validated
    assert cv["repeats"] == 3 and cv["rows"] == len(split.train)
    assert cv["intervals"]["recall"]["low"] <= cv["recall"] <= cv["intervals"]["recall"]["high"]
    assert f"{cv['recall']:.3f}" in card and "Repeated cross-validation" in card
    assert f"{result.test['recall']:.3f}" in card
    assert f"| **stroke** | {cm[1][0]} | {cm[1][1]} |" in card


def test_soft_vote_oof_is_the_mean_of_its_members_oof(split: dataset.PatientSplit) -> None:
    """What _soft_vote_result relies on: scoring the vote without cross-validating it again."""
    X, y = dataset.features_and_target(split.train)
    splitter = StratifiedKFold(n_splits=3, shuffle=True, random_state=3)
    members = {
        c.name: train.build_model_pipeline(c.make_classifier(3, 19.0)).set_params(
            **{key: values[0] for key, values in c.grid.items()}
        )
        for c in SMALL
    }
    oofs = {
        name: cross_val_predict(pipe, X, y, cv=splitter, method="predict_proba")[:, 1]
        for name, pipe in members.items()
    }
    vote = train.build_soft_vote({name: (pipe, oofs[name]) for name, pipe in members.items()})
    vote_oof = cross_val_predict(vote, X, y, cv=splitter, method="predict_proba")[:, 1]
    np.testing.assert_allclose(vote_oof, np.mean(list(oofs.values()), axis=0), atol=1e-12)


def test_search_shortcuts_give_the_scores_a_plain_cross_validation_gives(
    split: dataset.PatientSplit,
) -> None:
    """The search encodes each fold once for every candidate and scores XGBoost's smaller
    n_estimators from the larger fit's first trees; the result must be what GridSearchCV and
    cross_val_predict of each pipeline give on the same folds."""
    from sklearn.model_selection import GridSearchCV

    X, y = dataset.features_and_target(split.train)
    grid_candidates = (
        SMALL[0],
        train.Candidate(
            "xgboost",
            train.CANDIDATES[1].make_classifier,
            {"classifier__max_depth": (2, 3), "classifier__n_estimators": (30, 60)},
        ),
    )
    result = train.train_candidates(
        X, y, seed=4, precision_floor=0.15, folds=3, cv_repeats=2, candidates=grid_candidates
    )
    splitter = StratifiedKFold(n_splits=3, shuffle=True, random_state=4)
    imbalance = float((len(y) - y.sum()) / y.sum())
    oofs = []
    for candidate, found in zip(grid_candidates, result.candidates, strict=False):
        search = GridSearchCV(
            train.build_model_pipeline(candidate.make_classifier(4, imbalance)),
            dict(candidate.grid),
            scoring="average_precision",
            cv=splitter,
        ).fit(X, y)
        assert found.best_params == {
            k.removeprefix("classifier__"): v for k, v in search.best_params_.items()
        }
        assert found.cv_average_precision == pytest.approx(search.best_score_, abs=1e-5)
        oofs.append(
            cross_val_predict(search.best_estimator_, X, y, cv=splitter, method="predict_proba")[
                :, 1
            ]
        )
    expected = {"logistic_regression": oofs[0], "xgboost": oofs[1], "soft_vote": np.mean(oofs, 0)}
    np.testing.assert_allclose(result.oof_scores[0], expected[result.selected], atol=1e-6)


class _ThreadRecorder(LogisticRegression):
    """A logistic regression that records the BLAS/OpenMP thread counts it was fitted under."""

    seen: list[int] = []  # noqa: RUF012 - shared on purpose: clones record into the same list

    def fit(self, X, y, sample_weight=None):
        from threadpoolctl import threadpool_info

        _ThreadRecorder.seen.extend(pool["num_threads"] for pool in threadpool_info())
        return super().fit(X, y, sample_weight)


def test_training_uses_one_blas_and_openmp_thread(split: dataset.PatientSplit) -> None:
    """On a shared machine idle BLAS/OpenMP threads spin against other processes (training took
    twice the CPU and wall time with two OpenBLAS threads): every fit runs with one."""
    X, y = dataset.features_and_target(split.train)
    recorder = train.Candidate(
        "recorder", lambda seed, _: _ThreadRecorder(max_iter=500), {"classifier__C": (1.0,)}
    )
    _ThreadRecorder.seen.clear()
    train.train_candidates(X, y, seed=3, precision_floor=0.15, folds=3, candidates=(recorder,))
    assert _ThreadRecorder.seen and set(_ThreadRecorder.seen) == {1}
