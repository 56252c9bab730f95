"""``app``: the clinician's page and the operations view (``pip install stroke-mlops[app]``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stroke_mlops.cli.common import EXIT_OK, UsageError

DEFAULT_APP_PORT = 8501


def add_commands(commands: Any) -> None:
    """Add the app command."""
    app = commands.add_parser(
        "app",
        help="serve the patient page and the operations view (calls the predictor over HTTP)",
        description="A web page: a patient form built from the production model's data contract, "
        "the risk, the decision against the threshold and each input's contribution (from the "
        "predictor's V1 :explain), and an operations view (production version and model card, "
        "version history with gate decisions, latest monitor report and realised recall). "
        "Needs the app extra: pip install 'stroke-mlops[app]'.",
    )
    app.add_argument(
        "--predictor-url",
        required=True,
        metavar="URL",
        help="the predictor's base URL, e.g. http://127.0.0.1:8080",
    )
    app.add_argument("--store", required=True, metavar="STORE_URI", help="the model store")
    app.add_argument(
        "--reports",
        type=Path,
        metavar="DIR",
        help="folder of monitor outputs (summary.json, report.html); the newest is shown",
    )
    app.add_argument(
        "--port", type=int, default=DEFAULT_APP_PORT, help=f"HTTP port ({DEFAULT_APP_PORT})"
    )
    app.add_argument(
        "--host",
        default="127.0.0.1",
        help="bind address (127.0.0.1; the cluster's Deployment passes 0.0.0.0)",
    )
    app.set_defaults(handler=cmd_app)


def cmd_app(args: argparse.Namespace) -> int:
    try:
        import jinja2  # noqa: F401
        import uvicorn

        from stroke_mlops.app.web import create_app
    except ImportError as error:
        raise UsageError(
            f"the app needs its extra ({error.name} is missing): pip install 'stroke-mlops[app]'"
        ) from error
    try:
        application = create_app(args.predictor_url, args.store, args.reports)
    except ValueError as error:
        raise UsageError(str(error)) from error
    print(f"stroke-mlops app on http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(application, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK
