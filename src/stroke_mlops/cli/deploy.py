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
    split = deploy_.add_argument_group(
        "two versions side by side",
        "With --challenger-uri: one InferenceService per version (NAME and NAME-challenger) and "
        "a KServe InferenceGraph NAME-split whose Splitter sends --challenger-percent of the "
        "requests to the challenger (KServe's native split in Standard mode).",
    )
    split.add_argument("--challenger-uri", help="the challenger's version directory")
    split.add_argument(
        "--challenger-percent",
        type=int,
        help="share of requests for the challenger, 1 to 99 (needs --challenger-uri)",
    )
    split.add_argument("--challenger-version", help="recorded as the challenger's annotation")
    deploy_.set_defaults(handler=cmd_deploy)


def _served_objects(args: argparse.Namespace) -> list[Any]:
    """One InferenceService, or two and the InferenceGraph splitting traffic between them."""
    from stroke_mlops.deploy import kserve_objects, traffic_split

    split_options = (args.challenger_percent, args.challenger_version)
    if args.challenger_uri is None:
        if any(option is not None for option in split_options):
            raise kserve_objects.DeployConfigError(
                "--challenger-percent and --challenger-version need --challenger-uri"
            )
        return [
            kserve_objects.build_inference_service(
                args.model_uri,
                name=args.name,
                namespace=args.namespace,
                model_version=args.model_version,
            )
        ]
    if args.challenger_percent is None:
        raise kserve_objects.DeployConfigError("--challenger-uri needs --challenger-percent")
    return traffic_split.build_split(
        args.model_uri,
        args.challenger_uri,
        args.challenger_percent,
        name=args.name,
        namespace=args.namespace,
        champion_version=args.model_version,
        challenger_version=args.challenger_version,
    )


def cmd_deploy(args: argparse.Namespace) -> int:
    from stroke_mlops.deploy import kserve_objects
    from stroke_mlops.image import project_image

    served = _served_objects(args)  # a bad setting: DeployConfigError, exit 2 (cli.main)
    # The ServingRuntime is namespaced: the service finds it only in its own namespace.
    runtime = kserve_objects.build_serving_runtime(
        args.image or project_image(), namespace=args.namespace
    )
    objects = [runtime, *served]
    if args.dry_run:
        print(kserve_objects.render_yaml(objects), end="")
        return EXIT_OK
    if args.apply:
        from stroke_mlops.deploy.live_apply import apply_from_cli

        return apply_from_cli(served, timeout=args.timeout)
    result = kserve_objects.apply_objects(served, namespace=args.namespace)
    print(result.message)
    return EXIT_OK if result.applied else EXIT_FAILED
