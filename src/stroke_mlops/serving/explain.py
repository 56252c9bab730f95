"""Exact per-feature explanations of the served model, for KServe's V1 ``:explain`` verb.

Each instance's explanation is ``base_value + sum(contributions) = probability``: contributions
are in **probability** (the output the server serves), one per input (an input encoded into
several columns, such as a one-hot category, gets the sum of its columns'). They are built in two
steps, the first exact in each member's log-odds (its margin ``m``):

* **XGBoost**: tree SHAP from XGBoost itself (``Booster.predict(pred_contribs=True)`` on the
  booster the server compiled, same iteration range); the log-odds base ``b`` is XGBoost's bias
  term (the expected margin over the training data, weighted by cover).
* **Logistic regression**: coefficients x centred values, ``w_j * (x_j - c_j)`` over the encoded
  columns, base ``b = intercept + w . c``. The centre ``c`` is a reference patient known from
  the fitted pipeline alone: numbers at the standardisation mean (0 once encoded: the training
  mean, after imputation), each yes/no indicator at the mean of its allowed values (0.5) and
  each category column at 1/K for a K-category input (categories weighted equally). Training
  frequencies are not part of the published model, so they are not guessed.

Then each member's log-odds contributions ``phi`` are mapped to probability by one rescale rule:
multiplied by ``(sigmoid(m) - sigmoid(b)) / (m - b)`` (the slope ``sigmoid'(b)`` when
``m = b``), so they add up to the member's change in probability from ``sigmoid(b)`` and keep its
exact ratios between features. A **soft vote** (``probability = sum_k w_k sigmoid(m_k)``,
weights normalised) weights its members' mapped contributions by ``w_k``; its base is
``sum_k w_k sigmoid(b_k)``. A single model is the one-member case. The log-odds step is kept in
:attr:`Explanations.log_odds` (one per member).

tests/serving/test_explain.py checks on every row of the real dataset, for each family, that the
contributions add up to the served probability within 1e-6 and that the log-odds step adds up to
the member's margin (within XGBoost's float32 arithmetic for trees).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from stroke_mlops.data import schema
from stroke_mlops.serving.protocol.columns import Columns
from stroke_mlops.serving.scoring import CompiledModel, UnsupportedPipelineError

OUTPUT = "probability"  # the space contributions are stated in

# one member's explanation of encoded rows: (base per row, column contributions (N, width))
_MemberExplainer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Explanations:
    """The served prediction of each instance and its additive explanation."""

    features: tuple[str, ...]
    base_values: np.ndarray  # (N,) in probability
    contributions: np.ndarray  # (N, len(features)) in probability
    probabilities: np.ndarray  # (N,) as predict serves them
    decisions: np.ndarray  # (N,) int64
    threshold: float
    model_version: str
    log_odds: tuple[tuple[np.ndarray, np.ndarray], ...] = ()  # per member: (base, contributions)

    def v1_body(self, model_name: str = schema.MODEL_NAME) -> dict[str, Any]:
        """The V1 ``:explain`` response: one explanation per instance + model version."""
        explanations = []
        for row in range(len(self.probabilities)):
            explanations.append(
                {
                    "probability": float(self.probabilities[row]),
                    "decision": int(self.decisions[row]),
                    "threshold": self.threshold,
                    "output": OUTPUT,
                    "base_value": float(self.base_values[row]),
                    "contributions": dict(
                        zip(self.features, self.contributions[row].tolist(), strict=True)
                    ),
                }
            )
        return {
            "explanations": explanations,
            "model_name": model_name,
            "model_version": self.model_version,
        }


class Explainer:
    """Explains request columns for one compiled model (see the module docstring)."""

    def __init__(self, compiled: CompiledModel, classifier: Any) -> None:
        self.compiled = compiled
        self.features = tuple(spec.name for spec in compiled.specs)
        columns = compiled.input_columns()
        grouping = np.zeros((compiled.width, len(self.features)), dtype=np.float64)
        centre = np.zeros(compiled.width, dtype=np.float64)
        for index, spec in enumerate(compiled.specs):
            owned = list(columns[spec.name])
            grouping[owned, index] = 1.0
            if spec.kind == "string":
                centre[owned] = 1.0 / len(owned)
            elif spec.kind == "integer" and spec.allowed:
                centre[owned] = float(np.mean(spec.allowed))
        self._grouping = grouping
        if type(classifier).__name__ == "VotingClassifier":
            if classifier.voting != "soft":
                raise UnsupportedPipelineError("only a soft VotingClassifier can be explained")
            self._members = [_member(estimator, centre) for estimator in classifier.estimators_]
            raw = classifier.weights or [1.0] * len(self._members)
            weights = np.asarray(raw, dtype=np.float64)
            self._weights = weights / weights.sum()  # as np.average in predict_proba
        else:
            self._members = [_member(classifier, centre)]
            self._weights = np.ones(1, dtype=np.float64)

    def explain(self, columns: Columns, count: int) -> Explanations:
        """Validate and encode like predict, score, and explain every instance."""
        encoded = self.compiled.encode(columns, count)
        probabilities = self.compiled.score(encoded)
        base = np.zeros(count, dtype=np.float64)
        contributions = np.zeros((count, len(self.features)), dtype=np.float64)
        log_odds: list[tuple[np.ndarray, np.ndarray]] = []
        for weight, member in zip(self._weights, self._members, strict=True):
            member_base, by_column = member(encoded)
            phi = by_column @ self._grouping
            log_odds.append((member_base, phi))
            shift = phi.sum(axis=1)  # m - b
            start, end = expit(member_base), expit(member_base + shift)
            flat = shift == 0.0
            slope = np.where(
                flat, start * (1.0 - start), (end - start) / np.where(flat, 1.0, shift)
            )
            base += weight * start
            contributions += (weight * slope)[:, None] * phi
        return Explanations(
            features=self.features,
            base_values=base,
            contributions=contributions,
            probabilities=probabilities,
            decisions=(probabilities >= self.compiled.threshold).astype(np.int64),
            threshold=self.compiled.threshold,
            model_version=self.compiled.version,
            log_odds=tuple(log_odds),
        )


def _member(classifier: Any, centre: np.ndarray) -> _MemberExplainer:
    from sklearn.linear_model import LogisticRegression

    if isinstance(classifier, LogisticRegression):
        coef = np.asarray(classifier.coef_, dtype=np.float64)[0]
        base_value = float(classifier.intercept_[0]) + float(coef @ centre)

        def linear(encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            base = np.full(encoded.shape[0], base_value, dtype=np.float64)
            return base, (encoded - centre) * coef

        return linear
    if type(classifier).__name__ == "XGBClassifier":
        from xgboost import DMatrix

        booster = classifier.get_booster().copy()
        booster.set_param({"nthread": 1})
        try:  # as scoring.py and XGBModel.predict: the best iteration when early stopping set one
            iteration_range = (0, int(classifier.best_iteration) + 1)
        except AttributeError:
            iteration_range = (0, 0)
        missing = classifier.missing

        def trees(encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            contributions = booster.predict(
                DMatrix(encoded, missing=missing),
                pred_contribs=True,
                iteration_range=iteration_range,
                validate_features=False,
            )
            contributions = np.asarray(contributions, dtype=np.float64)
            return contributions[:, -1], contributions[:, :-1]

        return trees
    raise UnsupportedPipelineError(
        f"cannot explain classifier {type(classifier).__name__}: supported are "
        "LogisticRegression, XGBClassifier and a soft VotingClassifier of them"
    )
