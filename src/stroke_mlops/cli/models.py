"""``models list|show|rollback``: the store's versions and production pointer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from stroke_mlops import settings
from stroke_mlops.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
)


def add_commands(commands: Any) -> None:
    """Add the models list, show and rollback commands (each parser beside its handler below)."""
    models = commands.add_parser(
        "models",
        help="list the store's versions, show one, roll production back",
        description="Versions are read from the store and verified (sha256) before use.",
    )
    model_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    list_ = model_commands.add_parser(
        "list", help="every version with its test metrics and gate result; * = production"
    )
    show = model_commands.add_parser("show", help="one version in detail")
    show.add_argument("version", help="a version name, as `models list` prints it")
    show.add_argument("--card", action="store_true", help="also print the model card")
    back = model_commands.add_parser(
        "rollback",
        help="point production back at an earlier version (one atomic pointer write)",
        description="Inside a cluster the InferenceService is redeployed with that version; "
        "outside one the command to do so is printed.",
    )
    back.add_argument("version", help="the earlier version to put back in production")
    back.add_argument(
        "--comparison",
        metavar="FILE",
        help="a `stroke-mlops compare` JSON as the reason: refused (exit 1) unless its verdict "
        "is worse, its champion is VERSION and its challenger is what production serves now",
    )
    promote = model_commands.add_parser(
        "promote",
        help="promote a challenger on a comparison's evidence (one compare-and-swap write)",
        description="Refused (exit 1, production unchanged) unless FILE, written by "
        "`stroke-mlops compare` on this store, judged exactly this challenger against the "
        "production version as challenger_better or not_worse, and that champion is still in "
        "production (the same promotion). Versions published by the pipeline are promoted by "
        "its own gate; this is the way to promote after a traffic split.",
    )
    promote.add_argument("version", help="the challenger to put in production")
    promote.add_argument(
        "--comparison", required=True, metavar="FILE", help="the `stroke-mlops compare` JSON"
    )
    for sub in (back, promote):
        sub.add_argument("--name", default="stroke", help="InferenceService name (stroke)")
        sub.add_argument("--namespace", default=settings.NAMESPACE, help="namespace (%(default)s)")
        sub.add_argument(
            "--apply",
            action="store_true",
            help="redeploy through the current kubeconfig (as deploy)",
        )
    repair = model_commands.add_parser(
        "repair-pointer",
        help="rewrite a broken production pointer to a verified version",
        description="Only for a pointer that is unreadable, damaged or names a missing version "
        "(`models list` says so). The version is downloaded and its checksums and signature "
        "verified first ($STROKE_MLOPS_SIGNING_PUBLIC_KEY); the write is one atomic "
        "compare-and-swap. A sound pointer is refused: use rollback.",
    )
    repair.add_argument("version", help="the version production should be")
    for sub, handler in ((list_, cmd_models_list), (show, cmd_models_show),
                         (back, cmd_models_rollback), (promote, cmd_models_promote),
                         (repair, cmd_models_repair)):  # fmt: skip
        sub.add_argument(
            "--store", required=True, help="model store: a folder or s3://bucket/prefix"
        )
        sub.set_defaults(handler=handler)


def cmd_models_list(args: argparse.Namespace) -> int:
    from stroke_mlops.registry.store import open_store
    from stroke_mlops.registry.versions import describe_versions, render_table

    store = open_store(args.store)
    production, broken = store.production_state()
    summaries = describe_versions(store, production=production)
    if not summaries:
        print(f"{store.uri}: no published versions")
    else:
        print(render_table(summaries))
    if broken is not None:
        print(f"(the production pointer is broken: {broken}; "
              "repair it with `stroke-mlops models repair-pointer VERSION`)")  # fmt: skip
    elif production is None and summaries:
        print("(nothing is in production yet)")
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    from stroke_mlops.registry.store import open_store
    from stroke_mlops.registry.versions import describe_version

    store = open_store(args.store)
    production, broken = store.production_state()
    summary = describe_version(store, args.version, production=production)
    print(f"version:     {summary.version}{'  (production)' if summary.is_production else ''}")
    print(f"uri:         {summary.uri}")
    print(f"created:     {summary.created_at or '-'}")
    print(f"model:       {summary.selected_model or '-'}")
    print(f"threshold:   {summary.threshold if summary.threshold is not None else '-'}")
    for name, value in summary.test_metrics.items():
        print(f"test {name + ':':<8}{value:.4f}")
    print(f"gate:        {summary.gate or '-'}")
    if broken is not None:
        print(f"production:  unknown, the pointer is broken ({broken})")
    if args.card and summary.model_card:
        print("\n" + summary.model_card.rstrip())
    return EXIT_OK


def cmd_models_repair(args: argparse.Namespace) -> int:
    from stroke_mlops.registry.model_dir import open_signed_model_dir
    from stroke_mlops.registry.signing import public_key_from_env
    from stroke_mlops.registry.store import open_store

    key = public_key_from_env()
    store = open_store(args.store)
    pointer = store.repair_pointer(
        args.version, check=lambda local: open_signed_model_dir(local, key)
    )
    print(f"production: repaired -> {pointer.version} ({pointer.uri}); the pointer was broken")
    return EXIT_OK


def _comparison_text(path: str) -> str:
    from stroke_mlops.cli.common import UsageError

    if not Path(path).is_file():
        raise UsageError(f"--comparison {path}: not a file (the JSON `stroke-mlops compare` wrote)")
    try:
        with Path(path).open("rb") as handle:
            content = handle.read(1_000_001)
    except OSError as error:
        raise UsageError(f"--comparison {path}: cannot be read ({error.strerror})") from None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--comparison {path}: not UTF-8 text") from None


def cmd_models_promote(args: argparse.Namespace) -> int:
    from stroke_mlops.monitoring.compare import RefusedByEvidenceError, check_promotion
    from stroke_mlops.registry.store import PromotionConflictError, open_store

    store = open_store(args.store)
    text = _comparison_text(args.comparison)
    try:
        champion = check_promotion(
            store.uri, args.version, text, source=args.comparison, production=store.production()
        )
        pointer = store.promote(args.version, expected=champion)
    except (RefusedByEvidenceError, PromotionConflictError) as error:
        print(f"refused: {error}; production unchanged", file=sys.stderr)
        return EXIT_FAILED
    print(f"production: {champion} -> {pointer.version} ({pointer.uri}) on {args.comparison}")
    return _redeploy(args, pointer)


def cmd_models_rollback(args: argparse.Namespace) -> int:
    from stroke_mlops.monitoring.compare import RefusedByEvidenceError, check_rollback
    from stroke_mlops.registry.store import PromotionConflictError, open_store
    from stroke_mlops.registry.versions import rollback

    store = open_store(args.store)
    expected = reason = None
    if args.comparison is not None:
        text = _comparison_text(args.comparison)
        try:
            expected = check_rollback(
                store.uri, args.version, text, source=args.comparison, production=store.production()
            )
        except RefusedByEvidenceError as error:
            print(f"refused: {error}; production unchanged", file=sys.stderr)
            return EXIT_FAILED
        reason = f" on {args.comparison}: {expected} is worse than {args.version}"
    try:
        pointer, previous = rollback(store, args.version, expected=expected)
    except PromotionConflictError as error:
        print(f"refused: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"production: {previous} -> {pointer.version} ({pointer.uri}){reason or ''}")
    return _redeploy(args, pointer)


def _redeploy(args: argparse.Namespace, pointer: Any) -> int:
    import os

    from stroke_mlops.deploy import kserve_objects

    service = kserve_objects.build_inference_service(
        pointer.uri, name=args.name, namespace=args.namespace, model_version=pointer.version
    )
    if args.apply:
        from stroke_mlops.deploy.live_apply import apply_from_cli

        return apply_from_cli([service])
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        print(
            "not redeployed (not inside a cluster); to serve it now: stroke-mlops deploy "
            f"--model-uri {pointer.uri} --model-version {pointer.version} --dry-run "
            "| kubectl apply -f -"
        )
        return EXIT_OK
    result = kserve_objects.apply_objects([service], namespace=args.namespace)
    print(result.message, file=sys.stdout if result.applied else sys.stderr)
    return EXIT_OK if result.applied else EXIT_FAILED
