"""The monitor-and-retrain pipeline: the loop that runs on a schedule.

    collect window → monitor window → decide retraining (monitor verdict + cool-down)
        └─ if retrain: assemble training data → the training pipeline (nested, unchanged):
               contract → … → gate → (if blessed) publish → infra-validate → promote → deploy

The nested training pipeline trains on the production version's own training CSV plus the
labelled production rows, kept in the store by sha256; its gate decides promotion exactly as
in a hand-started run, so a refused candidate leaves production as it is. The gate parameters
default to the training pipeline's own defaults.
"""

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from kfp import dsl

from components.assemble_training_data import assemble_training_data
from components.collect_window import collect_window
from components.decide_retraining import decide_retraining
from components.monitor_window import monitor_window
from pipelines.local_runner import (
    LocalRunSummary,
    RunnerName,
    absolute_uri,
    execute_locally,
)
from pipelines.stroke_pipeline import ClusterConfig, build_pipeline, configure_task

LOOP_PIPELINE_NAME = "stroke-mlops-monitor-and-retrain"
# Training-pipeline parameters the loop passes through (the gate's thresholds).
GATE_PARAMETERS = ("min_recall", "min_precision", "min_roc_auc", "champion_tolerance")


def _defaults(pipeline: Any) -> dict[str, Any]:
    inputs = pipeline.component_spec.inputs or {}
    return {name: spec.default for name, spec in inputs.items() if spec.default is not None}


def build_loop_pipeline(cluster: ClusterConfig | None = None) -> Callable[..., Any]:
    """Return the loop pipeline function, wired for a cluster when ``cluster`` is given."""
    training = build_pipeline(cluster)
    gate_defaults = {name: float(_defaults(training)[name]) for name in GATE_PARAMETERS}

    @dsl.pipeline(
        name=LOOP_PIPELINE_NAME,
        description="Monitor the production model's served requests for drift; when the monitor "
        "recommends it and no cool-down holds, retrain on the kept training data plus labelled "
        "production rows through the gated training pipeline.",
    )
    def monitor_and_retrain(
        store_uri: str,
        requests_uri: str,
        window_hours: float = 24.0,
        until: str = "",
        min_rows: int = 200,
        cooldown_hours: float = 24.0,
        min_recall: float = gate_defaults["min_recall"],
        min_precision: float = gate_defaults["min_precision"],
        min_roc_auc: float = gate_defaults["min_roc_auc"],
        champion_tolerance: float = gate_defaults["champion_tolerance"],
    ) -> None:
        window = configure_task(
            collect_window(requests_uri=requests_uri, window_hours=window_hours, until=until),
            cluster,
            s3=True,
            cpu="100m",
            memory="256Mi",
        ).set_display_name("collect window")
        monitored = configure_task(
            monitor_window(
                store_uri=store_uri,
                requests_uri=requests_uri,
                since=window.outputs["since"],
                until=window.outputs["until"],
                min_rows=min_rows,
            ),
            cluster,
            s3=True,
            memory="2Gi",
        ).set_display_name("monitor window")
        decision = configure_task(
            decide_retraining(
                summary=monitored.outputs["summary"],
                store_uri=store_uri,
                cooldown_hours=cooldown_hours,
            ),
            cluster,
            s3=True,
            cpu="100m",
            memory="256Mi",
        ).set_display_name("decide retraining (monitor + cool-down)")
        # Every step reads "now" (the window, production, the last attempt): never cached.
        for task in (window, monitored, decision):
            task.set_caching_options(False)
        with dsl.If(decision.outputs["Output"] == True, name="retrain"):  # noqa: E712
            assembled = configure_task(
                assemble_training_data(
                    summary=monitored.outputs["summary"],
                    store_uri=store_uri,
                    requests_uri=requests_uri,
                    until=window.outputs["until"],
                ),
                cluster,
                s3=True,
                memory="1Gi",
            ).set_display_name("assemble training data")
            assembled.set_caching_options(False)
            training(
                data_uri=assembled.outputs["Output"],
                store_uri=store_uri,
                min_recall=min_recall,
                min_precision=min_precision,
                min_roc_auc=min_roc_auc,
                champion_tolerance=champion_tolerance,
            ).set_display_name("training pipeline")

    return monitor_and_retrain


def compile_loop_pipeline(output_path: str, cluster: ClusterConfig | None = None) -> None:
    """Write the loop pipeline's YAML (the IR a KFP cluster runs), with caching off for every
    task, the nested training pipeline's included.

    ``kfp.Client(enable_caching=False)`` overrides only the root DAG's tasks, so the tasks of
    the nested pipeline are switched off here, in the IR itself.
    """
    import yaml
    from kfp import compiler

    compiler.Compiler().compile(build_loop_pipeline(cluster), package_path=output_path)
    documents = list(yaml.safe_load_all(Path(output_path).read_text()))
    spec = documents[0]
    dags = [spec["root"]["dag"]] + [c["dag"] for c in spec["components"].values() if "dag" in c]
    for dag in dags:
        for task in dag["tasks"].values():
            if "cachingOptions" in task:
                task["cachingOptions"].pop("enableCache", None)
    Path(output_path).write_text(yaml.safe_dump_all(documents, sort_keys=False))


# --------------------------------------------------------------------------------------------
# Local runs (kfp.local)


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


# --------------------------------------------------------------------------------------------
# Recurring runs on a cluster


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
