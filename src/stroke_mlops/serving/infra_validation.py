"""Infra-validation: serve a candidate model directory for real before it is published.

TFX's InfraValidator idea on our own serving stack: start the real model server
(``python -m stroke_mlops.serving.predictor``, a subprocess on 127.0.0.1 and a free port) on the
candidate's directory, wait (bounded) until it reports ready, send the signature's ``examples``
over V1 and V2, require the answers to have the right shape and to equal the in-process
pipeline's probabilities (within 1e-6), require a malformed request to get a 400 and the server
to keep answering afterwards, and always stop the server.

A directory the server cannot load (a modified file, an unknown pipeline shape, ...) gives
``passed=False`` with the server's own reason; nothing here raises for a bad candidate.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stroke_mlops.data import schema
from stroke_mlops.registry.model_dir import VerifiedModelDir, open_signed_model_dir

PROBABILITY_TOLERANCE = 1e-6
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 10.0


@dataclass
class InfraValidationResult:
    """The verdict, every reason it failed, and how long each step took."""

    passed: bool
    reasons: list[str]
    model_dir: str
    startup_seconds: float | None = None
    request_ms: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0
    server_log_tail: str = ""

    def summary(self) -> dict[str, Any]:
        """A JSON-ready dict (without the server log)."""
        return {
            "passed": self.passed,
            "reasons": list(self.reasons),
            "model_dir": self.model_dir,
            "startup_seconds": self.startup_seconds,
            "request_ms": dict(self.request_ms),
            "total_seconds": self.total_seconds,
        }


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def server_command(
    model_uri: str, port: int, host: str = "127.0.0.1", public_key: Path | None = None
) -> list[str]:
    """The command that runs the model server exactly as the image does."""
    key_args = ["--public-key", str(public_key)] if public_key is not None else []
    return [
        sys.executable,
        "-m",
        "stroke_mlops.serving.predictor",
        "--model-uri",
        model_uri,
        "--host",
        host,
        "--port",
        str(port),
        *key_args,
    ]


class ServerProcess:
    """The model server as a subprocess on 127.0.0.1; a context manager that always stops it.

    stdout (the JSON request log) and stderr go to files, so a chatty server never blocks on a
    full pipe; :meth:`log_tail` reads the end of stderr.
    """

    def __init__(
        self,
        model_uri: str,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
        public_key: Path | None = None,
        command: Sequence[str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        """``command`` replaces :func:`server_command` (another server on ``self.port``)."""
        self.model_uri = model_uri
        self.host = host
        self.port = port or free_port(host)
        self._workdir = tempfile.TemporaryDirectory(prefix="stroke-server-")
        self.stdout_path = Path(self._workdir.name) / "stdout.jsonl"
        self.stderr_path = Path(self._workdir.name) / "stderr.log"
        self._env = {**os.environ, **(env or {})}
        self._args = [
            *(command or server_command(model_uri, self.port, self.host, public_key)),
            *extra_args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                self._args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self._env
            )

    def wait_ready(self, timeout_s: float) -> tuple[bool, str]:
        """Poll ``GET /v1/models/<name>`` until 200; (False, why) on exit or timeout."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                return False, f"the server exited with status {code} before it was ready"
            try:
                status, _ = self.request("GET", f"/v1/models/{schema.MODEL_NAME}", timeout_s=1.0)
            except OSError:
                status = 0
            if status == 200:
                return True, ""
            time.sleep(0.05)
        return False, f"the server was not ready within {timeout_s:g} s"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> tuple[int, bytes]:
        """One HTTP request on a fresh connection; (status, body)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
        try:
            headers = {"content-type": "application/json"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; returns the exit status."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(STOP_TIMEOUT_S)
            code = self.process.returncode
        return code

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        self.stop()
        self._workdir.cleanup()


def v1_body(instances: Sequence[dict[str, Any]]) -> bytes:
    return json.dumps({"instances": list(instances)}).encode()


def v2_body(instances: Sequence[dict[str, Any]], signature: dict[str, Any]) -> bytes:
    """The V2 request for ``instances``: one input per signature input, shape [N]."""
    inputs = [
        {
            "name": spec["name"],
            "datatype": spec["datatype"],
            "shape": [len(instances)],
            "data": [instance[spec["name"]] for instance in instances],
        }
        for spec in signature["inputs"]
    ]
    return json.dumps({"inputs": inputs}).encode()


def validate_model_server(
    model_dir: Path, *, public_key: Path, timeout_s: float = 60
) -> InfraValidationResult:
    """Serve ``model_dir`` with the real server and check it answers correctly (see module doc).

    Both the server and the in-process reference verify the signature with ``public_key``.

    ``timeout_s`` bounds the wait for readiness. Never raises for a bad candidate: the result
    has ``passed=False`` and every reason found.
    """
    started = time.monotonic()
    result = InfraValidationResult(passed=False, reasons=[], model_dir=str(model_dir))
    expected, verified = _expected_probabilities(model_dir, public_key, result.reasons)
    server = ServerProcess(str(model_dir), public_key=public_key)
    try:
        server.start()
        ready, why = server.wait_ready(timeout_s)
        result.startup_seconds = round(time.monotonic() - started, 3)
        if not ready:
            result.reasons.append(f"{why}: {_last_error_line(server.log_tail())}")
        elif verified is not None and expected is not None:
            _check_answers(server, verified, expected, result)
    except OSError as error:
        result.reasons.append(f"could not run the model server: {error}")
    finally:
        code = server.stop()
        result.server_log_tail = server.log_tail()
        server.cleanup()
    if code not in (None, 0, -signal.SIGTERM) and not result.reasons:
        result.reasons.append(f"the server exited with status {code} when stopped")
    result.passed = not result.reasons
    result.total_seconds = round(time.monotonic() - started, 3)
    return result


def _expected_probabilities(
    model_dir: Path, public_key: Path, reasons: list[str]
) -> tuple[np.ndarray | None, VerifiedModelDir | None]:
    """The in-process pipeline's P(stroke) for the signature's examples (signature first)."""
    from stroke_mlops.serving.protocol import input_specs
    from stroke_mlops.serving.scoring import instances_to_frame

    try:
        verified = open_signed_model_dir(model_dir, public_key)
        examples = list(verified.signature.get("examples") or [])
        if not examples:
            reasons.append("signature.json has no examples to send")
            return None, verified
        frame = instances_to_frame(examples, input_specs(verified.signature))
        probabilities = verified.load_model().predict_proba(frame)[:, 1]
    except Exception as error:  # a candidate that cannot even be scored in-process
        reasons.append(f"the model cannot be scored in-process: {error}")
        return None, None
    return np.asarray(probabilities, dtype=np.float64), verified


def _check_answers(
    server: ServerProcess,
    verified: VerifiedModelDir,
    expected: np.ndarray,
    result: InfraValidationResult,
) -> None:
    examples = list(verified.signature["examples"])
    version, threshold = verified.version, verified.threshold
    name = schema.MODEL_NAME

    status, body, elapsed = _timed(server, "POST", f"/v1/models/{name}:predict", v1_body(examples))
    result.request_ms["v1_predict"] = elapsed
    result.reasons.extend(_check_v1(status, body, expected, version, threshold))

    status, body, elapsed = _timed(
        server, "POST", f"/v2/models/{name}/infer", v2_body(examples, verified.signature)
    )
    result.request_ms["v2_infer"] = elapsed
    result.reasons.extend(_check_v2(status, body, expected, version, threshold))

    malformed = v1_body([{**examples[0], "age": "sixty"}])
    status, body, elapsed = _timed(server, "POST", f"/v1/models/{name}:predict", malformed)
    result.request_ms["malformed"] = elapsed
    if status != 400:
        result.reasons.append(
            f"a malformed request got HTTP {status}, expected 400: {body[:200]!r}"
        )
    elif b"age" not in body:
        result.reasons.append(f"the 400 for a bad age does not name the field: {body[:200]!r}")

    status, body, elapsed = _timed(
        server, "POST", f"/v1/models/{name}:predict", v1_body(examples[:1])
    )
    result.request_ms["after_malformed"] = elapsed
    if status != 200:
        result.reasons.append(f"after a malformed request the server answered HTTP {status}")


def _timed(server: ServerProcess, method: str, path: str, body: bytes) -> tuple[int, bytes, float]:
    began = time.perf_counter()
    try:
        status, answer = server.request(method, path, body)
    except OSError as error:
        status, answer = 0, f"no answer: {error}".encode()
    return status, answer, round((time.perf_counter() - began) * 1000, 3)


def _check_v1(
    status: int, body: bytes, expected: np.ndarray, version: str, threshold: float
) -> list[str]:
    if status != 200:
        return [f"V1 predict answered HTTP {status}: {body[:300]!r}"]
    try:
        answer = json.loads(body)
        predictions = answer["predictions"]
        probabilities = [float(p["probability"]) for p in predictions]
        decisions = [int(p["decision"]) for p in predictions]
    except (ValueError, KeyError, TypeError) as error:
        return [f"V1 answer is not {{'predictions': [{{probability, decision}}]}}: {error!r}"]
    reasons = _compare("V1", probabilities, decisions, expected, threshold)
    if answer.get("model_version") != version:
        reasons.append(f"V1 model_version is {answer.get('model_version')!r}, expected {version!r}")
    return reasons


def _check_v2(
    status: int, body: bytes, expected: np.ndarray, version: str, threshold: float
) -> list[str]:
    if status != 200:
        return [f"V2 infer answered HTTP {status}: {body[:300]!r}"]
    try:
        answer = json.loads(body)
        outputs = {o["name"]: o for o in answer["outputs"]}
        probability, decision = outputs["probability"], outputs["decision"]
    except (ValueError, KeyError, TypeError) as error:
        return [f"V2 answer lacks the probability/decision outputs: {error!r}"]
    reasons: list[str] = []
    count = len(expected)
    for output, datatype in ((probability, "FP64"), (decision, "INT64")):
        if output.get("datatype") != datatype or output.get("shape") != [count]:
            reasons.append(
                f"V2 output {output['name']!r} is {output.get('datatype')} "
                f"{output.get('shape')}, expected {datatype} [{count}]"
            )
    if reasons:
        return reasons
    reasons = _compare(
        "V2",
        [float(p) for p in probability["data"]],
        [int(d) for d in decision["data"]],
        expected,
        threshold,
    )
    if answer.get("model_version") != version:
        reasons.append(f"V2 model_version is {answer.get('model_version')!r}, expected {version!r}")
    return reasons


def _compare(
    protocol: str,
    probabilities: list[float],
    decisions: list[int],
    expected: np.ndarray,
    threshold: float,
) -> list[str]:
    if len(probabilities) != len(expected) or len(decisions) != len(expected):
        return [
            f"{protocol} returned {len(probabilities)} probabilities and {len(decisions)} "
            f"decisions for {len(expected)} examples"
        ]
    reasons = []
    for index, (got, want, decision) in enumerate(
        zip(probabilities, expected.tolist(), decisions, strict=True)
    ):
        if not (math.isfinite(got) and abs(got - want) <= PROBABILITY_TOLERANCE):
            reasons.append(
                f"{protocol} example {index}: probability {got!r} differs from the pipeline's "
                f"{want!r} by more than {PROBABILITY_TOLERANCE:g}"
            )
        if decision != int(got >= threshold):
            reasons.append(
                f"{protocol} example {index}: decision {decision} is not probability "
                f"{got:.6f} >= threshold {threshold:.6f}"
            )
    return reasons


def _last_error_line(log_tail: str) -> str:
    """The server's own reason: its 'cannot load the model' line, else its last line."""
    lines = [line for line in log_tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if "cannot load the model" in line:
            return line.strip()
    return lines[-1].strip() if lines else "no output"
