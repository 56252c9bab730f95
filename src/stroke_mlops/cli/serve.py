"""``serve`` and ``predict-demo``: the KServe model server, here."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stroke_mlops.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
)


def add_commands(commands: Any) -> None:
    """Add the serve and predict-demo commands (each parser beside its handler below)."""
    serve = commands.add_parser(
        "serve",
        add_help=False,  # --help too goes to the server's own parser
        help="serve a published model with KServe's model server (V1 and V2 protocols); "
        "`stroke-mlops serve --help` lists its options",
        description="Loads a model directory made by publish (checking its signature with the "
        "public key, then every file's sha256, before reading the model) and serves "
        "/v1/models/stroke:predict and /v2/models/stroke/infer.",
    )
    serve.set_defaults(handler=cmd_serve, passes_arguments_on=True)

    demo = commands.add_parser(
        "predict-demo",
        help="serve the store's production model locally and send it an example patient",
    )
    demo.add_argument("--store", required=True, help="model store: a folder or s3://bucket/prefix")
    demo.set_defaults(handler=cmd_predict_demo)


def cmd_serve(args: argparse.Namespace) -> int:
    """The server's own parser (``python -m stroke_mlops.serving.predictor``) reads the options,
    after the local-dev public key, if ``run`` made one here, becomes the default."""
    from stroke_mlops.registry.signing import use_local_dev_keys
    from stroke_mlops.serving import predictor

    use_local_dev_keys(create=False)
    return predictor.main(args.passed_on)


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
