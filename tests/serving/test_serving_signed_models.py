"""Signed models that load no code: the signature is checked with the public key before any
model byte is parsed, and the model format (skops) builds only allow-listed types."""

from __future__ import annotations

import json
import os
import pickle
import stat
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from stroke_mlops.registry import signing
from stroke_mlops.registry.model_dir import (
    METADATA_FILE,
    MODEL_FILE,
    ModelDirError,
    load_model_file,
    open_signed_model_dir,
    save_model,
    sha256_file,
    verify_model_dir,
)
from stroke_mlops.serving.loading import ModelLoadError
from stroke_mlops.serving.model import StrokeModel
from stroke_mlops.serving.request_log import RequestLogger
from stroke_mlops.serving.scoring import instances_to_frame
from tests.serving.model_dirs import copy_model_dir


class _OpensAFile:
    """A pickle payload: unpickling it calls open(marker, "w"), creating the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _load(directory: Path, public_key: Path | None = None) -> StrokeModel:
    model = StrokeModel(
        str(directory), request_logger=RequestLogger(stream=None), public_key=public_key
    )
    model.load()
    return model


def test_a_planted_pickle_with_a_rewritten_hash_never_runs(
    lr_model_dir: Path, tmp_path: Path
) -> None:
    # The payload is live: unpickling it anywhere creates its marker.
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_OpensAFile(control)))
    assert control.exists()

    # The attacker can write the model directory: swap in the pickle and rewrite metadata.json
    # so every recorded sha256 matches (what defeated the old checksum-only check).
    marker = tmp_path / "marker"
    planted = copy_model_dir(lr_model_dir, tmp_path / "planted")
    (planted / MODEL_FILE).unlink()
    (planted / "model.joblib").write_bytes(pickle.dumps(_OpensAFile(marker)))
    metadata = json.loads((planted / METADATA_FILE).read_text())
    metadata["model_file"] = "model.joblib"
    metadata["files"].pop(MODEL_FILE)
    metadata["files"]["model.joblib"] = sha256_file(planted / "model.joblib")
    (planted / METADATA_FILE).write_text(json.dumps(metadata))
    assert verify_model_dir(planted).metadata["model_file"] == "model.joblib"  # hashes agree

    with pytest.raises(ModelLoadError) as refused:
        _load(planted)

    message = str(refused.value)
    assert "signature check failed" in message
    assert f"changed since signing: {METADATA_FILE}" in message
    assert "not signed: model.joblib" in message
    assert f"missing: {MODEL_FILE}" in message
    assert not marker.exists()


def test_a_pickle_never_loads_even_when_signed(
    lr_model_dir: Path, tmp_path: Path, signing_keys: signing.KeyPair
) -> None:
    """A compromised signer still cannot run code: the loader reads skops, not pickle."""
    marker = tmp_path / "marker"
    planted = copy_model_dir(lr_model_dir, tmp_path / "planted")
    (planted / MODEL_FILE).write_bytes(pickle.dumps(_OpensAFile(marker)))
    metadata = json.loads((planted / METADATA_FILE).read_text())
    metadata["files"][MODEL_FILE] = sha256_file(planted / MODEL_FILE)
    (planted / METADATA_FILE).write_text(json.dumps(metadata))
    signing.sign_model_dir(planted, signing_keys.private_key)

    with pytest.raises(ModelLoadError, match=r"model\.skops: not a readable skops model file"):
        _load(planted)
    assert not marker.exists()


def test_types_outside_the_allow_list_are_refused(tmp_path: Path) -> None:
    """A skops file may name any function; only allow-listed types are ever built."""
    hostile = Pipeline([("run", FunctionTransformer(func=os.system))])
    path = tmp_path / MODEL_FILE
    save_model(hostile, path)

    with pytest.raises(ModelDirError, match=r"outside the allow-list \(.*system"):
        load_model_file(path)


def test_the_soft_vote_round_trips_with_identical_probabilities(
    vote_pipeline: Pipeline, signature_doc: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / MODEL_FILE
    save_model(vote_pipeline, path)

    loaded = load_model_file(path)

    rows = instances_to_frame(signature_doc["examples"])
    assert np.array_equal(loaded.predict_proba(rows), vote_pipeline.predict_proba(rows))


def test_a_mismatch_is_described_whatever_quotes_the_digests_hold() -> None:
    """model-signing reports a list whose repr quoting depends on the digest bytes."""
    for digest in (b"plain", b"both ' and \" quotes"):
        lines = [
            "Extra files found in model 'm': payload.pkl",
            f"Hash mismatch for 'model.skops': Expected '{digest!r}', Actual 'x'",
        ]
        described = signing._describe_failure(ValueError(f"Signature mismatch: {lines}"))
        assert described == "changed since signing: model.skops; not signed: payload.pkl"


def test_an_unsigned_directory_is_refused(lr_model_dir: Path, tmp_path: Path) -> None:
    unsigned = copy_model_dir(lr_model_dir, tmp_path / "unsigned")
    (unsigned / signing.SIGNING_BUNDLE_FILE).unlink()
    with pytest.raises(ModelLoadError, match=r"no model\.sig; refusing to load an unsigned model"):
        _load(unsigned)


def test_a_signature_by_another_key_is_refused(lr_model_dir: Path, tmp_path: Path) -> None:
    other = signing.generate_key_pair(tmp_path / "other-keys")
    with pytest.raises(ModelLoadError, match="not signed by the configured public key"):
        _load(lr_model_dir, public_key=other.public_key)


def test_a_damaged_signature_bundle_is_refused(lr_model_dir: Path, tmp_path: Path) -> None:
    damaged = copy_model_dir(lr_model_dir, tmp_path / "damaged")
    (damaged / signing.SIGNING_BUNDLE_FILE).write_text("{")
    with pytest.raises(ModelLoadError, match=r"model\.sig is not a valid signature bundle"):
        _load(damaged)


def test_the_server_refuses_without_a_public_key(
    lr_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(signing.PUBLIC_KEY_ENV)
    with pytest.raises(
        ModelLoadError, match=f"no public signing key: set {signing.PUBLIC_KEY_ENV}"
    ):
        _load(lr_model_dir)


def test_only_a_signature_checked_directory_loads_its_model(lr_model_dir: Path) -> None:
    with pytest.raises(ModelDirError, match="its signature was not verified"):
        verify_model_dir(lr_model_dir).load_model()


def test_publish_needs_the_private_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(signing.PRIVATE_KEY_ENV)
    with pytest.raises(signing.SignatureError, match=f"set {signing.PRIVATE_KEY_ENV}"):
        signing.private_key_from_env()


def test_local_dev_keys_are_labelled_private_and_never_override_given_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signing_keys: signing.KeyPair
) -> None:
    monkeypatch.setenv(signing.LOCAL_DEV_KEYS_ENV, str(tmp_path / "dev-keys"))
    signing.use_local_dev_keys()
    assert os.environ[signing.PRIVATE_KEY_ENV] == str(signing_keys.private_key)  # untouched

    monkeypatch.delenv(signing.PRIVATE_KEY_ENV)
    monkeypatch.delenv(signing.PUBLIC_KEY_ENV)
    signing.use_local_dev_keys(create=False)
    assert signing.PUBLIC_KEY_ENV not in os.environ  # serve never makes keys
    signing.use_local_dev_keys()

    private_key = Path(os.environ[signing.PRIVATE_KEY_ENV])
    assert private_key.parent == tmp_path / "dev-keys"
    assert private_key.read_text().startswith("# LOCAL-DEV ONLY")
    assert stat.S_IMODE(private_key.stat().st_mode) == 0o600
    signing.use_local_dev_keys()  # made once, then reused
    assert Path(os.environ[signing.PRIVATE_KEY_ENV]) == private_key


# --- item 8: load errors name the file and what is wrong -----------------------------------


def _resigned(directory: Path, keys: signing.KeyPair) -> Path:
    """A directory damaged by its publisher (so the signature holds) to reach later checks."""
    metadata_path = directory / METADATA_FILE
    if metadata_path.read_bytes().strip():
        metadata = json.loads(metadata_path.read_text())
        for name in metadata["files"]:
            metadata["files"][name] = sha256_file(directory / name)
        metadata_path.write_text(json.dumps(metadata))
    signing.sign_model_dir(directory, keys.private_key)
    return directory


def test_a_truncated_model_file_names_the_file_and_the_problem(
    lr_model_dir: Path, tmp_path: Path, signing_keys: signing.KeyPair
) -> None:
    damaged = copy_model_dir(lr_model_dir, tmp_path / "truncated")
    model_path = damaged / MODEL_FILE
    model_path.write_bytes(model_path.read_bytes()[:100])
    _resigned(damaged, signing_keys)
    with pytest.raises(ModelDirError) as refused:
        open_signed_model_dir(damaged, signing_keys.public_key).load_model()
    assert str(refused.value).startswith(f"{model_path}: not a readable skops model file (")
    assert zipfile.BadZipFile.__name__ in str(refused.value)


def test_an_empty_metadata_file_names_the_file_and_the_problem(
    lr_model_dir: Path, tmp_path: Path, signing_keys: signing.KeyPair
) -> None:
    damaged = copy_model_dir(lr_model_dir, tmp_path / "empty-metadata")
    (damaged / METADATA_FILE).write_bytes(b"")
    _resigned(damaged, signing_keys)
    with pytest.raises(
        ModelLoadError, match=f"{METADATA_FILE}: the file is empty; expected a JSON object"
    ):
        _load(damaged)


def test_a_damaged_signature_json_names_the_file_and_the_problem(
    lr_model_dir: Path, tmp_path: Path, signing_keys: signing.KeyPair
) -> None:
    damaged = copy_model_dir(lr_model_dir, tmp_path / "bad-signature-json")
    (damaged / "signature.json").write_text('{"inputs": [')
    _resigned(damaged, signing_keys)
    with pytest.raises(
        ModelLoadError, match=r"signature\.json: not valid JSON \(Expecting value at line 1"
    ):
        _load(damaged)
