"""Automated retraining: when to retrain (cool-down), and on what data (kept by content hash).

Store layout (beside ``stroke/versions/``)::

    stroke/datasets/<sha256>.csv     raw CSVs a published model was trained on, or a retraining
                                     run will train on, named by the sha256 of their bytes
    stroke/datasets/<sha256>.json    lineage of an assembled dataset: its base, the production
                                     request ids it added (cumulative), row counts
    stroke/retraining/<UTC stamp>-<dataset sha256 prefix>.json
                                     one record per retraining attempt (the cool-down reads them)

Publish keeps the training CSV (:func:`keep_dataset`), so the production version's metadata
fingerprint (``raw_sha256``) names a file the loop can read back. A retraining set is that CSV
plus the labelled production rows (feature values as served, outcome from feedback) in the raw
file's format, with fresh ids; rows already added by an earlier retraining are not added twice.
The training pipeline then checks the merged file with the data contract like any other input.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from stroke_mlops.data import dataset, schema
from stroke_mlops.monitoring.feedback import REQUEST_ID_COLUMN, labelled_requests
from stroke_mlops.monitoring.objects import open_folder
from stroke_mlops.monitoring.requests import RequestLogReader
from stroke_mlops.registry.model_dir import verify_model_dir
from stroke_mlops.registry.store import ROOT_DIR, open_store

__all__ = [
    "ATTEMPTS_DIR",
    "DATASETS_DIR",
    "AssembledDataset",
    "RetrainDecision",
    "RetrainingError",
    "Window",
    "assemble_training_data",
    "attempt_record",
    "collect_window",
    "decide_retraining",
    "keep_dataset",
    "last_attempt_at",
    "read_kept_dataset",
    "record_attempt",
]

log = logging.getLogger(__name__)

DATASETS_DIR = f"{ROOT_DIR}/datasets"
ATTEMPTS_DIR = f"{ROOT_DIR}/retraining"
DEFAULT_COOLDOWN_HOURS = 24.0


class RetrainingError(ValueError):
    """Retraining cannot start: no production model, or its training data is not in the store."""


def _dataset_key(sha256: str, suffix: str = ".csv") -> str:
    return f"{DATASETS_DIR}/{sha256}{suffix}"


def keep_dataset(store_uri: str, content: bytes) -> str:
    """Keep a raw CSV in the store under its sha256 (idempotent); returns its URI."""
    digest = dataset.sha256_bytes(content)
    folder = open_folder(store_uri)
    key = _dataset_key(digest)
    if key not in set(folder.list_keys(DATASETS_DIR + "/")):
        folder.write(key, content)
        log.info("kept training data %s (%d bytes) in %s", digest[:12], len(content), folder.uri)
    return f"{folder.uri}/{key}"


def read_kept_dataset(store_uri: str, sha256: str) -> bytes:
    """The bytes of a kept dataset, checked against their name."""
    folder = open_folder(store_uri)
    key = _dataset_key(sha256)
    if key not in set(folder.list_keys(DATASETS_DIR + "/")):
        raise RetrainingError(
            f"{folder.uri}/{key}: not in the store; the production version was published before "
            "training data was kept: publish a version with the training pipeline first"
        )
    content = folder.read(key)
    if dataset.sha256_bytes(content) != sha256:
        raise RetrainingError(f"{folder.uri}/{key}: its content does not match its sha256 name")
    return content


# --------------------------------------------------------------------------------------------
# The window a scheduled run judges


@dataclass(frozen=True)
class Window:
    since: str  # ISO-8601 UTC, inclusive
    until: str  # ISO-8601 UTC, exclusive
    objects: int  # request-log objects that may hold records of the window


def collect_window(
    requests_uri: str, *, window_hours: float, until: str = "", now: datetime | None = None
) -> Window:
    """The last ``window_hours`` before ``until`` (ISO-8601; "" = now), and its log objects."""
    if not window_hours > 0:
        raise RetrainingError(f"window_hours must be > 0; got {window_hours}")
    try:
        end = _parse_time(until.strip()) if until.strip() else (now or datetime.now(UTC))
    except ValueError as error:
        raise RetrainingError(f"until {until!r} is not an ISO-8601 time") from error
    end = end.astimezone(UTC)
    start = end - timedelta(hours=window_hours)
    objects = len(RequestLogReader(requests_uri, since=start, until=end).keys())
    log.info("window %s .. %s: %d request-log objects", start, end, objects)
    return Window(start.isoformat(), end.isoformat(), objects)


# --------------------------------------------------------------------------------------------
# When: the monitor's recommendation, held back by a cool-down


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reason: str
    production_version: str | None

    def to_markdown(self) -> str:
        verdict = "RETRAIN" if self.retrain else "no retraining"
        return f"# Retraining decision: {verdict}\n\n{self.reason}\n"


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def last_attempt_at(store_uri: str) -> datetime | None:
    """When the latest recorded retraining attempt started (None if there was none)."""
    folder = open_folder(store_uri)
    keys = [k for k in folder.list_keys(ATTEMPTS_DIR + "/") if k.endswith(".json")]
    if not keys:
        return None
    return _parse_time(json.loads(folder.read(keys[-1]))["started_at"])


def decide_retraining(
    summary: Mapping[str, Any],
    *,
    store_uri: str,
    cooldown_hours: float = DEFAULT_COOLDOWN_HOURS,
    now: datetime | None = None,
) -> RetrainDecision:
    """Retrain when the monitor says so, unless production was promoted, or a retraining was
    attempted, less than ``cooldown_hours`` ago."""
    if cooldown_hours < 0:
        raise RetrainingError(f"cooldown_hours must be >= 0; got {cooldown_hours}")
    now = now or datetime.now(UTC)
    pointer = open_store(store_uri).production()
    version = pointer.version if pointer else None
    recommendation = summary.get("recommendation")
    reasons = "; ".join(summary.get("reasons") or [])
    if recommendation != "retrain":
        return RetrainDecision(False, f"monitor: {recommendation} ({reasons})", version)
    cooldown = timedelta(hours=cooldown_hours)
    recent = []
    if pointer is not None:
        recent.append((_parse_time(pointer.promoted_at), f"production {version} was promoted"))
    attempted = last_attempt_at(store_uri)
    if attempted is not None:
        recent.append((attempted, "the last retraining attempt started"))
    for moment, what in sorted(recent, reverse=True):
        if now - moment < cooldown:
            return RetrainDecision(
                False,
                f"cool-down: {what} at {moment:%Y-%m-%dT%H:%M:%SZ}, less than "
                f"{cooldown_hours:g} h ago; not retraining before "
                f"{moment + cooldown:%Y-%m-%dT%H:%M:%SZ} (monitor: {reasons})",
                version,
            )
    return RetrainDecision(True, f"monitor recommends retraining: {reasons}", version)


def record_attempt(
    store_uri: str, attempt: Mapping[str, Any], *, now: datetime | None = None
) -> str:
    """Append one retraining-attempt record (what the cool-down reads); returns its URI."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    document = {"started_at": moment.isoformat(timespec="seconds"), **attempt}
    tag = str(attempt.get("dataset_sha256", ""))[:12] or "attempt"
    key = f"{ATTEMPTS_DIR}/{moment:%Y%m%dT%H%M%S%fZ}-{tag}.json"
    folder = open_folder(store_uri)
    folder.write(key, (json.dumps(document, indent=2) + "\n").encode())
    return f"{folder.uri}/{key}"


