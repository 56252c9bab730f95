"""``compile``, ``run`` and ``submit``: the training pipeline, compiled, run here or on KFP."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from stroke_mlops import settings
from stroke_mlops.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
)


def add_commands(commands: Any) -> None:
    """Add the compile, run and submit commands (each parser beside its handler below)."""
    compile_ = commands.add_parser(
        "compile", help="write the pipeline YAML a cluster runs (needs a checkout)"
    )
    compile_.add_argument("--output", required=True, help="the YAML file to write")
    compile_.add_argument(
        "--local",
        action="store_true",
        help="leave out the Kubernetes wiring (Secret, pull policy, resources)",
    )
    compile_.add_argument(
        "--s3-secret",
        default=settings.S3_CREDENTIALS_SECRET,
        help="Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    )
    compile_.add_argument(
        "--s3-endpoint",
        default=settings.CLUSTER_S3_ENDPOINT,
        help="MinIO endpoint as the pipeline pods see it",
    )
    compile_.set_defaults(handler=cmd_compile)

    run = commands.add_parser(
        "run",
        help="run the whole pipeline locally (kfp.local) (needs a checkout)",
        description="Compile and run the pipeline here. An s3:// store (MinIO) takes its endpoint "
        "and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.",
    )
    run.add_argument(
        "--data", required=True, help="raw CSV: a path, s3://bucket/key or https:// URL"
    )
    run.add_argument("--store", required=True, help="model store: a folder or s3://bucket/prefix")
    run.add_argument(
        "--runner",
        choices=("subprocess", "docker"),
        default="subprocess",
        help="subprocess (this environment) or docker (the project image)",
    )
    run.add_argument(
        "--pipeline-root",
        default="local_outputs",
        help="each run gets a folder here: step artifacts, step logs, kfp.log (local_outputs)",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="also show kfp.local's and every step's full output (always in the run folder)",
    )
    run.add_argument("--summary-json", metavar="FILE", help="also write the run summary as JSON")
    add_pipeline_options(run)
    run.set_defaults(handler=cmd_run)

    submit = commands.add_parser("submit", help="create a run on a KFP cluster (needs a checkout)")
    submit.add_argument(
        "--host",
        default=settings.KFP_API,
        help="KFP API (e.g. a port-forward of ml-pipeline-ui)",
    )
    submit.add_argument(
        "--data",
        default=settings.CLUSTER_DATA_URI,
        help="raw CSV URI as the pipeline pods see it",
    )
    submit.add_argument("--store", default=settings.CLUSTER_STORE_URI, help="model store URI")
    submit.add_argument("--experiment", default=settings.KFP_EXPERIMENT, help="KFP experiment")
    submit.add_argument(
        "--ui-url", help="where you open the KFP UI, for the printed run link (default: --host)"
    )
    submit.add_argument("--run-name", default=None, help="run name (default: timestamped)")
    submit.add_argument(
        "--wait",
        action="store_true",
        help="wait for the run to end; exit 1 unless it succeeded, naming the failed step",
    )
    submit.add_argument(
        "--timeout", type=float, default=3600, help="with --wait: give up after this many s (3600)"
    )
    submit.add_argument(
        "--poll-seconds", type=float, default=10, help="with --wait: seconds between checks (10)"
    )
    add_pipeline_options(submit)
    submit.set_defaults(handler=cmd_submit)


def _pipeline_options() -> dict[str, list[tuple[str, type, Any, str]]]:
    """The training pipeline's parameters as options: (parameter, type, default, help), by group.
    Defaults come from the library's dataclasses (the pipeline's signature uses the same)."""
    from stroke_mlops.data.dataset import SplitFractions
    from stroke_mlops.training.evaluate import EvaluationConfig
    from stroke_mlops.training.promotion_gate import GateThresholds

    split, evaluation, gate = SplitFractions(), EvaluationConfig(), GateThresholds()
    return {
        "pipeline parameters": [
            ("seed", int, evaluation.seed, "split salt / CV / model seed"),
            ("validation_fraction", float, split.validation, "share of rows for validation"),
            (
                "test_fraction",
                float,
                split.test,
                "share of rows for the untouched test set, by a hash of the patient id",
            ),
            (
                "precision_floor",
                float,
                evaluation.precision_floor,
                "the threshold is the highest recall whose precision is >= this with "
                f"{evaluation.precision_confidence * 100:.0f}%% confidence (one-sided lower "
                "bound of the out-of-fold precision)",
            ),
            (
                "threshold_margin",
                float,
                evaluation.threshold_margin,
                "extra precision demanded when choosing the threshold",
            ),
        ],
        "promotion gate": [
            ("min_recall", float, gate.min_recall, "lower bound of the repeated-CV recall needed"),
            (
                "min_precision",
                float,
                gate.min_precision,
                "precision the CV and test estimates must not fall clearly below",
            ),
            (
                "min_roc_auc",
                float,
                gate.min_roc_auc,
                "lower bound of the repeated-CV ROC AUC needed",
            ),
            (
                "champion_tolerance",
                float,
                gate.champion_tolerance,
                "non-inferiority margin: how much worse than production (recall, ROC AUC; "
                "paired lower bound) a challenger may be",
            ),
            (
                "max_cv_recall_width",
                float,
                gate.max_cv_recall_width,
                "widest 90%% interval of the repeated-CV recall the gate will judge; wider "
                "means too few strokes",
            ),
        ],
    }


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    for title, options in _pipeline_options().items():
        group = parser.add_argument_group(title)
        for name, kind, default, text in options:
            flag = "--" + name.replace("_", "-")
            group.add_argument(flag, type=kind, default=default, help=f"{text} (%(default)s)")


def pipeline_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The training pipeline's arguments from the options add_pipeline_options added."""
    names = [name for options in _pipeline_options().values() for name, *_ in options]
    return {name: getattr(args, name) for name in names}


