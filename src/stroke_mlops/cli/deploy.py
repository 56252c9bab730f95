"""``deploy``: the KServe ServingRuntime and InferenceService of a model version."""

from __future__ import annotations

import argparse
from typing import Any

from stroke_mlops import settings
from stroke_mlops.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
)


def add_commands(commands: Any) -> None:
    """Add the deploy command (each parser beside its handler below)."""
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
    deploy_.add_argument("--namespace", default=settings.NAMESPACE, help="namespace (%(default)s)")
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


def cmd_deploy(args: argparse.Namespace) -> int:
    from stroke_mlops.deploy import kserve_objects
    from stroke_mlops.image import project_image

    service = kserve_objects.build_inference_service(
        args.model_uri,
        name=args.name,
        namespace=args.namespace,
        model_version=args.model_version,
    )
    # The ServingRuntime is namespaced: the service finds it only in its own namespace.
    runtime = kserve_objects.build_serving_runtime(
        args.image or project_image(), namespace=args.namespace
    )
    objects = [runtime, service]
    if args.dry_run:
        print(kserve_objects.render_yaml(objects), end="")
        return EXIT_OK
    if args.apply:
        from stroke_mlops.deploy.live_apply import apply_from_cli

        return apply_from_cli([service], timeout=args.timeout)
    result = kserve_objects.apply_objects([service], namespace=args.namespace)
    print(result.message)
    return EXIT_OK if result.applied else EXIT_FAILED
