"""The pipeline's steps as plain functions over files: what each KFP component calls.

Each function takes input paths and parameters, writes its outputs to the paths it is given,
and returns what the component reports as metadata or outputs. Nothing here imports KFP, so
every step is tested and run without it.
"""

from __future__ import annotations

import html
import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stroke_mlops.data import dataset, schema
from stroke_mlops.registry import model_dir, signature, signing
from stroke_mlops.training import promotion_gate

if TYPE_CHECKING:
    from stroke_mlops.training import evaluate

# Each step runs in a process of its own: ``train`` (scikit-learn, XGBoost) is imported by the
# step that trains, and ``evaluate`` loads those libraries only where it computes.

log = logging.getLogger(__name__)

MODEL_FILE = model_dir.MODEL_FILE
TRAINING_SUMMARY_FILE = "training.json"
OOF_SCORES_FILE = "oof_scores.npy"


def ingest_raw_data(data_uri: str, raw_path: Path) -> dict[str, Any]:
    """Copy the raw CSV from a path, ``s3://`` (MinIO) or ``https://`` URI, byte for byte."""
    from stroke_mlops.registry.store import read_uri_bytes

    raw = read_uri_bytes(data_uri)
    raw_path.write_bytes(raw)
    digest = dataset.sha256_bytes(raw)
    log.info("ingested %s: %d bytes, sha256 %s", data_uri, len(raw), digest[:12])
    return {"source": data_uri, "bytes": len(raw), "sha256": digest}


def validate_raw_data(raw_path: Path, report_path: Path) -> tuple[bool, str, dict[str, Any]]:
    """Run the data contract; write the HTML report; return (passed, failures text, stats).

    An unreadable file is a failed contract with its one-line reason, not an exception, so the
    report is written either way.
    """
    from stroke_mlops.data import contract

    try:
        report = contract.validate_csv_bytes(raw_path.read_bytes(), source=raw_path.name)
    except dataset.RawDataError as error:
        report_path.write_text(_unreadable_report_html(str(error)))
        return False, str(error), {}
    report_path.write_text(report.to_html())
    return report.success, ("" if report.success else report.to_text()), dict(report.statistics)


def _unreadable_report_html(reason: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Data contract: unreadable"
        "</title></head><body style='font-family:sans-serif'><h1 style='color:#b00020'>"
        "Data contract FAILED</h1><p>The file could not be read as CSV:</p>"
        f"<pre>{html.escape(reason)}</pre></body></html>"
    )


def clean_and_split(
    raw_path: Path,
    *,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    train_path: Path,
    validation_path: Path,
    test_path: Path,
) -> dict[str, Any]:
    """Clean and split; write the parts as CSV; return the dataset fingerprint."""
    raw = raw_path.read_bytes()
    patients = dataset.clean_patients(
        dataset.read_raw_patients(raw, source=raw_path.name), keep_id=True
    )
    split = dataset.split_patients(
        patients,
        seed=seed,
        fractions=dataset.SplitFractions(validation=validation_fraction, test=test_fraction),
    )
    for part, path in (
        (split.train, train_path),
        (split.validation, validation_path),
        (split.test, test_path),
    ):
        write_part(part, path)
    fingerprint = dataset.fingerprint_split(raw, split, seed=seed)
    log.info("split: %s", json.dumps(fingerprint["parts"]))
    return fingerprint


def write_part(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, index=False)


