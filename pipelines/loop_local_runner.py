"""One local run of the monitor-and-retrain loop (kfp.local), and its summary."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pipelines.local_runner import (
    LocalRunSummary,
    RunnerName,
    absolute_uri,
    execute_locally,
)
from pipelines.monitor_and_retrain import build_loop_pipeline


@dataclass
class LoopRunSummary:
    run: LocalRunSummary
    monitor: dict[str, Any]  # summary.json of the window
    report_path: Path | None
    decision: str  # the decision step's reason
    retrained: bool
    dataset: dict[str, Any]  # the assembled training data (when retrained)
    production_before: str | None
    production_after: str | None

    @property
    def succeeded(self) -> bool:
        return self.run.succeeded

    @property
    def promoted(self) -> bool:
        return self.production_after is not None and self.production_after != (
            self.production_before
        )

    def render(self) -> str:
        lines = [
            f"Monitor: {self.monitor.get('recommendation', '?')} on "
            f"{self.monitor.get('rows', '?')} rows of {self.monitor.get('model_version', '?')}"
            + (
                f"; drifted: {', '.join(self.monitor['drifted_features'])}"
                if self.monitor.get("drifted_features")
                else ""
            ),
            f"  report   {self.report_path}",
            f"Decision: {'RETRAIN' if self.retrained else 'no retraining'} — {self.decision}",
        ]
        if self.dataset:
            lines.append(
                f"Training data: {self.dataset.get('rows')} rows "
                f"(+{self.dataset.get('added_rows')} labelled production rows), "
                f"{self.dataset.get('uri')}"
            )
        if "gate" in self.run.outputs:
            lines.append(f"Gate: {self.run.outputs['gate']}")
        if self.retrained and self.succeeded:
            lines.append(
                f"Production: {self.production_before} → {self.production_after} (promoted)"
                if self.promoted
                else f"Production: unchanged ({self.production_before}): the gate refused"
            )
        if not self.succeeded:
            lines.append(f"FAILED: {self.run.error}")
        return "\n".join(lines)


def collect_loop_outputs(run_dir: Path) -> dict[str, Any]:
    """The loop's own results from a finished local run's artifact folders."""
    outputs: dict[str, Any] = {}
    summary = run_dir / "monitor-window" / "summary"
    if summary.is_file():
        outputs["monitor"] = json.loads(summary.read_text())
    report = run_dir / "monitor-window" / "report"
    if report.is_file():
        outputs["report"] = report
    decided = run_dir / "decide-retraining" / "executor_output.json"
    if decided.is_file():
        document = json.loads(decided.read_text())
        outputs["retrain"] = bool(document["parameterValues"]["Output"])
        decision = document["artifacts"]["decision"]["artifacts"][0]["metadata"]
        outputs["decision"] = decision.get("reason", "")
    assembled = run_dir / "assemble-training-data" / "executor_output.json"
    if assembled.is_file():
        document = json.loads(assembled.read_text())
        outputs["dataset"] = document["artifacts"]["training_data"]["artifacts"][0]["metadata"]
    return outputs


def _production(store_uri: str) -> str | None:
    from stroke_mlops.registry.store import open_store

    pointer = open_store(store_uri).production()
    return pointer.version if pointer else None


def run_loop_locally(
    *,
    store_uri: str,
    requests_uri: str,
    arguments: dict[str, Any] | None = None,
    runner: RunnerName = "subprocess",
    pipeline_root: str = "local_outputs",
    stream: TextIO | None = None,
) -> LoopRunSummary:
    """Run the loop once with kfp.local; never raises for a failed step."""
    before = _production(store_uri)
    run = execute_locally(
        build_loop_pipeline(),
        {
            "store_uri": absolute_uri(store_uri),
            "requests_uri": absolute_uri(requests_uri),
            **(arguments or {}),
        },
        uris={"store": store_uri, "requests": requests_uri},
        runner=runner,
        pipeline_root=pipeline_root,
        stream=stream,
    )
    loop = collect_loop_outputs(run.artifacts_dir) if run.artifacts_dir else {}
    return LoopRunSummary(
        run=run,
        monitor=loop.get("monitor", {}),
        report_path=loop.get("report"),
        decision=loop.get("decision", ""),
        retrained=bool(loop.get("retrain")),
        dataset=loop.get("dataset", {}),
        production_before=before,
        production_after=_production(store_uri),
    )
