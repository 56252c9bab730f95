"""``monitor`` and ``feedback``: judging logged requests, recording outcomes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from stroke_mlops import settings
from stroke_mlops.cli.common import (
    EXIT_OK,
    UsageError,
    iso_timestamp,
)


def add_commands(commands: Any) -> None:
    """Add the monitor and feedback commands (each parser beside its handler below)."""
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
    monitor.add_argument("--since", type=iso_timestamp, help="window start, ISO-8601 (inclusive)")
    monitor.add_argument("--until", type=iso_timestamp, help="window end, ISO-8601 (exclusive)")
    monitor.add_argument(
        "--min-rows",
        type=int,
        default=None,
        help="fewer rows than this is insufficient data, never drift "
        f"(default {settings.LOOP.min_rows})",
    )
    monitor.add_argument(
        "--pushgateway",
        metavar="URL",
        default=os.environ.get(settings.PUSHGATEWAY_URL_ENV) or None,
        help="push the verdict, drift statistics and realised recall as Prometheus gauges to "
        f"this Pushgateway (default ${settings.PUSHGATEWAY_URL_ENV}); a failed push is reported "
        "in one line and the report is kept",
    )
    monitor.add_argument(
        "--push-timeout-s",
        type=float,
        default=None,
        help="give up a push after this many seconds without progress (default 10)",
    )
    monitor.set_defaults(handler=cmd_monitor)

    feedback = commands.add_parser(
        "feedback",
        help="record observed outcomes (stroke 0/1) of logged predictions in the store",
        description="FILE is a CSV with columns prediction_id,stroke: the id the predictor "
        "returned (x-prediction-id header, prediction_id in a V1 body; '<id>:<row>' for a batch "
        "row). Every row is checked first; bad rows are named and nothing is recorded. An id "
        "given both outcomes, in the file or against the store, is refused; a repeated outcome "
        "is stored once.",
    )
    feedback.add_argument(
        "--store", required=True, help="model store: a folder or s3://bucket/prefix"
    )
    feedback.add_argument(
        "--labels", required=True, metavar="FILE", help="CSV prediction_id,stroke"
    )
    feedback.add_argument(
        "--requests",
        help="request-log objects to check the ids against (reports matched and unknown ids)",
    )
    feedback.add_argument(
        "--strict", action="store_true", help="refuse the file if any id is not in --requests"
    )
    feedback.set_defaults(handler=cmd_feedback)


def cmd_monitor(args: argparse.Namespace) -> int:
    from stroke_mlops.monitoring.monitor import DEFAULT_MIN_ROWS, REPORT_FILE, run_monitor
    from stroke_mlops.monitoring.prometheus_push import (
        DEFAULT_PUSH_TIMEOUT_S,
        PushError,
        check_gateway_url,
        push_summary,
    )

    output = Path(args.output)
    timeout_s = DEFAULT_PUSH_TIMEOUT_S if args.push_timeout_s is None else args.push_timeout_s
    if not timeout_s > 0:
        raise UsageError(f"--push-timeout-s must be > 0; got {args.push_timeout_s}")
    if args.pushgateway is not None:
        try:
            check_gateway_url(args.pushgateway)
        except ValueError as error:
            raise UsageError(f"--pushgateway: {error}") from None
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output}: exists and is not a folder")
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise UsageError(f"--since {args.since} is not before --until {args.until}")
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
    if args.pushgateway is not None:
        try:
            push_summary(summary, args.pushgateway, timeout_s=timeout_s)
        except PushError as error:
            print(f"monitor: metrics not pushed (the report is kept): {error}", file=sys.stderr)
        else:
            print(f"monitor: metrics pushed to {args.pushgateway}")
    return EXIT_OK


def cmd_feedback(args: argparse.Namespace) -> int:
    from stroke_mlops.monitoring.feedback import record_labels_file

    report = record_labels_file(
        args.store, Path(args.labels), requests_uri=args.requests, strict=args.strict
    )
    print(f"feedback: {report.line()}")
    return EXIT_OK