def read_part(path: Path) -> pd.DataFrame:
    """Read a split written by write_part, with the cleaned dtypes (bmi may be missing)."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return dataset.clean_patients(frame, keep_id=schema.ID_COLUMN in frame)


def read_development(train_path: Path, validation_path: Path) -> pd.DataFrame:
    """Train + validation: the rows the model is searched, fitted and thresholded on."""
    return pd.concat([read_part(train_path), read_part(validation_path)], ignore_index=True)


def train_model(
    train_path: Path,
    validation_path: Path,
    model_path: Path,
    *,
    seed: int,
    precision_floor: float,
) -> dict[str, Any]:
    """Search, select and fit on train + validation; write the model, OOF scores, summary."""
    from stroke_mlops.training import train

    frame = read_development(train_path, validation_path)
    features, target = dataset.features_and_target(frame)
    result = train.train_candidates(features, target, seed=seed, precision_floor=precision_floor)
    model_path.mkdir(parents=True, exist_ok=True)
    model_dir.save_model(result.model, model_path / MODEL_FILE)
    np.save(model_path / OOF_SCORES_FILE, result.oof_scores)
    summary = result.summary()
    (model_path / TRAINING_SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
    return summary


def candidate_model_card(
    model_path: Path, evaluation_path: Path, fingerprint: dict[str, Any]
) -> str:
    """The model card of the candidate before the gate (publish writes the versioned one)."""
    from stroke_mlops.training import evaluate

    _, _, summary = load_trained(model_path)
    return evaluate.render_model_card(
        evaluate.Evaluation.from_json(evaluation_path.read_text()),
        version="candidate (not yet published)",
        selected=summary["selected"],
        training_summary=summary,
        fingerprint=fingerprint,
    )


def load_trained(model_path: Path) -> tuple[Any, np.ndarray, dict[str, Any]]:
    model = model_dir.load_model_file(model_path / MODEL_FILE)
    oof = np.load(model_path / OOF_SCORES_FILE)
    summary = json.loads((model_path / TRAINING_SUMMARY_FILE).read_text())
    return model, oof, summary


def evaluate_candidate(
    model_path: Path,
    *,
    train_path: Path,
    validation_path: Path,
    test_path: Path,
    config: evaluate.EvaluationConfig,
    evaluation_path: Path,
) -> evaluate.Evaluation:
    """Threshold from out-of-fold development scores, metrics on the untouched test set."""
    from stroke_mlops.training import evaluate

    model, oof, _ = load_trained(model_path)
    result = evaluate.evaluate_model(
        model,
        development=read_development(train_path, validation_path),
        oof_scores=oof,
        test=read_part(test_path),
        config=config,
    )
    evaluation_path.write_text(result.to_json())
    t = result.test
    log.info(
        "test: recall %.3f precision %.3f ROC AUC %.3f PR AUC %.3f at threshold %.4f",
        t["recall"],
        t["precision"],
        t["roc_auc"],
        t["pr_auc"],
        result.threshold,
    )
    return result


def compare_champion(
    store_uri: str, model_path: Path, evaluation: evaluate.Evaluation, test: pd.DataFrame
) -> promotion_gate.ChampionComparison | None:
    """The production model against the challenger on this test set (None: no production)."""
    from stroke_mlops.registry.store import open_store
    from stroke_mlops.training import evaluate

    store = open_store(store_uri)
    pointer = store.production()
    if pointer is None:
        return None
    challenger, _, _ = load_trained(model_path)
    with tempfile.TemporaryDirectory(prefix="champion-") as scratch:
        local = store.download_version(pointer.version, Path(scratch) / "model")
        verified = model_dir.open_signed_model_dir(local, signing.public_key_from_env())
        fingerprint = verified.metadata.get("fingerprint") or {}
        return evaluate.compare_with_champion(
            verified.load_model(),
            version=pointer.version,
            threshold=verified.threshold,
            training_rows=fingerprint.get("training_rows"),
            challenger=challenger,
            test=test,
            config=evaluate.EvaluationConfig(**evaluation.config),
        )


def gate_candidate(
    evaluation_path: Path,
    test_path: Path,
    model_path: Path,
    *,
    store_uri: str,
    thresholds: promotion_gate.GateThresholds,
) -> promotion_gate.GateDecision:
    """Apply the thresholds and, when production has a model, the champion comparison.

    The decision names the production version it was judged against (None: nothing was in
    production); promote refuses to move the pointer unless production is still that version.
    """
    from stroke_mlops.training import evaluate

    result = evaluate.Evaluation.from_json(evaluation_path.read_text())
    evidence = promotion_gate.ChallengerEvidence.from_evaluation(
        result.cross_validated, result.test, result.intervals, result.threshold_choice
    )
    champion = (
        compare_champion(store_uri, model_path, result, read_part(test_path)) if store_uri else None
    )
    decision = promotion_gate.decide_promotion(evidence, thresholds, champion)
    log.info("gate: %s", decision.message())
    return decision


def new_version(model_path: Path) -> str:
    """A sortable, unique version name: UTC time plus the model file's hash prefix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{model_dir.sha256_file(model_path / MODEL_FILE)[:8]}"


