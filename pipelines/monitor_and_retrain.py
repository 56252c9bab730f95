"""The monitor-and-retrain pipeline: the loop that runs on a schedule.

    collect window → monitor window → decide retraining (monitor verdict + cool-down)
        └─ if retrain: assemble training data → the training pipeline (nested, unchanged):
               contract → … → gate → (if blessed) publish → infra-validate → promote → deploy

The nested training pipeline trains on the production version's own training CSV plus the
labelled production rows, kept in the store by sha256; its gate decides promotion exactly as
in a hand-started run, so a refused candidate leaves production as it is. The gate parameters
default to the training pipeline's own defaults.

Run it here with :mod:`pipelines.loop_local_runner` (kfp.local), or on a cluster on a schedule
with :mod:`pipelines.loop_schedule`.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp import dsl

from components.assemble_training_data import assemble_training_data
from components.collect_window import collect_window
from components.decide_retraining import decide_retraining
from components.monitor_window import monitor_window
from pipelines.stroke_pipeline import ClusterConfig, build_pipeline, configure_task
from stroke_mlops import settings

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
    # The monitor pushes its verdict to the cluster's Pushgateway; local runs push nowhere.
    pushgateway_default = settings.CLUSTER_PUSHGATEWAY_URL if cluster is not None else ""

    @dsl.pipeline(
        name=LOOP_PIPELINE_NAME,
        description="Monitor the production model's served requests for drift; when the monitor "
        "recommends it and no cool-down holds, retrain on the kept training data plus labelled "
        "production rows through the gated training pipeline.",
    )
    def monitor_and_retrain(
        store_uri: str,
        requests_uri: str,
        window_hours: float = settings.LOOP.window_hours,
        until: str = "",
        min_rows: int = settings.LOOP.min_rows,
        cooldown_hours: float = settings.LOOP.cooldown_hours,
        min_recall: float = gate_defaults["min_recall"],
        min_precision: float = gate_defaults["min_precision"],
        min_roc_auc: float = gate_defaults["min_roc_auc"],
        champion_tolerance: float = gate_defaults["champion_tolerance"],
        pushgateway_url: str = pushgateway_default,
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
                pushgateway_url=pushgateway_url,
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
