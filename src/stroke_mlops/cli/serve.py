"""``serve`` and ``predict-demo``: the KServe model server, here."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from stroke_mlops.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
)
from stroke_mlops.serving import defaults as serving_defaults


def add_commands(commands: Any) -> None:
    """Add the serve and predict-demo commands (each parser beside its handler below)."""
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
