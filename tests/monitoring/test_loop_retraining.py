"""The loop's library: kept datasets, the retraining decision and its cool-down, the merged
training set (real predictor logs + feedback), and the window a scheduled run judges."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from stroke_mlops.data import dataset, schema
from stroke_mlops.monitoring import retraining
from stroke_mlops.monitoring.feedback import record_feedback
from stroke_mlops.registry import signature, signing
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.registry.store import LocalModelStore
from tests.monitoring.conftest import MonitoredStore, ServeRows
from tests.serving.model_dirs import fit_pipeline

RETRAIN = {"recommendation": "retrain", "reasons": ["avg_glucose_level: drift"]}


def _publish(
    store: LocalModelStore, version: str, raw_sha256: str, scratch: Path, rows: pd.DataFrame
) -> None:
    """Publish and promote a small model whose fingerprint names ``raw_sha256``."""
    model = fit_pipeline(rows, LogisticRegression(max_iter=500))
    built = scratch / version
    write_model_dir(
        built,
        model=model,
        signature=signature.build_signature(signature.example_instances(rows)),
        model_card="# loop test\n",
        metadata={
            "version": version,
            "threshold": 0.5,
            "model_name": schema.MODEL_NAME,
            "fingerprint": {"raw_sha256": raw_sha256},
        },
        signing_key=signing.private_key_from_env(),
    )
    store.publish_version(built, version)
    store.promote(version)


@pytest.fixture
def production_store(
    tmp_path: Path, real_csv_bytes: bytes, real_patients: pd.DataFrame
) -> LocalModelStore:
    """A folder store: production trained on the real CSV, which is kept by its sha256."""
    store = LocalModelStore(tmp_path / "store")
    retraining.keep_dataset(str(store.root), real_csv_bytes)
    _publish(store, "v1", dataset.sha256_bytes(real_csv_bytes), tmp_path, real_patients.head(400))
    return store


def test_a_kept_dataset_is_named_by_its_sha256_and_checked_on_read(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    content = b"id,stroke\r\n1,0\r\n"
    digest = dataset.sha256_bytes(content)
    uri = retraining.keep_dataset(store, content)
    assert uri.endswith(f"stroke/datasets/{digest}.csv")
    assert retraining.keep_dataset(store, content) == uri  # idempotent
    assert retraining.read_kept_dataset(store, digest) == content
    (tmp_path / "store" / "stroke" / "datasets" / f"{digest}.csv").write_bytes(b"tampered")
    with pytest.raises(retraining.RetrainingError, match="does not match its sha256"):
        retraining.read_kept_dataset(store, digest)
    with pytest.raises(retraining.RetrainingError, match="not in the store"):
        retraining.read_kept_dataset(store, "0" * 64)


def test_only_a_retrain_recommendation_outside_the_cool_down_retrains(
    production_store: LocalModelStore,
) -> None:
    store = str(production_store.root)
    promoted = datetime.fromisoformat(production_store.production().promoted_at)  # type: ignore[union-attr]
    later = promoted + timedelta(hours=25)
    for recommendation in ("none", "insufficient_data"):
        decision = retraining.decide_retraining(
            {"recommendation": recommendation, "reasons": ["x"]}, store_uri=store, now=later
        )
        assert not decision.retrain and decision.reason.startswith(f"monitor: {recommendation}")
    soon = retraining.decide_retraining(RETRAIN, store_uri=store, now=promoted + timedelta(hours=1))
    assert not soon.retrain
    assert "cool-down: production v1 was promoted" in soon.reason
    assert retraining.decide_retraining(RETRAIN, store_uri=store, now=later).retrain
    # An attempt (whatever its outcome) starts the cool-down again.
    retraining.record_attempt(store, {"dataset_sha256": "ab" * 32}, now=later)
    again = retraining.decide_retraining(RETRAIN, store_uri=store, now=later + timedelta(hours=2))
    assert not again.retrain and "the last retraining attempt started" in again.reason
    assert retraining.decide_retraining(
        RETRAIN, store_uri=store, now=later + timedelta(hours=2), cooldown_hours=1
    ).retrain


def test_the_training_set_is_the_kept_data_plus_labelled_production_rows(
    production_store: LocalModelStore,
    monitored_store: MonitoredStore,
    serve_rows: ServeRows,
    real_csv_bytes: bytes,
    tmp_path: Path,
) -> None:
    from stroke_mlops.data import contract

    store = str(production_store.root)
    logs = str(tmp_path / "logs")
    rows = monitored_store.window_pool.head(30).reset_index(drop=True)
    rows.loc[0, "bmi"] = float("nan")
    ids = serve_rows(rows, logs, prefix="req")
    labels = rows[schema.TARGET_COLUMN].astype(int).tolist()
    record_feedback(store, list(zip(ids[:20], labels[:20], strict=True)))

    assembled = retraining.assemble_training_data(store, logs)
    merged = retraining.read_kept_dataset(store, assembled.sha256)
    assert merged.startswith(real_csv_bytes)  # the base file, byte for byte, then the new rows
    assert (assembled.base_rows, assembled.added_rows) == (5110, 20)
    assert assembled.added_positives == sum(labels[:20])
    frame = dataset.read_raw_patients(merged)
    assert len(frame) == 5130 and frame[schema.ID_COLUMN].is_unique
    added = dataset.clean_patients(frame.tail(20)).reset_index(drop=True)
    order = sorted(range(20), key=lambda i: ids[i])  # added in request-id order
    expected = rows.iloc[order].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        added[list(schema.FEATURE_COLUMNS)],
        expected[list(schema.FEATURE_COLUMNS)],
        check_dtype=False,
    )
    assert added[schema.TARGET_COLUMN].tolist() == [labels[i] for i in order]
    assert contract.validate_csv_bytes(merged, source="merged").success
    # Spelled as the distributed file spells it: missing bmi is "N/A", lines end in CRLF.
    base_text, merged_text = real_csv_bytes.decode("utf-8-sig"), merged.decode("utf-8-sig")
    missing_bmi = int(expected["bmi"].isna().sum())
    assert missing_bmi >= 1
    assert merged_text.count(",N/A,") == base_text.count(",N/A,") + missing_bmi
    ended = base_text.endswith("\r\n")
    assert merged_text.count("\r\n") == base_text.count("\r\n") + 20 + (0 if ended else 1)

    # A model trained on the merged set is production now: its rows are not added twice, and
    # outcomes that arrived since are.
    _publish(production_store, "v2", assembled.sha256, tmp_path, monitored_store.window_pool)
    record_feedback(store, list(zip(ids[20:], labels[20:], strict=True)))
    second = retraining.assemble_training_data(store, logs)
    assert (second.base_sha256, second.base_rows, second.added_rows) == (assembled.sha256, 5130, 10)
    lineage = json.loads(
        (production_store.root / "stroke" / "datasets" / f"{second.sha256}.json").read_text()
    )
    assert sorted(lineage["request_ids"]) == sorted(ids)


def test_retraining_needs_the_production_training_data_in_the_store(tmp_path: Path) -> None:
    store = LocalModelStore(tmp_path / "store")
    with pytest.raises(retraining.RetrainingError, match="no production model"):
        retraining.assemble_training_data(str(store.root), str(tmp_path / "logs"))


def test_the_window_ends_at_until_or_now(tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "request-logs" / "dt=2026-01-02"
    logs.mkdir(parents=True)
    (logs / "000000-1-1.jsonl").write_text("{}\n")
    window = retraining.collect_window(
        str(tmp_path / "logs"), window_hours=6, until="2026-01-02T12:00:00Z"
    )
    assert (window.since, window.until) == (
        "2026-01-02T06:00:00+00:00",
        "2026-01-02T12:00:00+00:00",
    )
    assert window.objects == 1
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert retraining.collect_window(str(tmp_path / "logs"), window_hours=1, now=now).objects == 0
    with pytest.raises(retraining.RetrainingError, match="window_hours must be > 0"):
        retraining.collect_window(str(tmp_path / "logs"), window_hours=0)
    with pytest.raises(retraining.RetrainingError, match="not an ISO-8601 time"):
        retraining.collect_window(str(tmp_path / "logs"), window_hours=1, until="yesterday")
