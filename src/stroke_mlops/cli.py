"""The ``stroke-mlops`` command. Each subcommand parses its options and calls the library.

Exit codes: 0 success; 1 the check or run failed (contract broken, gate refused, step failed);
2 bad input (unreadable file, bad option, missing configuration). Known errors are printed as
one line on stderr, never as a traceback. Heavy imports (GX, kfp, kserve) happen inside the
subcommand that needs them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stroke_mlops import __version__
from stroke_mlops.serving import defaults as serving_defaults

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """A problem with the user's input, reported as one line with exit code 2."""


def _known_errors() -> tuple[type[BaseException], ...]:
    from stroke_mlops.data.dataset import RawDataError
    from stroke_mlops.data.suite_file import SuiteError
    from stroke_mlops.deploy.kserve_objects import DeployConfigError
    from stroke_mlops.monitoring.feedback import FeedbackError
    from stroke_mlops.monitoring.monitor import MonitorError
    from stroke_mlops.monitoring.reference import ReferenceError
    from stroke_mlops.monitoring.replay import ReplayError
    from stroke_mlops.monitoring.retraining import RetrainingError
    from stroke_mlops.project import ProjectNotFoundError
    from stroke_mlops.registry.model_dir import ModelDirError
    from stroke_mlops.registry.signing import SignatureError
    from stroke_mlops.registry.uris import StorageError

    return (
        UsageError,
        RawDataError,
        SuiteError,
        ModelDirError,
        SignatureError,
        ProjectNotFoundError,
        StorageError,
        DeployConfigError,
        MonitorError,
        ReferenceError,
        FeedbackError,
        RetrainingError,
        ReplayError,
        FileNotFoundError,
    )


# --- validate / draft-suite -------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from stroke_mlops.data import contract
    from stroke_mlops.data.dataset import read_raw_patients_file

    frame = read_raw_patients_file(args.path)
    report = contract.validate_patients(frame, source=str(args.path))
    if args.html:
        Path(args.html).write_text(report.to_html())
        print(f"report written to {args.html}")
    if report.success:
        print(f"{args.path}: the data contract holds ({len(frame)} rows)")
        return EXIT_OK
    print(f"{args.path}: the data contract FAILED", file=sys.stderr)
    print(report.to_text(), file=sys.stderr)
    return EXIT_FAILED


def cmd_draft_suite(args: argparse.Namespace) -> int:
    from stroke_mlops.data.dataset import read_raw_patients_file
    from stroke_mlops.data.suite_draft import draft_suite
    from stroke_mlops.data.suite_file import write_suite

    reference = Path(args.reference)
    suite = draft_suite(
        read_raw_patients_file(reference), margin=args.margin, source=reference.name
    )
    write_suite(suite, Path(args.output))
    print(f"draft suite written to {args.output}: review it, then commit it as the contract")
    return EXIT_OK


# --- compile / run / submit -------------------------------------------------------------


def _pipeline_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "seed": args.seed,
        "validation_fraction": args.validation_fraction,
        "test_fraction": args.test_fraction,
        "precision_floor": args.precision_floor,
        "threshold_margin": args.threshold_margin,
        "min_recall": args.min_recall,
        "min_precision": args.min_precision,
        "min_roc_auc": args.min_roc_auc,
        "champion_tolerance": args.champion_tolerance,
        "max_cv_recall_width": args.max_cv_recall_width,
    }


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
        arguments=_pipeline_arguments(args),
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
        arguments=_pipeline_arguments(args),
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


# --- serve --------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from stroke_mlops.registry.signing import use_local_dev_keys
    from stroke_mlops.serving import predictor

    use_local_dev_keys(create=False)  # the local-dev public key, if `run` made one here

    argv = ["--model-uri", args.model_uri, "--port", str(args.port), "--host", args.host]
    argv += ["--max-instances", str(args.max_instances)]
    if args.public_key:
        argv += ["--public-key", args.public_key]
    if args.request_log_uri:
        argv += ["--request-log-uri", args.request_log_uri]
    if args.request_log_retention_days is not None:
        argv += ["--request-log-retention-days", str(args.request_log_retention_days)]
    return predictor.main(argv)


def cmd_predict_demo(args: argparse.Namespace) -> int:
    from stroke_mlops.registry.signing import use_local_dev_keys
    from stroke_mlops.serving.demo import DemoError, predict_with_production_model

    use_local_dev_keys(create=False)
    try:
        print(predict_with_production_model(args.store).render())
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# --- deploy -------------------------------------------------------------------------------


