"""``compare``: two model versions side by side on the same logged requests and outcomes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stroke_mlops.cli.common import EXIT_OK, UsageError, iso_timestamp, one_line_errors

DEFAULT_OUTPUT = "compare.json"


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from error
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"{value} is not in (0, 0.5)")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a whole number") from error
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def add_commands(commands: Any) -> None:
    """Add the compare command (its parser beside its handler below)."""
    from stroke_mlops.monitoring.comparison_rule import DecisionRule

    rule = DecisionRule()
    compare = commands.add_parser(
        "compare",
        help="compare a challenger with the champion on logged requests and feedback labels",
        description="Joins the request log with the store's feedback labels (on the predictor's "
        "prediction_id) and reports, per version, rows, positive-decision rate, realised recall "
        "and precision (Wilson 95 % intervals), and a verdict: challenger_better, not_worse, "
        "worse or too_few_labels (the rule: README, 'Comparing two versions'). Writes the JSON "
        "that `models promote` and `models rollback` read. Exit 0 whenever the comparison was "
        "written (read the verdict), 2 with one line when an argument or input is bad.",
    )
    one_line_errors(compare)
    compare.add_argument(
        "--store", required=True, help="model store: a folder or s3://bucket/prefix"
    )
    compare.add_argument(
        "--requests", required=True, help="request-log objects: a folder or s3://bucket/prefix"
    )
    compare.add_argument(
        "--champion", required=True, help="the version judged against (production, to promote)"
    )
    compare.add_argument("--challenger", required=True, help="the version being judged")
    compare.add_argument(
        "--output", default=DEFAULT_OUTPUT, metavar="FILE", help="the JSON file (%(default)s)"
    )
    compare.add_argument("--since", type=iso_timestamp, help="window start, ISO-8601 (inclusive)")
    compare.add_argument("--until", type=iso_timestamp, help="window end, ISO-8601 (exclusive)")
    compare.add_argument(
        "--margin",
        type=_share,
        default=rule.margin,
        help="non-inferiority margin on recall, absolute (%(default)s)",
    )
    compare.add_argument(
        "--alpha",
        type=_share,
        default=rule.alpha,
        help="level of each one-sided test (%(default)s)",
    )
    compare.add_argument(
        "--min-labelled-strokes",
        type=_count,
        metavar="N",
        default=rule.min_labelled_positives,
        help="labelled strokes each version needs before any verdict (%(default)s)",
    )
    compare.set_defaults(handler=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from stroke_mlops.monitoring.compare import run_compare
    from stroke_mlops.monitoring.comparison_rule import DecisionRule
    from stroke_mlops.registry.store_base import check_version_name
    from stroke_mlops.registry.uris import StorageError

    output = Path(args.output)
    if output.is_dir():
        raise UsageError(f"--output {output}: is a folder; name a file")
    if not output.parent.is_dir():
        raise UsageError(f"--output {output}: its folder does not exist")
    if args.since is not None and args.until is not None and args.since >= args.until:
        raise UsageError(f"--since {args.since} is not before --until {args.until}")
    for option in ("champion", "challenger"):
        try:
            check_version_name(getattr(args, option))
        except StorageError as error:
            raise UsageError(f"--{option}: {error}") from None
    if args.champion == args.challenger:
        raise UsageError(f"--champion and --challenger are both {args.champion}")
    comparison = run_compare(
        args.store,
        args.requests,
        args.champion,
        args.challenger,
        since=args.since,
        until=args.until,
        rule=DecisionRule(
            alpha=args.alpha, margin=args.margin, min_labelled_positives=args.min_labelled_strokes
        ),
    )
    output.write_text(comparison.to_json())
    for line in comparison.lines():
        print(line)
    print(f"  written to {output}")
    return EXIT_OK
