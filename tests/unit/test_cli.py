"""The stroke-mlops command: exit codes and messages, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stroke_mlops.cli import main


def test_validate_real_file_holds(real_csv_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(real_csv_path)]) == 0
    assert "the data contract holds (5110 rows)" in capsys.readouterr().out


def test_validate_lists_every_failure_with_exit_1(
    real_csv_bytes: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = real_csv_bytes.decode("utf-8-sig").split("\r\n")
    lines[1] = lines[1].replace(",Male,", ",M,")
    lines[2] = lines[2].replace(",61,", ",sixty,")
    broken = tmp_path / "broken.csv"
    broken.write_text("\r\n".join(lines))
    html = tmp_path / "report.html"
    assert main(["validate", str(broken), "--html", str(html)]) == 1
    err = capsys.readouterr().err
    assert "gender: expected one of Female, Male, Other" in err and "'M' (line 2)" in err
    assert "age: expected numbers" in err and "'sixty' (line 3)" in err
    assert "<html" in html.read_text().lower()


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00binary", "not UTF-8"), (b"id;gender\n1;Male\n", "';'-separated")],
)
def test_validate_unreadable_file_is_exit_2_one_line(
    content: bytes, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_validate_missing_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


def test_compile_writes_cluster_yaml(tmp_path: Path) -> None:
    output = tmp_path / "pipeline.yaml"
    assert main(["compile", "--output", str(output)]) == 0
    docs = list(yaml.safe_load_all(output.read_text()))
    assert docs[0]["pipelineInfo"]["name"] == "stroke-mlops"
    assert "kubernetes" in docs[1]["platforms"]


def test_deploy_dry_run_prints_the_inference_service(capsys: pytest.CaptureFixture[str]) -> None:
    uri = "s3://stroke-mlops/models/stroke/versions/v1"
    assert main(["deploy", "--model-uri", uri, "--model-version", "v1", "--dry-run"]) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    kinds = {o["kind"]: o for o in objects if o}
    assert set(kinds) == {"ServingRuntime", "InferenceService"}
    predictor = kinds["InferenceService"]["spec"]["predictor"]
    # A bucket URI gets its trailing slash: KServe matches objects by plain key prefix.
    assert predictor["model"]["storageUri"] == uri + "/"
    assert predictor["serviceAccountName"] == "stroke-predictor"


def test_deploy_dry_run_puts_the_runtime_beside_the_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A ServingRuntime is namespaced: KServe's controller looks for it in the service's namespace.
    uri = "s3://stroke-mlops/models/stroke/versions/v1/"
    assert main(["deploy", "--model-uri", uri, "--namespace", "models", "--dry-run"]) == 0
    objects = [o for o in yaml.safe_load_all(capsys.readouterr().out) if o]
    assert {o["metadata"]["namespace"] for o in objects} == {"models"}


def test_deploy_bad_uri_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--model-uri", "ftp://host/model", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "unsupported scheme" in err and "Traceback" not in err


def test_draft_suite_writes_reviewable_json(real_csv_path: Path, tmp_path: Path) -> None:
    output = tmp_path / "draft.json"
    assert main(["draft-suite", str(real_csv_path), "--output", str(output)]) == 0
    assert "review before committing" in output.read_text()


def test_serve_binds_loopback_by_default_with_the_predictors_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`stroke-mlops serve` and `python -m stroke_mlops.serving.predictor` share their defaults,
    and the first forwards host and row limit to the second."""
    from stroke_mlops import cli
    from stroke_mlops.serving import predictor

    own = predictor.build_parser().parse_args([])
    assert (own.host, own.max_instances) == ("127.0.0.1", 10_000)
    forwarded: list[list[str]] = []

    def record(argv: list[str]) -> int:
        forwarded.append(list(argv))
        return 0

    monkeypatch.setattr(predictor, "main", record)
    assert cli.main(["serve", "--model-uri", "m"]) == 0
    assert cli.main(["serve", "--model-uri", "m", "--host", "0.0.0.0", "--max-instances", "7"]) == 0
    first, second = (predictor.build_parser().parse_args(argv) for argv in forwarded)
    assert (first.host, first.max_instances) == (own.host, own.max_instances)
    assert (second.host, second.max_instances) == ("0.0.0.0", 7)


def test_serve_takes_the_request_log_uri_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cluster's ServingRuntime sets $STROKE_REQUEST_LOG_URI, not a flag: `stroke-mlops serve`
    must leave it to the predictor, and a flag still wins."""
    from stroke_mlops import cli
    from stroke_mlops.serving import predictor

    monkeypatch.setenv("STROKE_REQUEST_LOG_URI", "s3://stroke-mlops/request-logs")
    forwarded: list[list[str]] = []

    def record(argv: list[str]) -> int:
        forwarded.append(list(argv))
        return 0

    monkeypatch.setattr(predictor, "main", record)
    assert cli.main(["serve", "--model-uri", "m"]) == 0
    assert cli.main(["serve", "--model-uri", "m", "--request-log-uri", "logs"]) == 0
    from_env, from_flag = (predictor.build_parser().parse_args(argv) for argv in forwarded)
    assert from_env.request_log_uri == "s3://stroke-mlops/request-logs"
    assert from_flag.request_log_uri == "logs"


def test_serve_refuses_a_row_limit_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--model-uri", "m", "--max-instances", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "stroke-mlops serve: max_instances must be at least 1; got 0"
    )
