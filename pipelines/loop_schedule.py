"""The monitor-and-retrain loop as a KFP recurring run on a cluster."""

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.monitor_and_retrain import compile_loop_pipeline
from pipelines.stroke_pipeline import ClusterConfig


@dataclass(frozen=True)
class ScheduledLoop:
    recurring_run_id: str
    name: str
    cron: str
    url: str


def schedule_loop(
    *,
    host: str,
    store_uri: str,
    requests_uri: str,
    experiment: str,
    cron: str,
    name: str,
    arguments: dict[str, Any],
    cluster: ClusterConfig | None = None,
    ui_url: str | None = None,
) -> ScheduledLoop:
    """Create a KFP recurring run of the loop: one run at a time, no catch-up, caching off.

    ``cron`` has six fields, seconds first (KFP's scheduler), e.g. ``0 0 * * * *`` hourly.
    """
    import kfp

    fields = cron.split()
    if len(fields) != 6:
        raise ValueError(
            f"cron {cron!r} has {len(fields)} fields; KFP takes six, seconds first "
            "(e.g. '0 0 * * * *' for hourly)"
        )
    client = kfp.Client(host=host)
    experiment_id = client.create_experiment(name=experiment).experiment_id
    with tempfile.TemporaryDirectory(prefix="stroke-mlops-") as scratch:
        package = str(Path(scratch) / "monitor_and_retrain.yaml")
        compile_loop_pipeline(package, cluster or ClusterConfig())
        created = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=name,
            description="Monitor served requests; retrain through the gated pipeline on drift.",
            cron_expression=cron,
            max_concurrency=1,
            no_catchup=True,
            enable_caching=False,
            pipeline_package_path=package,
            params={"store_uri": store_uri, "requests_uri": requests_uri, **arguments},
        )
    recurring_run_id = str(created.recurring_run_id)
    return ScheduledLoop(
        recurring_run_id=recurring_run_id,
        name=name,
        cron=cron,
        url=f"{(ui_url or host).rstrip('/')}/#/recurringrun/details/{recurring_run_id}",
    )
