"""`stroke-mlops schedule` against the KFP API stand-in of test_submit (real kfp.Client, real HTTP):
a recurring run of the compiled loop, one at a time, no catch-up, caching off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipelines.monitor_and_retrain import compile_loop_pipeline
from pipelines.stroke_pipeline import ClusterConfig
from stroke_mlops.cli import main
from stroke_mlops.image import project_image
from tests.pipeline.test_submit import FakeKfpApi, serving


class FakeKfpApiWithSchedules(FakeKfpApi):
    """The submit stand-in, plus ``POST /apis/v2beta1/recurringruns``."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        if not self.path.startswith("/apis/v2beta1/recurringruns"):
            super().do_POST()
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.received.append(("POST", self.path, body))
        self._answer(
            {
                "recurring_run_id": "rr-1",
                "display_name": body.get("display_name"),
                "experiment_id": body.get("experiment_id"),
            }
        )


@pytest.fixture
def kfp_api_with_schedules() -> Iterator[str]:
    with serving(FakeKfpApiWithSchedules) as url:
        yield url


def test_schedule_creates_a_recurring_run_of_the_loop(
    kfp_api_with_schedules: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "schedule",
            "--host",
            kfp_api_with_schedules,
            "--ui-url",
            "http://127.0.0.1:8080",
            "--cron",
            "0 30 */6 * * *",
            "--cooldown-hours",
            "48",
            "--min-recall",
            "0.7",
        ]
    )
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "recurring run rr-1" in out
    assert "http://127.0.0.1:8080/#/recurringrun/details/rr-1" in out
    posts = {
        path.split("?")[0]: body for method, path, body in FakeKfpApi.received if method == "POST"
    }
    job = posts["/apis/v2beta1/recurringruns"]
    assert job["experiment_id"] == "exp-1"
    assert job["trigger"]["cron_schedule"]["cron"] == "0 30 */6 * * *"
    assert job["max_concurrency"] == "1" or job["max_concurrency"] == 1
    assert job["no_catchup"] is True
    assert job["mode"] == "ENABLE"
    spec = job["pipeline_spec"]
    pipeline = spec.get("pipeline_spec", spec)
    assert pipeline["pipelineInfo"]["name"] == "stroke-mlops-monitor-and-retrain"
    # Caching off for every task, the nested training pipeline's too (not only the root DAG's).
    nested = pipeline["components"]["comp-stroke-mlops"]["dag"]["tasks"]
    assert {"ingest", "train", "evaluate"} <= set(nested)
    assert "enableCache" not in json.dumps(pipeline)
    parameters = job["runtime_config"]["parameters"]
    assert parameters["store_uri"] == "s3://stroke-mlops/models"
    assert parameters["requests_uri"] == "s3://stroke-mlops/request-logs"
    assert parameters["cooldown_hours"] == 48
    assert parameters["min_recall"] == 0.7
    assert "stroke-mlops-s3" in json.dumps(spec)  # the MinIO Secret travels with the job


def test_schedule_refuses_a_five_field_cron(
    kfp_api_with_schedules: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["schedule", "--host", kfp_api_with_schedules, "--cron", "0 * * * *"])
    assert code == 2
    err = capsys.readouterr().err
    assert "has 5 fields; KFP takes six, seconds first" in err
    assert not [p for m, p, _ in FakeKfpApi.received if m == "POST"]


def test_the_loop_compiles_for_the_cluster_on_the_project_image(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    compile_loop_pipeline(str(path), ClusterConfig())
    spec, platform = list(yaml.safe_load_all(path.read_text()))
    executors = spec["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values()} == {project_image()}
    wired = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    loop_steps = {"collect-window", "monitor-window", "decide-retraining", "assemble-training-data"}
    with_secret = {
        name.removeprefix("exec-")
        for name, config in wired.items()
        if any(s["secretName"] == "stroke-mlops-s3" for s in config.get("secretAsEnv", []))
    }
    assert loop_steps <= with_secret
    # The retraining branch holds the training pipeline, whole, as a nested DAG.
    branch = spec["components"]["comp-condition-1"]["dag"]["tasks"]
    assert set(branch) == {"assemble-training-data", "stroke-mlops"}
    assert branch["stroke-mlops"]["inputs"]["parameters"]["data_uri"]["taskOutputParameter"] == {
        "producerTask": "assemble-training-data",
        "outputParameterKey": "Output",
    }