# --------------------------------------------------------------------------------------------
# On what: the production model's training data plus the labelled production rows


@dataclass(frozen=True)
class AssembledDataset:
    sha256: str
    uri: str  # the merged raw CSV in the store: what the training pipeline ingests
    base_sha256: str  # the production version's training data
    base_rows: int
    added_rows: int  # labelled production rows new to this lineage
    added_positives: int
    rows: int
    production_version: str

    def describe(self) -> str:
        return (
            f"{self.rows} rows = {self.base_rows} rows {self.production_version} trained on "
            f"(sha256 {self.base_sha256[:12]}) + {self.added_rows} labelled production rows "
            f"({self.added_positives} strokes); sha256 {self.sha256[:12]}"
        )


def _raw_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "N/A"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _production_rows_as_raw(
    rows: pd.DataFrame, header: list[str], first_id: int, newline: str
) -> str:
    """Labelled rows in the raw file's column order and spelling (bmi "N/A"), fresh ids."""
    lines = []
    for offset, (_, row) in enumerate(rows.iterrows()):
        values = {**row.to_dict(), schema.ID_COLUMN: first_id + offset}
        lines.append(",".join(_raw_value(values[name]) for name in header))
    return "".join(line + newline for line in lines)


def assemble_training_data(
    store_uri: str, requests_uri: str, *, until: datetime | None = None
) -> AssembledDataset:
    """Merge the production version's training CSV with the labelled production rows logged
    before ``until``; keep the result (and its lineage) in the store by sha256."""
    store = open_store(store_uri)
    pointer = store.production()
    if pointer is None:
        raise RetrainingError(f"{store.uri}: no production model; train one before retraining")
    with tempfile.TemporaryDirectory(prefix="retrain-") as scratch:
        local = store.download_version(pointer.version, Path(scratch) / "version")
        fingerprint = verify_model_dir(local).metadata.get("fingerprint") or {}
    base_sha = str(fingerprint.get("raw_sha256") or "")
    if not base_sha:
        raise RetrainingError(f"{pointer.uri}: metadata has no fingerprint.raw_sha256")
    base = read_kept_dataset(store_uri, base_sha)
    folder = open_folder(store_uri)
    lineage_key = _dataset_key(base_sha, ".json")
    already: set[str] = set()
    if lineage_key in set(folder.list_keys(DATASETS_DIR + "/")):
        already = set(json.loads(folder.read(lineage_key))["request_ids"])

    labelled = labelled_requests(store_uri, requests_uri, None, until)
    labelled = labelled[~labelled[REQUEST_ID_COLUMN].isin(already)]
    labelled = labelled.sort_values(REQUEST_ID_COLUMN, kind="stable").reset_index(drop=True)

    text = base.decode("utf-8-sig")
    newline = "\r\n" if "\r\n" in text else "\n"
    header = [c.strip() for c in text.splitlines()[0].split(",")]
    if sorted(header) != sorted(schema.RAW_COLUMNS):
        raise RetrainingError(f"training data {base_sha[:12]}: unexpected columns {header}")
    base_frame = dataset.read_raw_patients(base, source=f"dataset {base_sha[:12]}")
    first_id = int(pd.to_numeric(base_frame[schema.ID_COLUMN]).max()) + 1
    merged = base if base.endswith(newline.encode()) else base + newline.encode()
    merged += _production_rows_as_raw(labelled, header, first_id, newline).encode()
    merged_sha = dataset.sha256_bytes(merged)
    uri = keep_dataset(store_uri, merged)
    added_ids = sorted(already | set(labelled[REQUEST_ID_COLUMN]))
    lineage = {
        "base_sha256": base_sha,
        "production_version": pointer.version,
        "base_rows": len(base_frame),
        "added_rows": len(labelled),
        "request_ids": added_ids,
    }
    folder.write(_dataset_key(merged_sha, ".json"), json.dumps(lineage, indent=1).encode())
    assembled = AssembledDataset(
        sha256=merged_sha,
        uri=uri,
        base_sha256=base_sha,
        base_rows=len(base_frame),
        added_rows=len(labelled),
        added_positives=int(labelled[schema.TARGET_COLUMN].sum()),
        rows=len(base_frame) + len(labelled),
        production_version=pointer.version,
    )
    log.info("retraining data: %s", assembled.describe())
    return assembled


def attempt_record(assembled: AssembledDataset, summary: Mapping[str, Any]) -> dict[str, Any]:
    """What a retraining attempt records: the data it trains on and why it started."""
    return {
        **asdict(assembled),
        "monitor": {
            key: summary.get(key)
            for key in ("model_version", "since", "until", "rows", "recommendation", "reasons")
        },
    }
