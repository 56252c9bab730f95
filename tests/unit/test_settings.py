"""Infrastructure names and loop defaults are defined once (stroke_mlops.settings): every reader
takes its default from there, and the values are written nowhere else in the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stroke_mlops import settings
from stroke_mlops.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
CODE = ("src/stroke_mlops", "pipelines", "components")
DEFINED_ONCE = (
    settings.S3_CREDENTIALS_SECRET,
    settings.CLUSTER_S3_ENDPOINT,
    settings.CLUSTER_STORE_URI,
    settings.CLUSTER_REQUEST_LOG_URI,
    settings.CLUSTER_DATA_URI,
    settings.MODEL_MOUNT_PATH,
    settings.KFP_API,
)


def _parse(*argv: str) -> dict[str, object]:
    return vars(build_parser().parse_args(list(argv)))


def test_the_cli_takes_its_defaults_from_settings() -> None:
    cluster = {
        "s3_secret": settings.S3_CREDENTIALS_SECRET,
        "s3_endpoint": settings.CLUSTER_S3_ENDPOINT,
    }
    loop = {
        "window_hours": settings.LOOP.window_hours,
        "min_rows": settings.LOOP.min_rows,
        "cooldown_hours": settings.LOOP.cooldown_hours,
    }
    assert _parse("compile", "--output", "x").items() >= cluster.items()
    assert (
        _parse("submit").items()
        >= {
            "host": settings.KFP_API,
            "data": settings.CLUSTER_DATA_URI,
            "store": settings.CLUSTER_STORE_URI,
            "experiment": settings.KFP_EXPERIMENT,
        }.items()
    )
    assert (
        _parse("schedule").items()
        >= {
            **cluster,
            **loop,
            "host": settings.KFP_API,
            "experiment": settings.KFP_EXPERIMENT,
            "store": settings.CLUSTER_STORE_URI,
            "requests": settings.CLUSTER_REQUEST_LOG_URI,
        }.items()
    )
    assert _parse("loop", "--store", "s", "--requests", "r").items() >= loop.items()
    assert _parse("deploy", "--model-uri", "m")["namespace"] == settings.NAMESPACE
    assert _parse("models", "rollback", "v", "--store", "s")["namespace"] == settings.NAMESPACE


def test_pipelines_manifests_and_server_take_their_defaults_from_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipelines.monitor_and_retrain import build_loop_pipeline
    from pipelines.stroke_pipeline import ClusterConfig
    from stroke_mlops.deploy import kserve_objects
    from stroke_mlops.monitoring import monitor, retraining
    from stroke_mlops.serving import predictor

    config = ClusterConfig()
    assert (config.s3_secret, config.s3_endpoint, config.s3_region) == (
        settings.S3_CREDENTIALS_SECRET,
        settings.CLUSTER_S3_ENDPOINT,
        settings.CLUSTER_S3_REGION,
    )
    inputs = build_loop_pipeline().component_spec.inputs  # type: ignore[attr-defined]
    assert {
        name: inputs[name].default for name in ("window_hours", "min_rows", "cooldown_hours")
    } == {
        "window_hours": settings.LOOP.window_hours,
        "min_rows": settings.LOOP.min_rows,
        "cooldown_hours": settings.LOOP.cooldown_hours,
    }
    assert (
        settings.LOOP.min_rows,
        settings.LOOP.cooldown_hours,
    ) == (monitor.DEFAULT_MIN_ROWS, retraining.DEFAULT_COOLDOWN_HOURS)
    args = kserve_objects.SERVE_ARGS
    assert args[args.index("--model-uri") + 1] == settings.MODEL_MOUNT_PATH
    assert args[args.index("--port") + 1] == str(settings.HTTP_PORT)
    assert (kserve_objects.NAMESPACE, kserve_objects.S3_CREDENTIALS_SECRET) == (
        settings.NAMESPACE,
        settings.S3_CREDENTIALS_SECRET,
    )
    assert kserve_objects.CLUSTER_REQUEST_LOG_URI == settings.CLUSTER_REQUEST_LOG_URI
    monkeypatch.delenv("STROKE_MODEL_URI", raising=False)
    server = predictor.build_parser().parse_args([])
    assert (server.model_uri, server.http_port) == (settings.MODEL_MOUNT_PATH, settings.HTTP_PORT)


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_the_values_are_written_only_in_settings() -> None:
    elsewhere: list[str] = []
    for folder in CODE:
        for path in sorted((REPO / folder).rglob("*.py")):
            if path == REPO / "src" / "stroke_mlops" / "settings.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = _docstrings(tree)
            elsewhere.extend(
                f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant)
                and node.value in DEFINED_ONCE
                and id(node) not in docstrings
            )
    assert elsewhere == []
