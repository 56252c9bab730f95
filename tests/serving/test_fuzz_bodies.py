"""Hypothesis fuzzing of the real server's V1 and V2 bodies: whatever arrives, the answer is
never a 5xx, and the next valid request is served."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stroke_mlops.serving.infra_validation import ServerProcess, v1_body, v2_body
from tests.serving.hostile import exchange

pytestmark = pytest.mark.integration

V1 = "/v1/models/stroke:predict"
V2 = "/v2/models/stroke/infer"
FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,  # nothing written to the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
content_types = st.sampled_from(
    [
        "application/json",
        "text/plain",
        "application/octet-stream",
        "application/x-www-form-urlencoded",
        None,
    ]
)


def signature(lr_model_dir: Path) -> dict[str, Any]:
    return dict(json.loads((lr_model_dir / "signature.json").read_text()))


@st.composite
def mutated_json(draw: st.DrawFn, valid: Any) -> Any:
    """``valid`` with a few values, keys or containers replaced, dropped or added."""
    if isinstance(valid, dict):
        out = dict(valid)
        for key in list(out):
            action = draw(st.sampled_from(["keep", "keep", "keep", "recurse", "replace", "drop"]))
            if action == "recurse":
                out[key] = draw(mutated_json(out[key]))
            elif action == "replace":
                out[key] = draw(json_values)
            elif action == "drop":
                del out[key]
        if draw(st.booleans()):
            out[draw(st.text(max_size=8))] = draw(json_values)
        return out
    if isinstance(valid, list):
        items: list[Any] = []
        for item in valid:
            change: bool = draw(st.booleans())
            items.append(draw(mutated_json(item)) if change else item)
        drop: bool = draw(st.booleans())
        if items and drop:
            items.pop(draw(st.integers(0, len(items) - 1)))
        return items
    return draw(json_values) if draw(st.booleans()) else valid


def encode(document: Any, draw: Callable[[st.SearchStrategy[Any]], Any]) -> bytes:
    """JSON text, sometimes with a byte flipped, a key repeated or the end cut off."""
    text = json.dumps(document).encode()
    damage = draw(st.sampled_from(["none", "none", "flip", "cut", "repeat-key"]))
    if damage == "flip" and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] + bytes([draw(st.integers(0, 255))]) + text[at + 1 :]
    elif damage == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "repeat-key" and text.startswith(b"{") and len(text) > 2:
        text = b'{"inputs": 1, "instances": 2, ' + text[1:]
    return text


def check_and_recover(
    server: ServerProcess,
    path: str,
    body: bytes,
    headers: dict[str, str],
    valid: bytes,
) -> None:
    status, _, answer = exchange(server, "POST", path, body, headers)
    assert status < 500, (status, answer[:300], body[:300])
    assert exchange(server, "POST", V1, valid, {"content-type": "application/json"})[0] == 200


@pytest.fixture(scope="module")
def doc(lr_model_dir: Path) -> dict[str, Any]:
    return signature(lr_model_dir)


def test_fuzzed_v1_bodies_never_get_a_5xx(lr_server: ServerProcess, doc: dict[str, Any]) -> None:
    valid = v1_body(doc["examples"])
    base = json.loads(valid)

    @FUZZ
    @given(data=st.data(), content_type=content_types)
    def fuzz(data: st.DataObject, content_type: str | None) -> None:
        shape = data.draw(st.sampled_from(["mutated", "mutated", "any-json", "raw-bytes"]))
        if shape == "mutated":
            body = encode(data.draw(mutated_json(base)), data.draw)
        elif shape == "any-json":
            body = encode(data.draw(json_values), data.draw)
        else:
            body = data.draw(st.binary(max_size=300))
        headers = {"content-type": content_type} if content_type else {}
        check_and_recover(lr_server, V1, body, headers, valid)

    fuzz()


def test_fuzzed_v2_bodies_never_get_a_5xx(lr_server: ServerProcess, doc: dict[str, Any]) -> None:
    valid = v1_body(doc["examples"])
    base = json.loads(v2_body(doc["examples"], doc))

    @FUZZ
    @given(data=st.data(), content_type=content_types)
    def fuzz(data: st.DataObject, content_type: str | None) -> None:
        headers = {"content-type": content_type} if content_type else {}
        if data.draw(st.booleans()):
            body = encode(data.draw(mutated_json(base)), data.draw)
        else:  # binary tensor extension: a JSON part with sizes, then arbitrary bytes
            document = data.draw(mutated_json(base))
            tensors = document.get("inputs") if isinstance(document, dict) else None
            for tensor in tensors if isinstance(tensors, list) else []:
                if isinstance(tensor, dict) and data.draw(st.booleans()):
                    tensor.pop("data", None)
                    tensor["parameters"] = {"binary_data_size": data.draw(st.integers(-2, 64))}
            head = json.dumps(document).encode()
            tail = data.draw(
                st.binary(max_size=200)
                | st.lists(st.binary(max_size=8), max_size=5).map(
                    lambda items: b"".join(struct.pack("<I", len(i)) + i for i in items)
                )
            )
            body = head + tail
            header = data.draw(
                st.just(str(len(head)))
                | st.integers(-3, len(body) + 3).map(str)
                | st.text(max_size=6)
            )
            headers["inference-header-content-length"] = header
        check_and_recover(lr_server, V2, body, headers, valid)

    fuzz()
