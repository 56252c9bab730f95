"""The server takes KServe's own ``kserve.model_server.parser`` options (``parents=``), and
``stroke-mlops serve`` passes its arguments to that parser unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from stroke_mlops import cli
from stroke_mlops.serving import predictor


def test_the_server_parser_is_kserves_with_our_defaults() -> None:
    from kserve.model_server import parser as kserve_parser

    ours = {a.dest for a in predictor.build_parser()._actions}
    assert {a.dest for a in kserve_parser._actions} <= ours
    args = predictor.build_parser().parse_args([])
    assert (args.http_port, args.enable_grpc, args.model_name) == (8080, False, "stroke")
    assert predictor.build_parser().parse_args(["--port", "9002"]).http_port == 9002
    assert predictor.build_parser().parse_args(["--http_port", "9003"]).http_port == 9003
    grpc = predictor.build_parser().parse_args(["--grpc-port", "9100"])
    assert (grpc.grpc_port, grpc.enable_grpc) == (9100, True)


def test_kserve_server_options_reach_the_model_server(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[dict[str, Any]] = []
    monkeypatch.setattr(predictor, "serve", lambda model_uri, **kwargs: served.append(kwargs))
    argv = ["--model-uri", "m", "--max_asyncio_workers", "3", "--enable_docs_url", "true"]
    assert predictor.main([*argv, "--event-loop", "asyncio", "--model_name", "risk"]) == 0
    (options,) = served
    assert (options["max_asyncio_workers"], options["enable_docs_url"]) == (3, True)
    assert (options["event_loop"], options["model_name"]) == ("asyncio", "risk")
    assert (options["http_port"], options["enable_grpc"]) == (8080, False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "2"], "--workers: this server runs one worker process"),
        (["--timeout-keep-alive", "9"], "the keep-alive timeout is --header-timeout-s"),
    ],
)
def test_options_this_server_cannot_honour_are_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        predictor.main(["--model-uri", "m", *argv])
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_stroke_mlops_serve_passes_kserve_options_on(monkeypatch: pytest.MonkeyPatch) -> None:
    forwarded: list[list[str]] = []

    def record(argv: list[str]) -> int:
        forwarded.append(list(argv))
        return 0

    monkeypatch.setattr(predictor, "main", record)
    argv = ["--model-uri", "m", "--http_port", "9001", "--max_asyncio_workers", "2"]
    assert cli.main(["serve", *argv]) == 0
    assert forwarded == [argv]
    assert predictor.build_parser().parse_args(forwarded[0]).http_port == 9001
