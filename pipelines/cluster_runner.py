"""Submit the pipeline to a KFP cluster: compile with the Kubernetes wiring, create a run."""

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.stroke_pipeline import ClusterConfig, compile_pipeline


@dataclass(frozen=True)
class SubmittedRun:
    run_id: str
    url: str


def submit_run(
    *,
    host: str,
    data_uri: str,
    store_uri: str,
    experiment: str,
    arguments: dict[str, Any],
    run_name: str | None = None,
    cluster: ClusterConfig | None = None,
    ui_url: str | None = None,
) -> SubmittedRun:
    """Compile for the cluster, then create a run in ``experiment`` through the KFP API.

    ``ui_url`` is where the user opens the KFP UI (the API ``host`` may be a short-lived
    port-forward); the returned link points there.
    """
    import kfp

    client = kfp.Client(host=host)
    with tempfile.TemporaryDirectory(prefix="stroke-mlops-") as scratch:
        package = str(Path(scratch) / "stroke_pipeline.yaml")
        compile_pipeline(package, cluster or ClusterConfig())
        result = client.create_run_from_pipeline_package(
            package,
            arguments={"data_uri": data_uri, "store_uri": store_uri, **arguments},
            run_name=run_name or f"stroke-{datetime.now(UTC):%Y%m%d-%H%M%S}",
            experiment_name=experiment,
        )
    return SubmittedRun(
        run_id=result.run_id,
        url=f"{(ui_url or host).rstrip('/')}/#/runs/details/{result.run_id}",
    )
