"""``make app-demo``: the store's production model served locally, the app beside it.

``python -m stroke_mlops.app.demo --store STORE [--reports DIR] [--port N]`` starts the real
model server on 127.0.0.1 (a free port) with the production version, then the app on
127.0.0.1:N calling it, prints the app's URL and serves until Ctrl-C, then stops both.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from stroke_mlops.registry.signing import use_local_dev_keys
from stroke_mlops.registry.store import open_store
from stroke_mlops.serving.demo import READY_TIMEOUT_S, local_model_uri
from stroke_mlops.serving.infra_validation import ServerProcess


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stroke_mlops.app.demo")
    parser.add_argument("--store", required=True, metavar="STORE_URI")
    parser.add_argument("--reports", type=Path, metavar="DIR")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)

    import uvicorn

    from stroke_mlops.app.web import create_app

    use_local_dev_keys(create=False)  # the local-dev public key, if `make demo` made one here
    pointer = open_store(args.store).production()
    if pointer is None:
        print(f"{args.store} has no production model yet: run `make demo` first", file=sys.stderr)
        return 2
    reports = args.reports if args.reports is not None and args.reports.is_dir() else None
    predictor = ServerProcess(local_model_uri(pointer.uri))
    predictor.start()
    try:
        ready, why = predictor.wait_ready(READY_TIMEOUT_S)
        if not ready:
            print(
                f"the model server did not start: {why}\n{predictor.log_tail(5)}", file=sys.stderr
            )
            return 1
        predictor_url = f"http://{predictor.host}:{predictor.port}"
        application = create_app(predictor_url, args.store, reports)
        print(f"predictor: production model {pointer.version} at {predictor_url}")
        print(f"app: http://127.0.0.1:{args.port}/  (operations: /operations; Ctrl-C stops both)")
        sys.stdout.flush()
        uvicorn.run(application, host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        predictor.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