def cmd_deploy(args: argparse.Namespace) -> int:
    from stroke_mlops.deploy import kserve_objects
    from stroke_mlops.image import project_image

    service = kserve_objects.build_inference_service(
        args.model_uri,
        name=args.name,
        namespace=args.namespace,
        model_version=args.model_version,
    )
    objects = [kserve_objects.build_serving_runtime(args.image or project_image()), service]
    if args.dry_run:
        print(kserve_objects.render_yaml(objects), end="")
        return EXIT_OK
    if args.apply:
        from stroke_mlops.deploy.live_apply import apply_from_cli

        return apply_from_cli([service], timeout=args.timeout)
    result = kserve_objects.apply_objects([service], namespace=args.namespace)
    print(result.message)
    return EXIT_OK if result.applied else EXIT_FAILED


# --- monitor / feedback -------------------------------------------------------------------


def _timestamp(text: str) -> datetime:
    """An ISO-8601 time for --since/--until (UTC when no offset is given)."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time (e.g. 2026-01-31T00:00:00Z)"
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_monitor(args: argparse.Namespace) -> int:
    from stroke_mlops.monitoring.monitor import DEFAULT_MIN_ROWS, REPORT_FILE, run_monitor

    output = Path(args.output)
    summary = run_monitor(
        args.store,
        args.requests,
        output,
        since=args.since,
        until=args.until,
        min_rows=DEFAULT_MIN_ROWS if args.min_rows is None else args.min_rows,
    )
    drifted = ", ".join(summary.drifted_features) or "none"
    print(
        f"monitor: {summary.recommendation} — {summary.rows} rows of {summary.model_version}, "
        f"drifted features: {drifted}; report {output / REPORT_FILE}"
    )
    return EXIT_OK


def cmd_feedback(args: argparse.Namespace) -> int:
    from stroke_mlops.monitoring.feedback import read_labels_csv, record_feedback

    outcomes = read_labels_csv(Path(args.labels))
    where = record_feedback(args.store, outcomes)
    positives = sum(stroke for _, stroke in outcomes)
    print(f"feedback: recorded {len(outcomes)} outcomes ({positives} strokes) in {where}")
    return EXIT_OK


# --- models -------------------------------------------------------------------------------


def cmd_models_list(args: argparse.Namespace) -> int:
    from stroke_mlops.registry.store import open_store
    from stroke_mlops.registry.versions import describe_versions, render_table

    store = open_store(args.store)
    summaries = describe_versions(store)
    if not summaries:
        print(f"{store.uri}: no published versions")
        return EXIT_OK
    print(render_table(summaries))
    if not any(s.is_production for s in summaries):
        print("(nothing is in production yet)")
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    from stroke_mlops.registry.store import open_store
    from stroke_mlops.registry.versions import describe_version

    store = open_store(args.store)
    summary = describe_version(store, args.version, production=store.production())
    print(f"version:     {summary.version}{'  (production)' if summary.is_production else ''}")
    print(f"uri:         {summary.uri}")
    print(f"created:     {summary.created_at or '-'}")
    print(f"model:       {summary.selected_model or '-'}")
    print(f"threshold:   {summary.threshold if summary.threshold is not None else '-'}")
    for name, value in summary.test_metrics.items():
        print(f"test {name + ':':<8}{value:.4f}")
    print(f"gate:        {summary.gate or '-'}")
    if args.card and summary.model_card:
        print("\n" + summary.model_card.rstrip())
    return EXIT_OK


def cmd_models_rollback(args: argparse.Namespace) -> int:
    import os

    from stroke_mlops.deploy import kserve_objects
    from stroke_mlops.registry.store import open_store
    from stroke_mlops.registry.versions import rollback

    store = open_store(args.store)
    pointer, previous = rollback(store, args.version)
    print(f"production: {previous} -> {pointer.version} ({pointer.uri})")
    service = kserve_objects.build_inference_service(
        pointer.uri, name=args.name, namespace=args.namespace, model_version=pointer.version
    )
    if args.apply:
        from stroke_mlops.deploy.live_apply import apply_from_cli

        return apply_from_cli([service])
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        print(
            "not redeployed (not inside a cluster); to serve it now: stroke-mlops deploy "
            f"--model-uri {pointer.uri} --model-version {pointer.version} --dry-run "
            "| kubectl apply -f -"
        )
        return EXIT_OK
    result = kserve_objects.apply_objects([service], namespace=args.namespace)
    print(result.message, file=sys.stdout if result.applied else sys.stderr)
    return EXIT_OK if result.applied else EXIT_FAILED


# --- the loop: loop / schedule / monitor-demo --------------------------------------------


def _loop_arguments(args: argparse.Namespace) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "window_hours": args.window_hours,
        "min_rows": args.min_rows,
        "cooldown_hours": args.cooldown_hours,
    }
    for name in ("min_recall", "min_precision", "min_roc_auc", "champion_tolerance"):
        if getattr(args, name) is not None:
            arguments[name] = getattr(args, name)
    return arguments


def cmd_loop(args: argparse.Namespace) -> int:
    from stroke_mlops.logs import configure_logging
    from stroke_mlops.project import import_project_module

    configure_logging()
    loop = import_project_module("pipelines.monitor_and_retrain")
    arguments = _loop_arguments(args)
    if args.until:
        arguments["until"] = args.until.isoformat()
    summary = loop.run_loop_locally(
        store_uri=args.store,
        requests_uri=args.requests,
        arguments=arguments,
        runner=args.runner,
        pipeline_root=args.pipeline_root,
    )
    print("\n" + summary.render())
    return EXIT_OK if summary.succeeded else EXIT_FAILED


def cmd_schedule(args: argparse.Namespace) -> int:
    from stroke_mlops.project import import_project_module

    loop = import_project_module("pipelines.monitor_and_retrain")
    stroke_pipeline = import_project_module("pipelines.stroke_pipeline")
    try:
        scheduled = loop.schedule_loop(
            host=args.host,
            store_uri=args.store,
            requests_uri=args.requests,
            experiment=args.experiment,
            cron=args.cron,
            name=args.name,
            arguments=_loop_arguments(args),
            cluster=stroke_pipeline.ClusterConfig(
                s3_secret=args.s3_secret, s3_endpoint=args.s3_endpoint
            ),
            ui_url=args.ui_url,
        )
    except ValueError as error:
        raise UsageError(str(error)) from error
    print(
        f"recurring run {scheduled.recurring_run_id} ({scheduled.name!r}) created in experiment "
        f"{args.experiment!r}: cron {scheduled.cron!r}, one run at a time, no catch-up, "
        "caching off"
    )
    print(f"see it at {scheduled.url}")
    return EXIT_OK


def cmd_monitor_demo(args: argparse.Namespace) -> int:
    from stroke_mlops.logs import configure_logging
    from stroke_mlops.project import import_project_module

    configure_logging("WARNING")  # the demo prints its own few lines; kfp.local's go to files
    demo = import_project_module("pipelines.monitor_demo")
    try:
        demo.run_monitor_demo(
            data_path=Path(args.data),
            store_uri=args.store,
            work_dir=Path(args.work_dir),
            rows=args.rows,
        )
    except demo.MonitorDemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


# --- parser -------------------------------------------------------------------------------


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    # Defaults come from the library's dataclasses (the pipeline's signature uses the same).
    from stroke_mlops.data.dataset import SplitFractions
    from stroke_mlops.training.evaluate import EvaluationConfig
    from stroke_mlops.training.promotion_gate import GateThresholds

    split, evaluation, thresholds = SplitFractions(), EvaluationConfig(), GateThresholds()
    group = parser.add_argument_group("pipeline parameters")
    group.add_argument(
        "--seed",
        type=int,
        default=evaluation.seed,
        help="split salt / CV / model seed (%(default)s)",
    )
    group.add_argument(
        "--validation-fraction",
        type=float,
        default=split.validation,
        help="share of rows for validation (%(default)s)",
    )
    group.add_argument(
        "--test-fraction",
        type=float,
        default=split.test,
        help="share of rows for the untouched test set, by a hash of the patient id (%(default)s)",
    )
    group.add_argument(
        "--precision-floor",
        type=float,
        default=evaluation.precision_floor,
        help="the threshold is the highest recall at precision >= this (%(default)s)",
    )
    group.add_argument(
        "--threshold-margin",
        type=float,
        default=evaluation.threshold_margin,
        help="extra precision demanded when choosing the threshold (%(default)s)",
    )
    gate = parser.add_argument_group("promotion gate")
    gate.add_argument(
        "--min-recall",
        type=float,
        default=thresholds.min_recall,
        help="lower bound of the repeated-CV recall needed (%(default)s)",
    )
    gate.add_argument(
        "--min-precision",
        type=float,
        default=thresholds.min_precision,
        help="precision the CV and test estimates must not fall clearly below (%(default)s)",
    )
    gate.add_argument(
        "--min-roc-auc",
        type=float,
        default=thresholds.min_roc_auc,
        help="lower bound of the repeated-CV ROC AUC needed (%(default)s)",
    )
    gate.add_argument(
        "--champion-tolerance",
        type=float,
        default=thresholds.champion_tolerance,
        help="non-inferiority margin: how much worse than production (recall, ROC AUC; "
        "paired lower bound) a challenger may be (%(default)s)",
    )
    gate.add_argument(
        "--max-cv-recall-width",
        type=float,
        default=thresholds.max_cv_recall_width,
        help="widest 90%% interval of the repeated-CV recall the gate will judge; wider "
        "means too few strokes (%(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stroke-mlops",
        description="Stroke risk model: data contract, KFP pipeline, model store, KServe.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a raw CSV against the data contract",
        description="Exit 0 when the contract holds, 1 listing every "
        "failed expectation, 2 when the file is not a readable CSV.",
    )
    validate.add_argument("path", help="the raw stroke CSV file")
    validate.add_argument("--html", metavar="FILE", help="also write the HTML report here")
    validate.set_defaults(handler=cmd_validate)

    draft = commands.add_parser(
        "draft-suite", help="draft an expectation suite from a reference file"
    )
    draft.add_argument("reference", help="a raw CSV that is known to be good")
    draft.add_argument("--output", required=True, help="where to write the draft suite JSON")
    draft.add_argument(
        "--margin",
        type=float,
        default=0.1,
        help="widen observed numeric ranges by this share of their span (0.1)",
    )
    draft.set_defaults(handler=cmd_draft_suite)

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
        default="stroke-mlops-s3",
        help="Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    )
    compile_.add_argument(
        "--s3-endpoint",
        default="http://minio.stroke-mlops.svc.cluster.local:9000",
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
    _add_pipeline_options(run)
    run.set_defaults(handler=cmd_run)

    submit = commands.add_parser("submit", help="create a run on a KFP cluster (needs a checkout)")
    submit.add_argument(
        "--host",
        default="http://127.0.0.1:8888",
        help="KFP API (e.g. a port-forward of ml-pipeline-ui)",
    )
    submit.add_argument(
        "--data",
        default="s3://stroke-mlops/data/healthcare-dataset-stroke-data.csv",
        help="raw CSV URI as the pipeline pods see it",
    )
    submit.add_argument("--store", default="s3://stroke-mlops/models", help="model store URI")
    submit.add_argument("--experiment", default="stroke-mlops", help="KFP experiment name")
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
    _add_pipeline_options(submit)
    submit.set_defaults(handler=cmd_submit)

    serve = commands.add_parser(
        "serve",
        help="serve a published model with KServe's model server (V1 and V2 protocols)",
        description="Loads a model directory made by publish (checking its signature with the "
        "public key, then every file's sha256, before reading the model) and serves "
        "/v1/models/stroke:predict and /v2/models/stroke/infer.",
    )
    serve.add_argument(
        "--model-uri",
        default="/mnt/models",
        help="a model folder or an s3:// version URI (default /mnt/models, where "
        "KServe's storage initializer puts storageUri)",
    )
    serve.add_argument(
        "--public-key",
        help="PEM public key the model's signature must verify with (default "
        "$STROKE_MLOPS_SIGNING_PUBLIC_KEY, else the local-dev key in .local-dev-keys/)",
    )
    serve.add_argument("--port", type=int, default=8080, help="HTTP port (8080)")
    serve.add_argument(
        "--host",
        default=serving_defaults.DEFAULT_HOST,
        help=f"address to bind ({serving_defaults.DEFAULT_HOST}; {serving_defaults.POD_HOST} "
        "to listen on every interface, as the image does)",
    )
    serve.add_argument(
        "--max-instances",
        type=int,
        default=serving_defaults.MAX_INSTANCES,
        help=f"most instances in one request ({serving_defaults.MAX_INSTANCES}); the body size "
        "limit is derived from it",
    )
    serve.add_argument(
        "--request-log-uri",
        help="write full request records (features included) as private JSON-lines batches to "
        "this folder or s3://bucket/prefix; stdout gets metadata only",
    )
    serve.add_argument(
        "--request-log-retention-days",
        type=int,
        default=None,
        help="delete request-log day partitions older than this many days",
    )
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser(
        "predict-demo",
        help="serve the store's production model locally and send it an example patient",
    )
    demo.add_argument("--store", required=True, help="model store: a folder or s3://bucket/prefix")
    demo.set_defaults(handler=cmd_predict_demo)

    deploy_ = commands.add_parser(
        "deploy",
        help="build the KServe ServingRuntime + InferenceService for a model version",
        description="With --dry-run, print the YAML (pipe it to `kubectl apply -f -`). Without, "
        "apply the InferenceService when running inside a cluster with permission.",
    )
    deploy_.add_argument(
        "--model-uri",
        required=True,
        help="the version directory, e.g. s3://stroke-mlops/models/stroke/versions/V/",
    )
    deploy_.add_argument("--model-version", help="recorded as an annotation on the service")
    deploy_.add_argument("--name", default="stroke", help="InferenceService name (stroke)")
    deploy_.add_argument("--namespace", default="stroke-mlops", help="namespace (stroke-mlops)")
    deploy_.add_argument("--image", help="serving image (default: the project image tag)")
    deploy_.add_argument("--dry-run", action="store_true", help="print the YAML, apply nothing")
    deploy_.add_argument(
        "--apply",
        action="store_true",
        help="server-side apply the InferenceService to the current kubeconfig and wait for "
        "KServe to reconcile it (exit 1 with the API server's or KServe's message if refused)",
    )
    deploy_.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for reconcile (120)"
    )
    deploy_.set_defaults(handler=cmd_deploy)

    monitor = commands.add_parser(
        "monitor",
        help="judge a window of logged requests against the production model's reference set",
        description="Writes DIR/summary.json and DIR/report.html. Exit 0 whenever a report was "
        "written (drift or not: read recommendation), 2 when an input cannot be read.",
    )
    monitor.add_argument(
        "--store", required=True, help="model store: a folder or s3://bucket/prefix"
    )
    monitor.add_argument(
        "--requests", required=True, help="request-log objects: a folder or s3://bucket/prefix"
    )
    monitor.add_argument("--output", required=True, metavar="DIR", help="where to write the report")
    monitor.add_argument("--since", type=_timestamp, help="window start, ISO-8601 (inclusive)")
    monitor.add_argument("--until", type=_timestamp, help="window end, ISO-8601 (exclusive)")
    monitor.add_argument(
        "--min-rows",
        type=int,
        default=None,
        help="fewer rows than this is insufficient data, never drift (default 200)",
    )
    monitor.set_defaults(handler=cmd_monitor)

    feedback = commands.add_parser(
        "feedback",
        help="record observed outcomes (stroke 0/1) of logged requests in the store",
        description="FILE is a CSV with columns request_id,stroke. Every row is checked first; "
        "bad rows are named and nothing is recorded.",
    )
    feedback.add_argument(
        "--store", required=True, help="model store: a folder or s3://bucket/prefix"
    )
    feedback.add_argument("--labels", required=True, metavar="FILE", help="CSV request_id,stroke")
    feedback.set_defaults(handler=cmd_feedback)
    models = commands.add_parser(
        "models",
        help="list the store's versions, show one, roll production back",
        description="Versions are read from the store and verified (sha256) before use.",
    )
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    list_ = model_commands.add_parser(
        "list", help="every version with its test metrics and gate result; * = production"
    )
    show = model_commands.add_parser("show", help="one version in detail")
    show.add_argument("version", help="a version name, as `models list` prints it")
    show.add_argument("--card", action="store_true", help="also print the model card")
    back = model_commands.add_parser(
        "rollback",
        help="point production back at an earlier version (one atomic pointer write)",
        description="Inside a cluster the InferenceService is redeployed with that version; "
        "outside one the command to do so is printed.",
    )
    back.add_argument("version", help="the earlier version to put back in production")
    back.add_argument("--name", default="stroke", help="InferenceService name (stroke)")
    back.add_argument("--namespace", default="stroke-mlops", help="namespace (stroke-mlops)")
    back.add_argument(
        "--apply", action="store_true", help="redeploy through the current kubeconfig (as deploy)"
    )
    for sub, handler in ((list_, cmd_models_list), (show, cmd_models_show),
                         (back, cmd_models_rollback)):  # fmt: skip
        sub.add_argument(
            "--store", required=True, help="model store: a folder or s3://bucket/prefix"
        )
        sub.set_defaults(handler=handler)

    _add_loop_commands(commands)
    return parser


def _add_loop_options(parser: argparse.ArgumentParser, *, store: str | None = None) -> None:
    where = parser.add_argument_group("what the loop watches")
    where.add_argument(
        "--store",
        required=store is None,
        default=store,
        help="model store URI" + (f" ({store})" if store else ""),
    )
    where.add_argument(
        "--requests",
        required=store is None,
        default=None if store is None else "s3://stroke-mlops/request-logs",
        help="request-log objects: a folder or s3://bucket/prefix",
    )
    loop = parser.add_argument_group("loop parameters")
    loop.add_argument(
        "--window-hours", type=float, default=24.0, help="judge the last N hours of requests (24)"
    )
    loop.add_argument(
        "--min-rows",
        type=int,
        default=200,
        help="fewer rows is insufficient data: never drift, never retraining (200)",
    )
    loop.add_argument(
        "--cooldown-hours",
        type=float,
        default=24.0,
        help="no retraining within N hours of a promotion or of the last attempt (24)",
    )
    gate = parser.add_argument_group("promotion gate (default: the training pipeline's)")
    gate.add_argument("--min-recall", type=float, default=None)
    gate.add_argument("--min-precision", type=float, default=None)
    gate.add_argument("--min-roc-auc", type=float, default=None)
    gate.add_argument("--champion-tolerance", type=float, default=None)


def _add_loop_commands(commands: Any) -> None:
    loop = commands.add_parser(
        "loop",
        help="run monitor-and-retrain once locally (kfp.local)",
        description="Collect the window, monitor it, and when the monitor recommends it and no "
        "cool-down holds, retrain through the gated training pipeline. Exit 0 when the run "
        "finished (retrained or not), 1 when a step failed.",
    )
    _add_loop_options(loop)
    loop.add_argument("--until", type=_timestamp, help="window end, ISO-8601 (default: now)")
    loop.add_argument(
        "--runner", choices=("subprocess", "docker"), default="subprocess", help="kfp.local runner"
    )
    loop.add_argument("--pipeline-root", default="local_outputs", help="kfp.local artifacts")
    loop.set_defaults(handler=cmd_loop)

    schedule = commands.add_parser(
        "schedule",
        help="create a KFP recurring run of monitor-and-retrain on a cluster",
        description="Compiles the loop with the cluster wiring and creates a recurring run: "
        "6-field cron (seconds first), at most one run at a time, no catch-up, caching off.",
    )
    schedule.add_argument("--host", default="http://127.0.0.1:8888", help="KFP API")
    schedule.add_argument("--ui-url", help="where you open the KFP UI (default: --host)")
    schedule.add_argument("--experiment", default="stroke-mlops", help="KFP experiment name")
    schedule.add_argument(
        "--name", default="stroke-mlops-monitor-and-retrain", help="recurring run name"
    )
    schedule.add_argument(
        "--cron",
        default="0 0 * * * *",
        help="6 fields, seconds first: '0 0 * * * *' is hourly at minute 0 (the default)",
    )
    schedule.add_argument("--s3-secret", default="stroke-mlops-s3", help="MinIO credentials Secret")
    schedule.add_argument(
        "--s3-endpoint",
        default="http://minio.stroke-mlops.svc.cluster.local:9000",
        help="MinIO endpoint as the pipeline pods see it",
    )
    _add_loop_options(schedule, store="s3://stroke-mlops/models")
    schedule.set_defaults(handler=cmd_schedule)

    demo = commands.add_parser(
        "monitor-demo",
        help="serve production with request logging, replay an undrifted then a drifted window, "
        "and show the monitor's verdicts and the retraining that follows",
    )
    demo.add_argument("--data", required=True, help="the raw stroke CSV (rows to replay)")
    demo.add_argument("--store", required=True, help="model store: a folder or s3://bucket/prefix")
    demo.add_argument(
        "--work-dir", default="outputs/monitor-demo", help="request logs and kfp.local logs"
    )
    demo.add_argument("--rows", type=int, default=300, help="rows per window (300)")
    demo.set_defaults(handler=cmd_monitor_demo)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _known_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
