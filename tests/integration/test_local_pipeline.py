"""The whole pipeline under kfp.local on the real data, against a folder and an S3 store.

Each run takes tens of seconds, so runs are shared between tests through module fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipelines.local_runner import LocalRunSummary, run_locally
from stroke_mlops.cli import main
from stroke_mlops.data import dataset
from stroke_mlops.monitoring.reference import read_reference
from stroke_mlops.registry import model_dir
from stroke_mlops.registry.store import open_store
from stroke_mlops.training.promotion_gate import GateThresholds
from tests.s3_server import FaultProxy, S3Bucket

pytestmark = pytest.mark.integration

ALL_STEPS = [
    "ingest",
    "validate-data",
    "enforce-contract",
    "preprocess",
    "train",
    "evaluate",
    "gate",
    "publish",
    "infra-validate",
    "promote",
    "deploy",
]


def _statuses(summary: LocalRunSummary) -> dict[str, str]:
    return {step.name: step.status for step in summary.steps}


@pytest.fixture(scope="module")
def folder_run(
    real_csv_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[LocalRunSummary, Path]:
    root = tmp_path_factory.mktemp("folder-run")
    store = root / "store"
    summary = run_locally(
        data_uri=str(real_csv_path), store_uri=str(store), pipeline_root=str(root / "outputs")
    )
    return summary, store


def test_folder_store_run_publishes_and_promotes(
    folder_run: tuple[LocalRunSummary, Path], real_csv_bytes: bytes, tmp_path: Path
) -> None:
    summary, store_root = folder_run
    assert summary.succeeded, summary.render()
    assert _statuses(summary) == dict.fromkeys(ALL_STEPS, "SUCCESS")
    store = open_store(str(store_root))
    pointer = store.production()
    assert pointer is not None
    assert pointer.version == summary.outputs["published"]
    verified = model_dir.verify_model_dir(store.download_version(pointer.version, tmp_path / "m"))
    metadata = verified.metadata
    assert metadata["fingerprint"]["raw_sha256"] == dataset.sha256_bytes(real_csv_bytes)
    assert metadata["threshold"] == pytest.approx(summary.outputs["evaluation"]["threshold"])
    assert set(metadata["files"]) == {
        "model.skops",
        "signature.json",
        "model_card.md",
        "reference.csv",
    }
    # The monitor's reference set: the held-out test split, scored by the published model.
    reference = read_reference(verified.directory / "reference.csv")
    assert len(reference) == metadata["fingerprint"]["parts"]["test"]["rows"]
    assert metadata["monitoring"]["reference_rows"] == len(reference)
    assert reference["score"].between(0, 1).all()
    assert "scikit-learn" in metadata["library_versions"]
    # deploy emitted the KServe objects for exactly this version, and said it did not apply them.
    assert summary.outputs["deploy"].startswith("emitted, not applied")
    manifests = list(yaml.safe_load_all(Path(summary.outputs["manifests"]).read_text()))
    service = next(m for m in manifests if m and m["kind"] == "InferenceService")
    assert service["spec"]["predictor"]["model"]["storageUri"] == pointer.uri
    # The gate blessed it on the repeated-CV lower bounds (defaults).
    cv = summary.outputs["evaluation"]["cross_validated"]
    thresholds = GateThresholds()
    assert cv["intervals"]["recall"]["low"] >= thresholds.min_recall
    assert cv["intervals"]["roc_auc"]["low"] >= thresholds.min_roc_auc
    assert summary.outputs["gate"].startswith("blessed: ok: CV recall")
    assert metadata["metrics"]["cross_validated"] == cv


def test_folder_run_leaves_kfp_ui_artifacts(folder_run: tuple[LocalRunSummary, Path]) -> None:
    summary, _ = folder_run
    assert summary.artifacts_dir is not None
    report = (summary.artifacts_dir / "validate-data" / "report").read_text()
    assert report.lstrip().lower().startswith("<!doctype html")
    card = (summary.artifacts_dir / "publish" / "model_card").read_text()
    assert "Model card" in card and "Held-out test set" in card
    outputs = json.loads((summary.artifacts_dir / "evaluate" / "executor_output.json").read_text())
    classification = outputs["artifacts"]["classification"]["artifacts"][0]["metadata"]
    matrix = [row["row"] for row in classification["confusionMatrix"]["rows"]]
    assert matrix == summary.outputs["evaluation"]["confusion_matrix"]
    assert len(classification["confidenceMetrics"]) > 20  # the ROC curve the UI draws
    metrics = outputs["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metrics["test_recall"] == pytest.approx(summary.outputs["evaluation"]["test"]["recall"])


def test_contract_failure_stops_before_training_and_shows_its_own_error(
    real_csv_bytes: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = real_csv_bytes.decode("utf-8-sig").split("\r\n")
    row = next(i for i, line in enumerate(lines) if ",Private," in line)
    lines[row] = lines[row].replace(",Private,", ",Pirate,")
    broken = tmp_path / "broken.csv"
    broken.write_text("\r\n".join(lines))
    summary_json = tmp_path / "summary.json"
    exit_code = main(
        [
            "run",
            "--data",
            str(broken),
            "--store",
            str(tmp_path / "store"),
            "--pipeline-root",
            str(tmp_path / "outputs"),
            "--summary-json",
            str(summary_json),
        ]
    )
    printed = capsys.readouterr().out
    assert exit_code == 1
    summary = json.loads(summary_json.read_text())
    statuses = {step["name"]: step["status"] for step in summary["steps"]}
    assert statuses["enforce-contract"] == "FAILURE"
    assert "train" not in statuses
    # One line per step event, then the failed step's own error and the tail of its log; none
    # of kfp.local's executor output, which is in the run folder's kfp.log.
    run_dir = Path(summary["run_dir"])
    assert len(printed.splitlines()) < 40, printed
    assert "  enforce-contract FAILURE" in printed
    assert "Step enforce-contract FAILURE: " in printed
    assert "DataContractError: the data contract failed:" in printed
    assert "work_type: expected one of" in printed and "'Pirate' (line" in printed
    assert f"last lines of {run_dir}/logs/enforce-contract.log" in printed
    assert "executorInput" not in printed and "Streamed logs" not in printed
    assert "Executing task" in (run_dir / "kfp.log").read_text()
    assert not (tmp_path / "store" / "stroke").exists()
    artifacts = next(run_dir.glob("stroke-mlops-*"))
    assert "Pirate" in (artifacts / "validate-data" / "report").read_text()


def test_s3_store_run_then_failure_mid_publish_keeps_production(
    s3_bucket: S3Bucket, fault_proxy: FaultProxy, real_csv_bytes: bytes, tmp_path: Path
) -> None:
    data_uri = s3_bucket.put("data/healthcare-dataset-stroke-data.csv", real_csv_bytes)
    store_uri = s3_bucket.uri("models")
    first = run_locally(
        data_uri=data_uri,
        store_uri=store_uri,
        pipeline_root=str(tmp_path / "outputs"),
    )
    assert first.succeeded, first.render()
    pointer_key = "models/stroke/production.json"
    production_before = s3_bucket.read(pointer_key)
    assert json.loads(production_before)["version"] == first.outputs["published"]
    champion_files = s3_bucket.snapshot(f"models/stroke/versions/{first.outputs['published']}/")
    assert {key.rsplit("/", 1)[-1] for key in champion_files} == {
        "model.skops",
        "signature.json",
        "model_card.md",
        "reference.csv",
        "metadata.json",
        "model.sig",
    }

    # The store fails while the second run uploads its model's metadata: the run must fail and
    # production must be exactly as it was.
    fault_proxy.fail("PUT", "/metadata.json")
    second = run_locally(
        data_uri=data_uri,
        store_uri=store_uri,
        pipeline_root=str(tmp_path / "outputs"),
    )
    assert not second.succeeded
    statuses = _statuses(second)
    assert statuses["gate"] == "SUCCESS"  # the gate read the champion through the proxy
    assert statuses["publish"] == "FAILURE"
    assert "promote" not in statuses and "infra-validate" not in statuses
    fault_proxy.clear()
    assert s3_bucket.read(pointer_key) == production_before
    assert (
        s3_bucket.snapshot(f"models/stroke/versions/{first.outputs['published']}/")
        == champion_files
    )


def test_gate_refusal_skips_publish(real_csv_path: Path, tmp_path: Path) -> None:
    summary = run_locally(
        data_uri=str(real_csv_path),
        store_uri=str(tmp_path / "store"),
        pipeline_root=str(tmp_path / "outputs"),
        arguments={"min_recall": 0.99},
    )
    assert summary.succeeded  # refusing a model is a decision, not a failure
    assert "publish" not in _statuses(summary)
    assert "min_recall 0.990" in summary.outputs["gate"]
    # The refused candidate still has its model card in the UI, from evaluate.
    assert summary.artifacts_dir is not None
    card = (summary.artifacts_dir / "evaluate" / "model_card").read_text()
    assert "candidate (not yet published)" in card and "Held-out test set" in card
    assert open_store(str(tmp_path / "store")).production() is None
