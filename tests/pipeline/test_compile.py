"""The compiled pipeline YAML: what a cluster runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.stroke_pipeline import (
    STEP_CPU_REQUEST_MAX,
    STEP_MEMORY_MAX_GIB,
    ClusterConfig,
    compile_pipeline,
)
from stroke_mlops.image import project_image

S3_TASKS = {"ingest", "gate", "publish", "infra-validate", "promote", "deploy"}


def _load_documents(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = list(yaml.safe_load_all(path.read_text()))
    spec = docs[0]
    platform = docs[1] if len(docs) > 1 else {}
    return spec, platform


@pytest.fixture(scope="module")
def cluster_yaml(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    path = tmp_path_factory.mktemp("compiled") / "pipeline.yaml"
    compile_pipeline(str(path), ClusterConfig())
    return _load_documents(path)


def test_every_executor_runs_the_project_image(cluster_yaml: tuple[dict, dict]) -> None:
    spec, _ = cluster_yaml
    executors = spec["deploymentSpec"]["executors"]
    assert len(executors) >= 9
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {project_image()}
    assert project_image().endswith(":0.1.0") or ":" in project_image()
    for executor in executors.values():
        command = " ".join(executor["container"]["command"])
        assert "pip install" not in command  # install_kfp_package=False: the image has it all


def test_s3_secret_and_endpoint_are_wired_where_needed(cluster_yaml: tuple[dict, dict]) -> None:
    spec, platform = cluster_yaml
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    with_secret = {
        name.removeprefix("exec-")
        for name, cfg in executors.items()
        if any(s["secretName"] == "stroke-mlops-s3" for s in cfg.get("secretAsEnv", []))
    }
    assert with_secret == S3_TASKS
    for name in S3_TASKS:
        container = spec["deploymentSpec"]["executors"][f"exec-{name}"]["container"]
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        assert env["AWS_ENDPOINT_URL"].startswith("http://minio.stroke-mlops.svc")
    assert all(cfg.get("imagePullPolicy") == "IfNotPresent" for cfg in executors.values())


def test_only_publish_gets_the_private_signing_key(cluster_yaml: tuple[dict, dict]) -> None:
    spec, platform = cluster_yaml
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    with_private = {
        name.removeprefix("exec-"): cfg["secretAsVolume"]
        for name, cfg in executors.items()
        if cfg.get("secretAsVolume")
    }
    with_public = {
        name.removeprefix("exec-"): cfg["configMapAsVolume"]
        for name, cfg in executors.items()
        if cfg.get("configMapAsVolume")
    }
    assert set(with_private) == {"publish"}
    assert with_private["publish"][0]["secretName"] == "stroke-mlops-signing-key"
    assert set(with_public) == {"gate", "infra-validate"}
    for name, volumes in with_public.items():
        assert volumes[0]["configMapName"] == "stroke-mlops-signing-public-key", name
    env_of = {
        name.removeprefix("exec-"): {
            variable["name"]: variable["value"] for variable in executor["container"].get("env", [])
        }
        for name, executor in spec["deploymentSpec"]["executors"].items()
    }
    assert env_of["publish"]["STROKE_MLOPS_SIGNING_KEY"].startswith(
        with_private["publish"][0]["mountPath"]
    )
    assert [n for n, env in env_of.items() if "STROKE_MLOPS_SIGNING_KEY" in env] == ["publish"]
    for name in with_public:
        assert env_of[name]["STROKE_MLOPS_SIGNING_PUBLIC_KEY"] == (
            "/etc/stroke-mlops/signing/public-key.pem"
        )


def test_gate_branch_guards_publish_and_promote(cluster_yaml: tuple[dict, dict]) -> None:
    spec, _ = cluster_yaml
    root_tasks = spec["root"]["dag"]["tasks"]
    branch = next(t for name, t in root_tasks.items() if name.startswith("condition"))
    condition = branch["triggerPolicy"]["condition"]
    assert "pipelinechannel--gate-Output" in condition and "== true" in condition
    inner = spec["components"][branch["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) == {"publish", "infra-validate", "promote", "deploy"}
    assert "infra-validate" in inner["promote"]["dependentTasks"]  # never before serving works
    assert "promote" in inner["deploy"]["dependentTasks"]
    assert root_tasks["gate"]["cachingOptions"] == {}  # caching off: champion is "now"


def test_thresholds_are_pipeline_parameters(cluster_yaml: tuple[dict, dict]) -> None:
    spec, _ = cluster_yaml
    params = spec["root"]["inputDefinitions"]["parameters"]
    for name in (
        "min_recall",
        "min_precision",
        "min_roc_auc",
        "champion_tolerance",
        "seed",
        "precision_floor",
        "data_uri",
        "store_uri",
    ):
        assert name in params
    assert params["min_precision"]["defaultValue"] == 0.15


def test_local_compile_has_no_kubernetes_wiring(tmp_path: Path) -> None:
    path = tmp_path / "local.yaml"
    compile_pipeline(str(path))
    _, platform = _load_documents(path)
    assert platform == {}


def _all_tasks(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every task of the pipeline, in the root DAG and in every sub-DAG (the gate's branch)."""
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    tasks = {}
    for dag in dags:
        for name, task in dag["tasks"].items():
            assert name not in tasks, f"task name {name} appears twice"
            tasks[name] = task
    return tasks


