"""The HTTP limits as configuration: sized from the row limit, applied to uvicorn."""

from __future__ import annotations

import json
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from stroke_mlops.serving.http_limits import ServingLimits, apply_to_uvicorn, limits_for
from stroke_mlops.serving.infra_validation import v2_body


def longest_instance(signature: dict[str, Any]) -> dict[str, Any]:
    """Every field at its longest valid spelling: the longest category, 17-digit floats."""
    instance: dict[str, Any] = {}
    for spec in signature["inputs"]:
        if spec["type"] == "string":
            instance[spec["name"]] = max(spec["categories"], key=len)
        elif spec["type"] == "number":
            instance[spec["name"]] = float(spec["maximum"]) - 1e-13
        else:
            instance[spec["name"]] = max(spec.get("allowed", [0]))
    return instance


def test_the_largest_accepted_batch_fits_the_body_limit_in_both_protocols(
    signature_doc: dict[str, Any],
) -> None:
    limits = ServingLimits()
    rows = [longest_instance(signature_doc)] * limits.max_instances
    v1 = json.dumps({"instances": rows}, indent=4).encode()
    v2 = json.dumps(json.loads(v2_body(rows, signature_doc)), indent=4).encode()
    assert max(len(v1), len(v2)) < limits.max_body_bytes
    # ... and the limit is not far above it: a 300 MB body is refused, not a near-miss.
    assert limits.max_body_bytes < 3 * len(v1) < 64 * 1024**2


def test_limits_follow_the_row_limit() -> None:
    assert limits_for(50).max_body_bytes == 50 * 1024 + 64 * 1024
    big = limits_for(200_000)
    assert big.max_buffered_body_bytes >= big.max_body_bytes
    assert limits_for(10_000) == ServingLimits()
    with pytest.raises(ValueError, match="max_instances must be at least 1"):
        limits_for(0)
    with pytest.raises(ValueError, match="must hold at least one largest body"):
        ServingLimits(max_buffered_body_bytes=1024)


def test_the_limits_reach_uvicorn() -> None:
    config = uvicorn.Config("kserve.model_server:app", timeout_keep_alive=65)
    apply_to_uvicorn(config, ServingLimits(header_timeout_s=3.0, max_connections=77))
    assert config.limit_concurrency == 77 and config.timeout_keep_alive == 3.0
    assert isinstance(config.http, type) and issubclass(config.http, HttpToolsProtocol)
    assert config.http.header_timeout_s == 3.0  # type: ignore[attr-defined]