def build_model_dir(
    model_path: Path,
    *,
    evaluation_path: Path,
    fingerprint: dict[str, Any],
    train_path: Path,
    test_path: Path,
    gate_summary: str,
    version: str,
    destination: Path,
    signing_key: Path,
) -> dict[str, Any]:
    """Assemble the publishable model directory (model, signature, metadata, model card),
    signed with the private key ``signing_key``.

    The held-out test rows, scored by the final model, go beside it as the monitor's reference
    set (``reference.csv``): rows the model never trained on, so their scores are honest.
    """
    from stroke_mlops.monitoring import reference
    from stroke_mlops.training import evaluate

    model, _, summary = load_trained(model_path)
    reference_set = reference.build_reference_set(model, read_part(test_path))
    result = evaluate.Evaluation.from_json(evaluation_path.read_text())
    examples = signature.example_instances(read_part(train_path))
    card = evaluate.render_model_card(
        result,
        version=version,
        selected=summary["selected"],
        training_summary=summary,
        fingerprint=fingerprint,
        gate_summary=gate_summary,
    )
    return model_dir.write_model_dir(
        destination,
        model=model,
        signature=signature.build_signature(examples),
        model_card=card,
        metadata={
            "version": version,
            "model_name": schema.MODEL_NAME,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "threshold": result.threshold,
            "selected_model": summary["selected"],
            "metrics": {
                "cross_validated": result.cross_validated,
                "test": result.test,
                "intervals": result.intervals,
                "threshold_choice": result.threshold_choice,
            },
            "fingerprint": fingerprint,
            "evaluation_config": result.config,
            "monitoring": {
                "reference_file": reference.REFERENCE_FILE,
                "reference_rows": len(reference_set),
                "reference_source": "test split (held out from search, fit and threshold)",
            },
        },
        extra_files={reference.REFERENCE_FILE: reference.reference_csv_bytes(reference_set)},
        signing_key=signing_key,
    )


def publish_candidate(
    model_path: Path,
    *,
    evaluation_path: Path,
    fingerprint: dict[str, Any],
    train_path: Path,
    test_path: Path,
    gate_summary: str,
    store_uri: str,
    published_path: Path,
    raw_path: Path | None = None,
) -> tuple[str, str]:
    """Write the version to the store (immutable, verified); returns (version, version URI).

    With ``raw_path``, the raw CSV it was trained on is kept in the store under its sha256
    (``stroke/datasets/<sha256>.csv``, the fingerprint's ``raw_sha256``), so retraining can
    start from exactly that data. The production pointer does not move here: promote does that
    after infra-validation. The
    directory is signed with the private key named by $STROKE_MLOPS_SIGNING_KEY.
    """
    from stroke_mlops.monitoring.retraining import keep_dataset
    from stroke_mlops.registry.store import open_store

    signing_key = signing.private_key_from_env()
    if raw_path is not None:
        raw = raw_path.read_bytes()
        if dataset.sha256_bytes(raw) != fingerprint.get("raw_sha256"):
            raise ValueError(f"{raw_path}: its sha256 is not the fingerprint's raw_sha256")
        keep_dataset(store_uri, raw)
    version = new_version(model_path)
    build_model_dir(
        model_path,
        evaluation_path=evaluation_path,
        fingerprint=fingerprint,
        train_path=train_path,
        test_path=test_path,
        gate_summary=gate_summary,
        version=version,
        destination=published_path,
        signing_key=signing_key,
    )
    published = open_store(store_uri).publish_version(published_path, version)
    log.info("published %s to %s", version, published.uri)
    return version, published.uri


