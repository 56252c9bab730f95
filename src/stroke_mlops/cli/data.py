"""``validate`` and ``draft-suite``: the data contract."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stroke_mlops.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
)


def add_commands(commands: Any) -> None:
    """Add the validate and draft-suite commands (each parser beside its handler below)."""
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
