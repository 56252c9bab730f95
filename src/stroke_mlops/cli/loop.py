"""``loop``, ``schedule`` and ``monitor-demo``: monitor-and-retrain, here or on KFP."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stroke_mlops import settings
from stroke_mlops.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    iso_timestamp,
)


def add_commands(commands: Any) -> None:
    """Add the loop, schedule and monitor-demo commands (each parser beside its handler below)."""
    loop = commands.add_parser(
        "loop",
        help="run monitor-and-retrain once locally (kfp.local)",
        description="Collect the window, monitor it, and when the monitor recommends it and no "
        "cool-down holds, retrain through the gated training pipeline. Exit 0 when the run "
        "finished (retrained or not), 1 when a step failed.",
    )
    _add_loop_options(loop)
    loop.add_argument("--until", type=iso_timestamp, help="window end, ISO-8601 (default: now)")
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
    schedule.add_argument("--host", default=settings.KFP_API, help="KFP API")
    schedule.add_argument("--ui-url", help="where you open the KFP UI (default: --host)")
    schedule.add_argument("--experiment", default=settings.KFP_EXPERIMENT, help="KFP experiment")
    schedule.add_argument(
        "--name", default="stroke-mlops-monitor-and-retrain", help="recurring run name"
    )
    schedule.add_argument(
        "--cron",
        default="0 0 * * * *",
        help="6 fields, seconds first: '0 0 * * * *' is hourly at minute 0 (the default)",
    )
    schedule.add_argument(
        "--s3-secret", default=settings.S3_CREDENTIALS_SECRET, help="MinIO credentials Secret"
    )
    schedule.add_argument(
        "--s3-endpoint",
        default=settings.CLUSTER_S3_ENDPOINT,
        help="MinIO endpoint as the pipeline pods see it",
    )
    _add_loop_options(schedule, store=settings.CLUSTER_STORE_URI)
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
        default=None if store is None else settings.CLUSTER_REQUEST_LOG_URI,
        help="request-log objects: a folder or s3://bucket/prefix",
    )
    loop = parser.add_argument_group("loop parameters")
    loop.add_argument(
        "--window-hours",
        type=float,
        default=settings.LOOP.window_hours,
        help="judge the last N hours of requests (%(default)g)",
    )
    loop.add_argument(
        "--min-rows",
        type=int,
        default=settings.LOOP.min_rows,
        help="fewer rows is insufficient data: never drift, never retraining (%(default)s)",
    )
    loop.add_argument(
        "--cooldown-hours",
        type=float,
        default=settings.LOOP.cooldown_hours,
        help="no retraining within N hours of a promotion or of the last attempt (%(default)g)",
    )
    gate = parser.add_argument_group("promotion gate (default: the training pipeline's)")
    gate.add_argument("--min-recall", type=float, default=None)
    gate.add_argument("--min-precision", type=float, default=None)
    gate.add_argument("--min-roc-auc", type=float, default=None)
    gate.add_argument("--champion-tolerance", type=float, default=None)


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
    loop = import_project_module("pipelines.loop_local_runner")
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

    loop = import_project_module("pipelines.loop_schedule")
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
