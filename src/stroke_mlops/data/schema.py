"""The stroke dataset's columns: the single source of truth for names, kinds and allowed values.

The data contract (GX suite), the training pipeline's preprocessing, the serving signature and
the example requests are all derived from these definitions, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

ID_COLUMN = "id"
TARGET_COLUMN = "stroke"
MODEL_NAME = "stroke"


@dataclass(frozen=True)
class NumericFeature:
    """A continuous feature with the plausible range a value must fall in."""

    name: str
    minimum: float
    maximum: float
    nullable: bool = False


@dataclass(frozen=True)
class BinaryFeature:
    """A 0/1 indicator."""

    name: str


@dataclass(frozen=True)
class CategoricalFeature:
    """A string feature restricted to a closed set of categories (as spelled in the raw file)."""

    name: str
    categories: tuple[str, ...]


Feature = NumericFeature | BinaryFeature | CategoricalFeature

# Ranges are physiological bounds, wider than anything in the reference file, so that a real
# patient is never refused; values outside them are data errors (units, typos, sentinels).
NUMERIC_FEATURES: tuple[NumericFeature, ...] = (
    NumericFeature("age", minimum=0.0, maximum=120.0),
    NumericFeature("avg_glucose_level", minimum=20.0, maximum=500.0),
    NumericFeature("bmi", minimum=5.0, maximum=120.0, nullable=True),
)
BINARY_FEATURES: tuple[BinaryFeature, ...] = (
    BinaryFeature("hypertension"),
    BinaryFeature("heart_disease"),
)
CATEGORICAL_FEATURES: tuple[CategoricalFeature, ...] = (
    CategoricalFeature("gender", ("Female", "Male", "Other")),
    CategoricalFeature("ever_married", ("No", "Yes")),
    CategoricalFeature(
        "work_type", ("Govt_job", "Never_worked", "Private", "Self-employed", "children")
    ),
    CategoricalFeature("Residence_type", ("Rural", "Urban")),
    CategoricalFeature("smoking_status", ("Unknown", "formerly smoked", "never smoked", "smokes")),
)

FEATURES: tuple[Feature, ...] = (*NUMERIC_FEATURES, *BINARY_FEATURES, *CATEGORICAL_FEATURES)
NUMERIC_COLUMNS: tuple[str, ...] = tuple(f.name for f in NUMERIC_FEATURES)
BINARY_COLUMNS: tuple[str, ...] = tuple(f.name for f in BINARY_FEATURES)
CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(f.name for f in CATEGORICAL_FEATURES)
FEATURE_COLUMNS: tuple[str, ...] = (
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
)
# The raw file's columns, in the order the distributed CSV has them.
RAW_COLUMNS: tuple[str, ...] = (ID_COLUMN, *FEATURE_COLUMNS, TARGET_COLUMN)

assert set(FEATURE_COLUMNS) == {f.name for f in FEATURES}


def feature_by_name(name: str) -> Feature:
    """Return the feature definition called ``name`` (KeyError if there is none)."""
    for feature in FEATURES:
        if feature.name == name:
            return feature
    raise KeyError(name)
