"""`stroke-mlops models list|show|rollback` on the folder store and on S3 (moto on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from stroke_mlops.cli import main
from stroke_mlops.data import schema
from stroke_mlops.registry import signature, signing
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.registry.store import open_store
from tests.s3_server import S3Bucket

VERSIONS = ("20260101T000000Z-aaaa1111", "20260201T000000Z-bbbb2222", "20260301T000000Z-cccc3333")


@pytest.fixture(params=["folder", "s3"])
def store_uri(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    small_model: Pipeline,
    small_patients: pd.DataFrame,
) -> str:
    """A store holding three versions, the last one in production (promoted in order)."""
    if request.param == "folder":
        uri = str(tmp_path / "store")
    else:
        bucket: S3Bucket = request.getfixturevalue("s3_bucket")
        uri = bucket.uri("models")
    store = open_store(uri)
    for index, version in enumerate(VERSIONS):
        directory = tmp_path / "built" / version
        write_model_dir(
            directory,
            model=small_model,
            signature=signature.build_signature(signature.example_instances(small_patients)),
            model_card=f"# stroke {version}\n\n## Gate\nBLESSED: recall 0.8{index} >= 0.75\n",
            metadata={
                "version": version,
                "threshold": 0.1 + index / 100,
                "model_name": schema.MODEL_NAME,
                "selected_model": "soft_vote",
                "created_at": f"2026-0{index + 1}-01T00:00:00+00:00",
                "metrics": {"test": {"recall": 0.80 + index / 100, "precision": 0.16,
                                     "roc_auc": 0.84, "pr_auc": 0.2}},
            },
            signing_key=signing.private_key_from_env(),
        )  # fmt: skip
        store.publish_version(directory, version)
        store.promote(version)
    return uri


def test_list_shows_every_version_its_metrics_gate_and_production(
    store_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "list", "--store", store_uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "VERSION", "MODEL", "RECALL", "PRECISION", "ROC_AUC", "THRESHOLD", "GATE",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:]] == [VERSIONS[0], VERSIONS[1], "*"]
    assert lines[3].split()[1:5] == [VERSIONS[2], "soft_vote", "0.820", "0.160"]
    assert lines[3].endswith("BLESSED: recall 0.82 >= 0.75")


def test_show_one_version(store_uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "show", VERSIONS[0], "--store", store_uri, "--card"]) == 0
    out = capsys.readouterr().out
    assert f"version:     {VERSIONS[0]}\n" in out  # not production
    assert "test recall: 0.8000" in out
    assert "gate:        BLESSED: recall 0.80 >= 0.75" in out
    assert f"# stroke {VERSIONS[0]}" in out  # the model card


def test_rollback_moves_production_back_in_one_pointer_write(
    store_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["models", "rollback", VERSIONS[0], "--store", store_uri]) == 0
    out = capsys.readouterr().out
    pointer = open_store(store_uri).production()
    assert pointer is not None
    assert (pointer.version, pointer.previous) == (VERSIONS[0], VERSIONS[2])
    assert f"production: {VERSIONS[2]} -> {VERSIONS[0]}" in out
    assert "not redeployed (not inside a cluster)" in out
    assert f"stroke-mlops deploy --model-uri {pointer.uri}" in out


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        (VERSIONS[2], "is already in production"),
        ("20270101T000000Z-dddd4444", "no complete version"),
    ],
)
def test_rollback_refuses_what_is_not_an_earlier_version(
    store_uri: str, version: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "rollback", version, "--store", store_uri]) == 2
    assert reason in capsys.readouterr().err
    pointer = open_store(store_uri).production()
    assert pointer is not None and pointer.version == VERSIONS[2]  # unchanged


def test_rollback_refuses_a_newer_version(
    store_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "rollback", VERSIONS[0], "--store", store_uri]) == 0
    assert main(["models", "rollback", VERSIONS[1], "--store", store_uri]) == 2
    assert "is newer than production" in capsys.readouterr().err


def test_rollback_inside_a_cluster_redeploys_and_fails_loudly_when_it_cannot(
    store_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")  # a pod without a token
    assert main(["models", "rollback", VERSIONS[1], "--store", store_uri]) == 1
    assert "not applied: in-cluster configuration did not load" in capsys.readouterr().err


def _break_pointer(store_uri: str, content: bytes) -> None:
    store = open_store(store_uri)
    if store_uri.startswith("s3://"):
        store._put(store._key("production.json"), content, "application/json")  # type: ignore[attr-defined]
    else:
        (Path(store_uri) / "stroke" / "production.json").write_bytes(content)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "over 65536 bytes"),
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (
            b'{"version": "20290101T000000Z-gone", "path": "versions/20290101T000000Z-gone/",'
            b' "promoted_at": "t", "previous": null}',
            "not a complete version",
        ),
        (
            b'{"version": "20260101T000000Z-aaaa1111", '
            b'"path": "versions/20260101T000000Z-aaaa1111/", '
            b'"promoted_at": "t", "previous": "../../etc"}',
            "'previous' must be a version name",
        ),
    ],
)
def test_a_broken_pointer_is_reported_by_list_and_show_and_repaired_to_a_verified_version(
    content: bytes, why: str, store_uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _break_pointer(store_uri, content)

    assert main(["models", "list", "--store", store_uri]) == 0
    out = capsys.readouterr().out
    assert all(version in out for version in VERSIONS) and "*" not in out
    assert "the production pointer is broken" in out and why in out
    assert main(["models", "show", VERSIONS[1], "--store", store_uri]) == 0
    assert "the pointer is broken" in capsys.readouterr().out

    assert main(["models", "repair-pointer", "20290101T000000Z-gone", "--store", store_uri]) == 2
    assert "no version 20290101T000000Z-gone" in capsys.readouterr().err
    assert main(["models", "repair-pointer", VERSIONS[1], "--store", store_uri]) == 0
    assert f"repaired -> {VERSIONS[1]}" in capsys.readouterr().out
    pointer = open_store(store_uri).production()
    assert pointer is not None and pointer.version == VERSIONS[1]
    assert main(["models", "repair-pointer", VERSIONS[0], "--store", store_uri]) == 2
    assert "the pointer is sound" in capsys.readouterr().err


def test_repair_refuses_a_version_whose_signature_does_not_verify(
    store_uri: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    if store_uri.startswith("s3://"):
        pytest.skip("the folder store is enough to swap the key")
    _break_pointer(store_uri, b"")
    other = signing.generate_key_pair(tmp_path / "other-keys")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(signing.PUBLIC_KEY_ENV, str(other.public_key))
        assert main(["models", "repair-pointer", VERSIONS[1], "--store", store_uri]) == 2
    assert "signature" in capsys.readouterr().err
    _, broken = open_store(store_uri).production_state()
    assert broken is not None  # still broken: nothing written