def cmd_compile(args: argparse.Namespace) -> int:
    from stroke_mlops.project import import_project_module

    pipeline = import_project_module("pipelines.stroke_pipeline")
    cluster = (
        None
        if args.local
        else pipeline.ClusterConfig(s3_secret=args.s3_secret, s3_endpoint=args.s3_endpoint)
    )
    pipeline.compile_pipeline(args.output, cluster)
    print(f"pipeline written to {args.output} ({'local' if args.local else 'cluster'} wiring)")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from stroke_mlops.logs import configure_logging
    from stroke_mlops.project import import_project_module
    from stroke_mlops.registry.signing import use_local_dev_keys

    configure_logging()
    use_local_dev_keys()  # unless STROKE_MLOPS_SIGNING_KEY / _PUBLIC_KEY name real keys
    runner = import_project_module("pipelines.local_runner")
    print(
        f"Running the pipeline locally ({args.runner} runner): data {args.data}, "
        f"store {args.store}",
        flush=True,
    )
    summary = runner.run_locally(
        data_uri=args.data,
        store_uri=args.store,
        arguments=pipeline_arguments(args),
        runner=args.runner,
        pipeline_root=args.pipeline_root,
        verbose=args.verbose,
    )
    print(summary.render())
    if args.summary_json:
        Path(args.summary_json).write_text(
            json.dumps(
                {
                    "succeeded": summary.succeeded,
                    "seconds": summary.seconds,
                    "run_dir": summary.run_dir,
                    "steps": [vars(s) | {"started": None} for s in summary.steps],
                    "error": summary.error,
                    "outputs": summary.outputs,
                },
                indent=2,
                default=str,
            )
        )
    return EXIT_OK if summary.succeeded else EXIT_FAILED


def cmd_submit(args: argparse.Namespace) -> int:
    from stroke_mlops.project import import_project_module

    cluster_runner = import_project_module("pipelines.cluster_runner")
    run = cluster_runner.submit_run(
        host=args.host,
        data_uri=args.data,
        store_uri=args.store,
        experiment=args.experiment,
        arguments=pipeline_arguments(args),
        run_name=args.run_name,
        ui_url=args.ui_url,
    )
    print(f"run {run.run_id} created in experiment {args.experiment!r}")
    print(f"watch it at {run.url}", flush=True)
    if not args.wait:
        return EXIT_OK
    try:
        outcome = cluster_runner.wait_for_run(
            host=args.host,
            run_id=run.run_id,
            timeout_seconds=args.timeout,
            poll_seconds=args.poll_seconds,
        )
    except cluster_runner.RunWaitTimeoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(outcome.describe(), file=sys.stdout if outcome.succeeded else sys.stderr)
    return EXIT_OK if outcome.succeeded else EXIT_FAILED
