"""A stock-style KServe predictor, the yardstick of the serving benchmark's side-by-side mode.

What the KServe custom-model examples do: a plain ``kserve.Model`` whose ``predict`` builds a
pandas frame from the V1 ``instances`` and calls the fitted pipeline's ``predict_proba``; no
validation, no request log, KServe's own routes, handlers and defaults (gRPC off, one worker).

    .venv/bin/python benchmarks/stock_kserve_predictor.py --model-dir DIR --public-key PEM \
        --port PORT

The pipeline is read from a model directory through the signature check (no pickle).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from kserve.model import Model
from kserve.model_server import ModelServer

from stroke_mlops.registry.model_dir import open_signed_model_dir


class StockModel(Model):
    def __init__(self, name: str, model_dir: Path, public_key: Path) -> None:
        super().__init__(name)
        self.model_dir, self.public_key = model_dir, public_key
        self.pipeline: Any = None

    def load(self) -> bool:
        self.pipeline = open_signed_model_dir(self.model_dir, self.public_key).load_model()
        self.ready = True
        return True

    def predict(
        self, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        frame = pd.DataFrame(payload["instances"])
        return {"predictions": self.pipeline.predict_proba(frame)[:, 1].tolist()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--public-key", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    model = StockModel("stroke", args.model_dir, args.public_key)
    model.load()
    ModelServer(http_port=args.port, enable_grpc=False).start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
