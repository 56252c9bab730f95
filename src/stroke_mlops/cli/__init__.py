"""The ``stroke-mlops`` command. Each subcommand parses its options and calls the library.

Exit codes: 0 success; 1 the check or run failed (contract broken, gate refused, step failed);
2 bad input (unreadable file, bad option, missing configuration). Known errors are printed as
one line on stderr, never as a traceback. Heavy imports (GX, kfp, kserve) happen inside the
subcommand that needs them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stroke_mlops import __version__
from stroke_mlops.cli import app, compare, data, deploy, loop, models, monitor, pipeline, serve
from stroke_mlops.cli.common import EXIT_BAD_INPUT, known_errors

COMMAND_GROUPS = (
    data,
    pipeline,
    serve,
    app,
    deploy,
    monitor,
    compare,
    models,
    loop,
)  # the order of --help


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stroke-mlops",
        description="Stroke risk model: data contract, KFP pipeline, model store, KServe.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for group in COMMAND_GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, passed_on = parser.parse_known_args(argv)
    if passed_on and not getattr(args, "passes_arguments_on", False):
        parser.error(f"unrecognized arguments: {' '.join(passed_on)}")
    args.passed_on = passed_on  # `serve`: the server's own options
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except known_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