def test_caching_is_off_wherever_a_step_reads_something_mutable(
    cluster_yaml: tuple[dict, dict],
) -> None:
    spec, _ = cluster_yaml
    tasks = _all_tasks(spec)
    cached = {
        name
        for name, task in tasks.items()
        if task.get("cachingOptions", {}).get("enableCache")
        and "componentRef" in task
        and not name.startswith("condition")
    }
    # Pure functions of their input artifacts; a fresh ingest gives them new inputs.
    assert cached == {"validate-data", "enforce-contract", "preprocess", "train", "evaluate"}
    # ingest reads data_uri; gate, publish, infra-validate, promote, deploy read or change
    # production. They sit in the root DAG and inside the gate's condition.
    uncached = {"ingest", "gate", "publish", "infra-validate", "promote", "deploy"}
    assert uncached <= set(tasks)
    for name in uncached:
        assert tasks[name].get("cachingOptions", {}) == {}, name


def test_every_step_fits_on_a_4_cpu_kind_node_beside_kfp_and_kserve(
    cluster_yaml: tuple[dict, dict],
) -> None:
    spec, _ = cluster_yaml
    for name, executor in spec["deploymentSpec"]["executors"].items():
        resources = executor["container"]["resources"]
        assert 0 < resources["cpuRequest"] <= STEP_CPU_REQUEST_MAX, name
        assert resources["cpuLimit"] >= resources["cpuRequest"], name
        assert resources["memoryRequest"] * 1e9 <= STEP_MEMORY_MAX_GIB * 2**30, name
        assert resources["memoryLimit"] == resources["memoryRequest"], name
    train = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert (train["cpuRequest"], train["cpuLimit"]) == (1.0, 2.0)  # bursts when the node is idle


def test_one_image_variable_reaches_every_step_and_the_emitted_runtime(tmp_path: Path) -> None:
    # The image is resolved when components are imported: compile in a fresh process, as
    # `make submit IMAGE=...` does through STROKE_MLOPS_IMAGE.
    image = "registry.example:5000/team/stroke-mlops:dev-1"
    path = tmp_path / "pipeline.yaml"
    subprocess.run(
        [sys.executable, "-m", "stroke_mlops.cli", "compile", "--output", str(path)],
        env={**os.environ, "STROKE_MLOPS_IMAGE": image},
        check=True,
        capture_output=True,
        timeout=300,
    )
    spec, _ = _load_documents(path)
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {image}
    env = {e["name"]: e["value"] for e in executors["exec-deploy"]["container"]["env"]}
    assert env["STROKE_MLOPS_IMAGE"] == image


def test_every_default_is_defined_once_in_the_library(
    cluster_yaml: tuple[dict, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    """The pipeline's parameters and the CLI's options take their defaults from the library's
    dataclasses (GateThresholds, EvaluationConfig, SplitFractions), help text included."""
    from stroke_mlops.cli import build_parser
    from stroke_mlops.cli.pipeline import pipeline_arguments
    from stroke_mlops.data.dataset import SplitFractions
    from stroke_mlops.training.evaluate import EvaluationConfig
    from stroke_mlops.training.promotion_gate import GateThresholds

    gate, evaluation, split = GateThresholds(), EvaluationConfig(), SplitFractions()
    library = {
        "min_recall": gate.min_recall,
        "min_precision": gate.min_precision,
        "min_roc_auc": gate.min_roc_auc,
        "champion_tolerance": gate.champion_tolerance,
        "max_cv_recall_width": gate.max_cv_recall_width,
        "precision_floor": evaluation.precision_floor,
        "threshold_margin": evaluation.threshold_margin,
        "seed": evaluation.seed,
        "validation_fraction": split.validation,
        "test_fraction": split.test,
    }
    spec, _ = cluster_yaml
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {name: params[name].get("defaultValue", 0.0) for name in library} == library
    parser = build_parser()
    for command in (["run", "--data", "d.csv", "--store", "s"], ["submit"]):
        arguments = pipeline_arguments(parser.parse_args(command))
        assert {name: arguments[name] for name in library} == library
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"lower bound of the repeated-CV recall needed ({gate.min_recall})" in help_text
    assert f"({gate.champion_tolerance})" in help_text
