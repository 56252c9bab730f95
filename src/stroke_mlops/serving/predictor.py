"""The model server: ``python -m stroke_mlops.serving.predictor``, its arguments and ``serve()``.

The server is KServe's ``ModelServer`` serving :class:`stroke_mlops.serving.model.StrokeModel`,
with our bind address, HTTP limits (:mod:`stroke_mlops.serving.http_limits`) and the strict
inference routes, refusal recorder and handlers of :mod:`stroke_mlops.serving.http_app`.

Run it with ``python -m stroke_mlops.serving.predictor --model-uri DIR_OR_S3_URI [--port 8080]
[--host 127.0.0.1]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kserve.model_server import ModelServer

from stroke_mlops import settings
from stroke_mlops.data import schema
from stroke_mlops.registry.signing import PUBLIC_KEY_ENV
from stroke_mlops.serving.defaults import DEFAULT_HOST, MAX_INSTANCES
from stroke_mlops.serving.http_app import (
    InferenceEndpoints,
    RefusalRecorder,
    configure_server_logging,
    install_refusal_handlers,
)
from stroke_mlops.serving.http_limits import (
    BodyLimitMiddleware,
    ServingLimits,
    apply_to_uvicorn,
    limits_for,
)
from stroke_mlops.serving.loading import ModelLoadError
from stroke_mlops.serving.metrics import ServingMetrics
from stroke_mlops.serving.model import StrokeModel
from stroke_mlops.serving.request_log import RequestLogger, RequestLogSink, writer_for

DEFAULT_MODEL_URI = settings.MODEL_MOUNT_PATH
DEFAULT_HTTP_PORT = settings.HTTP_PORT


class _ModelServer(ModelServer):
    """kserve.ModelServer with our bind address, HTTP limits and strict inference routes."""

    def __init__(
        self,
        *,
        host: str,
        limits: ServingLimits,
        recorded_model: StrokeModel | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._host = host
        self._recorded_model = recorded_model
        self._limits = limits

    def setup_event_loop(self) -> None:
        from stroke_mlops.compat.kserve import configure_rest_server

        # start() has built the REST server but not started it; its uvicorn config loads later.
        configure_rest_server(
            self,
            configure_uvicorn=self._configure_uvicorn,
            after_kserve_setup=self._install_ours,
        )
        super().setup_event_loop()

    def _install_ours(self, app: Any) -> None:
        """After KServe's set-up: our handlers replace KServe's, and our middleware goes in
        front of KServe's (each added one becomes the outermost)."""
        install_refusal_handlers(app)
        app.add_middleware(InferenceEndpoints, dataplane=self.dataplane, handlers=app)
        app.add_middleware(BodyLimitMiddleware, limits=self._limits)
        if self._recorded_model is not None:  # outermost: it also sees the limits' 413 and 408
            app.add_middleware(RefusalRecorder, model=self._recorded_model)

    def _configure_uvicorn(self, config: Any) -> None:
        config.host = self._host
        apply_to_uvicorn(config, self._limits)


def serve(
    model_uri: str,
    *,
    host: str = DEFAULT_HOST,
    request_log_sink: RequestLogSink | None = None,
    log_requests_to_stdout: bool = True,
    limits: ServingLimits | None = None,
    public_key: Path | None = None,
    model_name: str = schema.MODEL_NAME,
    **server_options: Any,
) -> None:
    """Load the model at ``model_uri`` and serve it until SIGTERM/SIGINT (blocks).

    Raises ModelLoadError (one-line reason) before listening if the model cannot be served.
    ``request_log_sink`` sends the full request
    records to an object store (see request_log.RequestLogSink); stdout gets metadata only.
    Metrics go to prometheus_client's default registry, which KServe serves on ``/metrics``.
    ``limits`` bounds what clients can send and hold (see http_limits; the defaults are the
    deployed ones). ``server_options`` are ``kserve.ModelServer``'s own (``http_port``, 8080
    here; ``enable_grpc`` and ``grpc_port``, gRPC off here; ``event_loop``...); its keep-alive
    timeout is ``limits.header_timeout_s``.
    """
    limits = limits or ServingLimits()
    configure_server_logging()
    logger = RequestLogger(
        stream=sys.stdout if log_requests_to_stdout else None, sink=request_log_sink
    )
    model = StrokeModel(
        model_uri,
        name=model_name,
        request_logger=logger,
        max_instances=limits.max_instances,
        metrics=ServingMetrics(),
        public_key=public_key,
    )
    try:
        model.load()
    except ModelLoadError:
        logger.close()
        raise
    model.metrics.watch_request_log(request_log_sink)
    server = _ModelServer(
        host=host,
        limits=limits,
        recorded_model=model,
        **{
            "http_port": DEFAULT_HTTP_PORT,
            "enable_grpc": False,
            "enable_latency_logging": False,
            **server_options,
        },
    )
    try:
        server.start([model])
    finally:
        logger.close()


# kserve.model_server's own options this server takes (the others are KServe transformer options
# or are set here: the bind address, keep-alive, logging).
KSERVE_SERVER_OPTIONS = (
    "http_port",
    "grpc_port",
    "enable_grpc",
    "max_threads",
    "max_asyncio_workers",
    "enable_docs_url",
    "enable_latency_logging",
    "access_log_format",
    "event_loop",
)


