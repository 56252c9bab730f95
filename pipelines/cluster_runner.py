"""Submit the pipeline to a KFP cluster: compile with the Kubernetes wiring, create a run, and
(optionally) wait for it, naming the step that failed."""

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.stroke_pipeline import ClusterConfig, compile_pipeline

# KFP's V2beta1RuntimeState values that end a run; anything else is still going.
FINAL_STATES = ("SUCCEEDED", "FAILED", "SKIPPED", "CANCELED")


@dataclass(frozen=True)
class SubmittedRun:
    run_id: str
    url: str


@dataclass(frozen=True)
class FailedStep:
    name: str
    message: str


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its state, the steps that failed and the steps that succeeded."""

    run_id: str
    state: str
    failed_steps: tuple[FailedStep, ...] = ()
    succeeded_steps: tuple[str, ...] = ()
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED"

    def describe(self) -> str:
        """One line for the terminal."""
        if self.succeeded:
            deployed = "deploy" in self.succeeded_steps
            return f"run {self.run_id} succeeded" + (
                ": the new model is deployed"
                if deployed
                else ": the gate did not bless the model, so nothing was deployed"
            )
        if self.failed_steps:
            steps = "; ".join(
                f"step {s.name!r} failed" + (f": {s.message}" if s.message else "")
                for s in self.failed_steps
            )
            return f"run {self.run_id} ended {self.state}: {steps}"
        return f"run {self.run_id} ended {self.state}" + (f": {self.error}" if self.error else "")


class RunWaitTimeoutError(TimeoutError):
    """The run had not finished when the wait ran out; the message says how far it got."""


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


def _state(value: Any) -> str:
    return str(value or "").upper().removeprefix("RUNTIME_STATE_") or "PENDING"


def run_outcome(run: Any) -> RunOutcome:
    """A RunOutcome from KFP's V2beta1Run (its state, task details and error)."""
    tasks = list(getattr(run.run_details, "task_details", None) or [])
    failed = [
        FailedStep(str(t.display_name), str(getattr(t.error, "message", "") or ""))
        for t in tasks
        # Leaves only: a DAG (the root, the gate's branch) fails because a step in it failed.
        if _state(t.state) == "FAILED" and not t.child_tasks
    ]
    return RunOutcome(
        run_id=str(run.run_id),
        state=_state(run.state),
        failed_steps=tuple(failed),
        succeeded_steps=tuple(str(t.display_name) for t in tasks if _state(t.state) == "SUCCEEDED"),
        error=str(getattr(run.error, "message", "") or ""),
    )


def wait_for_run(
    *, host: str, run_id: str, timeout_seconds: float, poll_seconds: float = 10.0
) -> RunOutcome:
    """Poll the run until it ends (any of FINAL_STATES) or ``timeout_seconds`` pass.

    Not ``kfp.Client.wait_for_run_completion``: it does not treat CANCELED as an end.
    """
    import kfp

    client = kfp.Client(host=host)
    deadline = time.monotonic() + timeout_seconds
    while True:
        outcome = run_outcome(client.get_run(run_id))
        if outcome.state in FINAL_STATES:
            return outcome
        if time.monotonic() >= deadline:
            raise RunWaitTimeoutError(
                f"run {run_id} is still {outcome.state} after {timeout_seconds:g} s; "
                "follow it in the KFP UI"
            )
        time.sleep(poll_seconds)
