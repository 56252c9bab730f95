"""Drifted copies of patient rows: the shifts the monitor must catch (tests, benchmark, demo).

Each takes cleaned rows (``schema.FEATURE_COLUMNS`` + ``stroke``) and a numpy Generator and
returns a new frame of the same size; values stay inside the serving signature's ranges.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from stroke_mlops.data import schema

Scenario = Callable[[pd.DataFrame, np.random.Generator], pd.DataFrame]

GLUCOSE_FACTOR = 1.15
SMOKES_SHARE = 0.20
OLDER_AGE_SCALE = 20.0  # resampling weight exp(age / scale): the older, the likelier


def glucose_up(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """avg_glucose_level × 1.15 (clipped to the signature's maximum)."""
    drifted = rows.copy()
    limit = schema.feature_by_name("avg_glucose_level").maximum  # type: ignore[union-attr]
    drifted["avg_glucose_level"] = (drifted["avg_glucose_level"] * GLUCOSE_FACTOR).clip(upper=limit)
    return drifted


def more_smokers(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """20 % of the rows (chosen at random) recoded to smoking_status "smokes"."""
    drifted = rows.reset_index(drop=True)
    chosen = rng.choice(len(drifted), size=round(SMOKES_SHARE * len(drifted)), replace=False)
    drifted.loc[chosen, "smoking_status"] = "smokes"
    return drifted


def older_patients(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The rows resampled (with replacement) with weight exp(age / 20): an older population."""
    weights = np.exp(rows["age"].to_numpy(dtype=np.float64) / OLDER_AGE_SCALE)
    chosen = rng.choice(len(rows), size=len(rows), replace=True, p=weights / weights.sum())
    return rows.iloc[chosen].reset_index(drop=True)


SCENARIOS: dict[str, tuple[Scenario, str]] = {
    "avg_glucose_level × 1.15": (glucose_up, "avg_glucose_level"),
    "20 % recoded to smokes": (more_smokers, "smoking_status"),
    "older population": (older_patients, "age"),
}
"""Name → (the drift, the feature the monitor must name)."""
