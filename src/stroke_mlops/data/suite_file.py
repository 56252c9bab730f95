"""The expectation suite file: where it is, reading and checking it, writing it for review.

The suite is reviewed JSON (``gx/expectations/stroke_raw.json``) in GX Core 1.x's own format: a
``name``, suite ``meta`` and a list of ``{"type", "kwargs", "meta": {"notes"}}`` expectations.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SUITE_PATH = REPO_ROOT / "gx" / "expectations" / "stroke_raw.json"
# An installed wheel has no gx/ folder: it ships the same suite beside this module.
PACKAGED_SUITE_PATH = Path(__file__).resolve().with_name("stroke_raw.json")
SUITE_PATH_ENV = "STROKE_MLOPS_SUITE"

JsonDict = dict[str, Any]


class SuiteError(ValueError):
    """The expectation suite file is missing or malformed (the message names the file)."""


def resolve_suite_path(suite_path: Path | None = None) -> Path:
    """The suite to use: ``suite_path``, else $STROKE_MLOPS_SUITE, else the repository's
    ``gx/expectations/stroke_raw.json``, else the copy packaged with an installed wheel."""
    if suite_path is not None:
        return Path(suite_path)
    if from_env := os.environ.get(SUITE_PATH_ENV):
        return Path(from_env)
    if not DEFAULT_SUITE_PATH.is_file() and PACKAGED_SUITE_PATH.is_file():
        return PACKAGED_SUITE_PATH
    return DEFAULT_SUITE_PATH


def load_suite(suite_path: Path | None = None) -> JsonDict:
    """Read and check the suite JSON (SuiteError naming the file and the bad entry)."""
    path = resolve_suite_path(suite_path)
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SuiteError(
            f"{path}: expectation suite not found (pass suite_path or set {SUITE_PATH_ENV})"
        ) from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SuiteError(f"{path}: not a readable JSON expectation suite: {error}") from error
    if not isinstance(suite, dict) or not isinstance(suite.get("name"), str):
        raise SuiteError(f"{path}: expected a JSON object with a 'name' string")
    expectations = suite.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise SuiteError(f"{path}: expected a non-empty 'expectations' list")
    for number, expectation in enumerate(expectations, start=1):
        if not (
            isinstance(expectation, dict)
            and isinstance(expectation.get("type"), str)
            and isinstance(expectation.get("kwargs"), dict)
        ):
            raise SuiteError(
                f"{path}: expectation {number} must be an object with 'type' and 'kwargs'"
            )
    return suite


def write_suite(suite: Mapping[str, Any], path: Path) -> Path:
    """Write a suite as pretty JSON with a stable key order, so that diffs review well."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_ordered_suite(suite), indent=2, ensure_ascii=False, default=_json_scalar)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _ordered_suite(suite: Mapping[str, Any]) -> JsonDict:
    ordered: JsonDict = {key: suite[key] for key in ("name", "meta") if key in suite}
    ordered["expectations"] = [
        _ordered_expectation(expectation) for expectation in suite.get("expectations", [])
    ]
    for key in sorted(set(suite) - set(ordered)):
        ordered[key] = suite[key]
    return ordered


_KWARGS_ORDER = (
    "column",
    "column_list",
    "type_list",
    "value_set",
    "min_value",
    "max_value",
    "mostly",
)


def _ordered_expectation(expectation: Mapping[str, Any]) -> JsonDict:
    kwargs = dict(expectation.get("kwargs", {}))
    ordered_kwargs = {key: kwargs[key] for key in _KWARGS_ORDER if key in kwargs}
    ordered_kwargs |= {key: kwargs[key] for key in sorted(kwargs) if key not in _KWARGS_ORDER}
    ordered: JsonDict = {"type": expectation["type"], "kwargs": ordered_kwargs}
    if "meta" in expectation:
        ordered["meta"] = dict(sorted(expectation["meta"].items()))
    for key in sorted(set(expectation) - {"type", "kwargs", "meta"}):
        ordered[key] = expectation[key]
    return ordered


def _json_scalar(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serializable: {value!r}")