class _EnableGrpcAt(argparse.Action):
    """``--grpc-port N``: serve gRPC V2 on N (KServe's ``--grpc_port`` alone leaves it off)."""

    def __call__(self, parser: Any, namespace: Any, values: Any, _: Any = None) -> None:
        namespace.grpc_port, namespace.enable_grpc = values, True


def build_parser() -> argparse.ArgumentParser:
    """Our options on top of ``kserve.model_server.parser``'s own (``parents``), with our
    defaults: model name ``stroke``, port 8080, gRPC off, no per-request latency log line."""
    from kserve.model_server import parser as kserve_parser

    parser = argparse.ArgumentParser(
        prog="python -m stroke_mlops.serving.predictor",
        description="Serve the stroke model over KServe's V1 and V2 REST protocols "
        "(also: stroke-mlops serve).",
        parents=[kserve_parser],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.set_defaults(
        model_name=schema.MODEL_NAME,
        http_port=DEFAULT_HTTP_PORT,
        enable_grpc=False,
        enable_latency_logging=False,
        timeout_keep_alive=None,
    )
    ours = parser.add_argument_group("stroke model server")
    ours.add_argument(
        "--model-uri",
        default=os.environ.get("STROKE_MODEL_URI", DEFAULT_MODEL_URI),
        help="model directory: a local folder or s3://bucket/prefix "
        "(default $STROKE_MODEL_URI or /mnt/models)",
    )
    ours.add_argument(
        "--public-key",
        type=Path,
        default=os.environ.get(PUBLIC_KEY_ENV) or None,
        help="PEM public key the model directory's signature must verify with "
        f"(default ${PUBLIC_KEY_ENV}); without one the server refuses to load",
    )
    ours.add_argument(
        "--port", dest="http_port", type=int, default=argparse.SUPPRESS, help="= --http_port"
    )
    add_server_arguments(ours)
    ours.add_argument(
        "--grpc-port",
        type=int,
        action=_EnableGrpcAt,
        default=argparse.SUPPRESS,
        help="also serve gRPC V2 on this port (= --grpc_port N --enable_grpc true)",
    )
    ours.add_argument(
        "--request-log-uri",
        "--request-log-dir",
        dest="request_log_uri",
        default=os.environ.get("STROKE_REQUEST_LOG_URI"),
        help="write full request records (features included), batched as private JSON-lines "
        "objects, to this folder or s3://bucket/prefix (monitoring); default "
        "$STROKE_REQUEST_LOG_URI",
    )
    ours.add_argument(
        "--request-log-retention-days",
        type=_positive_int,
        default=os.environ.get("STROKE_REQUEST_LOG_RETENTION_DAYS"),  # argparse applies type
        help="delete request-log day partitions older than this many days (at start and daily); "
        "default $STROKE_REQUEST_LOG_RETENTION_DAYS, or keep everything",
    )
    defaults = ServingLimits()
    ours.add_argument(
        "--header-timeout-s",
        type=float,
        default=defaults.header_timeout_s,
        help="close a connection whose request headers are not complete this long after it "
        "opened or after its last response; also the keep-alive timeout",
    )
    ours.add_argument(
        "--body-timeout-s",
        type=float,
        default=defaults.body_timeout_s,
        help="answer 408 when the body takes longer",
    )
    ours.add_argument(
        "--no-stdout-request-log",
        action="store_true",
        help="do not print a metadata line (id, version, status, latency) per request on stdout",
    )
    return parser


def add_server_arguments(parser: Any) -> None:
    """--host and --max-instances, shared by this module's parser and ``stroke-mlops serve``."""
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}; 0.0.0.0 to listen on every interface)",
    )
    parser.add_argument(
        "--max-instances",
        type=int,
        default=MAX_INSTANCES,
        help=f"most instances in one request (default {MAX_INSTANCES}); the body size limit "
        "is derived from it",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of days >= 1; got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m stroke_mlops.serving.predictor``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.request_log_retention_days is not None and not args.request_log_uri:
        parser.error("--request-log-retention-days needs --request-log-uri")
    if args.workers != 1:
        parser.error("--workers: this server runs one worker process (its limits are per process)")
    if args.timeout_keep_alive is not None:
        parser.error("--timeout-keep-alive: the keep-alive timeout is --header-timeout-s here")
    sink = (
        RequestLogSink(
            writer_for(args.request_log_uri),
            flush_interval_s=1.0,
            retention_days=args.request_log_retention_days,
        )
        if args.request_log_uri
        else None
    )
    try:
        limits = limits_for(
            args.max_instances,
            header_timeout_s=args.header_timeout_s,
            body_timeout_s=args.body_timeout_s,
        )
    except ValueError as error:
        print(f"stroke-mlops serve: {error}", file=sys.stderr)
        return 2
    try:
        serve(
            args.model_uri,
            limits=limits,
            host=args.host,
            request_log_sink=sink,
            log_requests_to_stdout=not args.no_stdout_request_log,
            public_key=args.public_key,
            model_name=args.model_name,
            **{name: getattr(args, name) for name in KSERVE_SERVER_OPTIONS},
        )
    except ModelLoadError as error:
        print(f"stroke-mlops serve: cannot load the model: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