def promote_version(store_uri: str, version: str, *, judged_against: str | None) -> dict[str, Any]:
    """Move the production pointer to ``version`` if production is still ``judged_against``
    (the champion the gate compared it with; None: production was empty). One conditional
    write; otherwise PromotionConflictError is raised and production is unchanged."""
    from stroke_mlops.registry.store import open_store

    pointer = open_store(store_uri).promote(version, expected=judged_against)
    log.info("production is now %s", version)
    return asdict(pointer)


class DeployError(RuntimeError):
    """Applying the KServe objects inside a cluster failed; the message is the API server's."""


def deploy_version(
    model_uri: str,
    *,
    version: str,
    manifest_path: Path,
    api_client: Any = None,
) -> dict[str, Any]:
    """Emit the ServingRuntime and InferenceService YAML; apply the InferenceService in-cluster.

    The YAML is written every run (the artifact a person or GitOps applies). Outside a cluster
    the result says why nothing was applied; inside one (or with ``api_client``) a failed apply
    raises DeployError with the API server's (or KServe's admission webhook's) message, so the
    run fails instead of ending green with no model served.
    """
    from stroke_mlops.deploy import kserve_objects
    from stroke_mlops.image import project_image

    service = kserve_objects.build_inference_service(model_uri, model_version=version)
    runtime = kserve_objects.build_serving_runtime(project_image())
    manifest_path.write_text(kserve_objects.render_yaml([runtime, service]))
    # The ServingRuntime is installed with the manifests; the pipeline's RBAC covers only
    # InferenceServices, so that is all it applies.
    result = kserve_objects.apply_objects([service], api_client=api_client)
    if result.in_cluster and not result.applied:
        raise DeployError(f"deploy of {version} failed: {result.message}")
    log.info("deploy: %s", result.message)
    return {"applied": result.applied, "message": result.message, "actions": list(result.actions)}


class InfraValidationError(RuntimeError):
    """The candidate could not be served; it must not be promoted."""


def infra_validate_version(store_uri: str, version: str, report_path: Path) -> dict[str, Any]:
    """Serve the published version for real (as downloaded from the store) before promotion.

    Raises InfraValidationError, stopping the run before promote, when the model server cannot
    load it, answers wrongly, or accepts a malformed request.
    """
    from stroke_mlops.registry.store import open_store
    from stroke_mlops.serving.infra_validation import validate_model_server

    with tempfile.TemporaryDirectory(prefix="infra-validate-") as scratch:
        local = open_store(store_uri).download_version(version, Path(scratch) / "model")
        result = validate_model_server(local, public_key=signing.public_key_from_env())
    summary = result.summary()
    lines = [
        f"# Infra-validation of `{version}`: {'PASSED' if result.passed else 'FAILED'}",
        "",
        f"- server ready after {summary['startup_seconds']} s",
        *(f"- {name}: {ms} ms" for name, ms in summary["request_ms"].items()),
        *(f"- FAILED: {reason}" for reason in result.reasons),
    ]
    report_path.write_text("\n".join(lines) + "\n")
    log.info("infra-validation of %s: %s", version, "passed" if result.passed else "FAILED")
    if not result.passed:
        raise InfraValidationError(
            f"version {version} cannot be served; not promoting: " + "; ".join(result.reasons)
        )
    return {
        "passed": True,
        "startup_seconds": result.startup_seconds,
        "total_seconds": result.total_seconds,
    }


# --------------------------------------------------------------------------------------------
# The monitor-and-retrain loop


def collect_request_window(
    requests_uri: str, *, window_hours: float, until: str
) -> tuple[str, str, int]:
    """The window [until - window_hours, until) (until "" = now): since, until, log objects."""
    from stroke_mlops.monitoring.retraining import collect_window

    window = collect_window(requests_uri, window_hours=window_hours, until=until)
    return window.since, window.until, window.objects


@dataclass(frozen=True)
class WindowVerdict:
    """What the monitor step reports: KFP metrics, the summary's metadata, its outputs."""

    metrics: dict[str, float]
    metadata: dict[str, Any]
    recommendation: str
    drift_detected: bool


def monitor_request_window(
    store_uri: str,
    requests_uri: str,
    *,
    since: str,
    until: str,
    min_rows: int,
    summary_path: Path,
    report_path: Path,
    pushgateway_url: str = "",
) -> WindowVerdict:
    """Judge the window against the production version's reference set; writes the monitor's
    summary.json and HTML report to the given paths, and pushes its gauges to the Pushgateway
    at ``pushgateway_url`` when one is given (a failed push is logged; the verdict stands)."""
    import shutil

    from stroke_mlops.monitoring.monitor import REPORT_FILE, SUMMARY_FILE, run_monitor
    from stroke_mlops.monitoring.prometheus_push import PushError, push_summary

    with tempfile.TemporaryDirectory(prefix="monitor-") as scratch:
        result = run_monitor(
            store_uri,
            requests_uri,
            Path(scratch),
            since=datetime.fromisoformat(since),
            until=datetime.fromisoformat(until),
            min_rows=min_rows,
        )
        shutil.copyfile(Path(scratch) / SUMMARY_FILE, summary_path)
        shutil.copyfile(Path(scratch) / REPORT_FILE, report_path)
    if pushgateway_url:
        try:
            push_summary(result, pushgateway_url)
        except PushError as error:
            log.warning("monitor: metrics not pushed (the report is kept): %s", error)
    metrics: dict[str, float] = {
        "rows": result.rows,
        "drift_detected": int(result.drift_detected),
        "drifted_features": len(result.drifted_features),
    }
    for feature in result.features:
        if feature.verdict in ("drift", "no drift"):
            metrics[f"{feature.name}_adjusted_p"] = round(feature.adjusted_p_value, 6)
    return WindowVerdict(
        metrics=metrics,
        metadata={
            "model_version": result.model_version,
            "recommendation": result.recommendation,
            "drifted_features": result.drifted_features,
            "reasons": result.reasons,
        },
        recommendation=result.recommendation,
        drift_detected=result.drift_detected,
    )


def decide_on_retraining(
    summary_path: Path, *, store_uri: str, cooldown_hours: float, decision_path: Path
) -> tuple[bool, dict[str, Any]]:
    """Retrain when the monitor recommends it and no cool-down holds it back; writes the
    decision's Markdown. Returns (retrain, metadata)."""
    from stroke_mlops.monitoring.retraining import decide_retraining

    result = decide_retraining(
        json.loads(summary_path.read_text()), store_uri=store_uri, cooldown_hours=cooldown_hours
    )
    decision_path.write_text(result.to_markdown())
    return result.retrain, {"retrain": result.retrain, "reason": result.reason}


def assemble_retraining_data(
    summary_path: Path, *, store_uri: str, requests_uri: str, until: str, data_path: Path
) -> tuple[str, dict[str, Any]]:
    """Production's training CSV + labelled production rows, kept in the store by sha256,
    written to ``data_path``; records the attempt (the cool-down counts from it).
    Returns (the kept data's URI, its metadata)."""
    from stroke_mlops.monitoring import retraining

    assembled = retraining.assemble_training_data(
        store_uri, requests_uri, until=datetime.fromisoformat(until)
    )
    attempt = retraining.attempt_record(assembled, json.loads(summary_path.read_text()))
    retraining.record_attempt(store_uri, attempt)
    data_path.write_bytes(retraining.read_kept_dataset(store_uri, assembled.sha256))
    return assembled.uri, asdict(assembled)
