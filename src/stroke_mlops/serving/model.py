"""The KServe model: a strict ``kserve.Model`` over the compiled pipeline.

``StrokeModel.load()`` gets the model directory (:mod:`stroke_mlops.serving.loading`), verifies
its signature with the public key (``--public-key`` or ``$STROKE_MLOPS_SIGNING_PUBLIC_KEY``) and
every file's sha256 before deserializing, compiles the fast path
(:mod:`stroke_mlops.serving.scoring`) and only then sets ``ready``. ``predict()`` serves both
protocols through one code path:

* V1 ``POST /v1/models/stroke:predict`` ``{"instances": [{feature: value, ...}, ...]}`` returns
  ``{"predictions": [{"probability": p, "decision": 0|1}, ...], "model_name": "stroke",
  "model_version": "<metadata version>"}``.
* V1 ``POST /v1/models/stroke:explain`` (KServe's explain verb, :meth:`StrokeModel.explain`), the
  same body, returns ``{"explanations": [{"probability", "decision", "threshold", "output",
  "base_value", "contributions": {feature: c}}, ...], ...}`` (see
  :mod:`stroke_mlops.serving.explain`), with predict()'s validation, limits and record.
* V2 ``POST /v2/models/stroke/infer`` with one input per feature (FP64 / INT64 / BYTES, shape
  ``[N]``) returns outputs ``probability`` (FP64) and ``decision`` (INT64), ``model_version`` set
  and ``parameters.prediction_id`` (V1: ``prediction_id`` in the body; both: ``x-prediction-id``).

Both inference routes hand the raw body to ``predict()``, which decodes it strictly (V1: strict
JSON; V2: :mod:`stroke_mlops.serving.protocol.v2_request`, JSON or binary tensors). Any bad input
is a ``kserve.errors.InvalidInput`` (HTTP 400) naming the instance, the field and what was
expected. Every request, good or bad, gives one record (see
:mod:`stroke_mlops.serving.request_log`): the full record, features included, to the private
request-log store, and its metadata only as one JSON line on stdout. Requests refused before
``predict()`` are recorded through :meth:`StrokeModel.record_refusal` by the HTTP layer
(:mod:`stroke_mlops.serving.http_app`).
"""

from __future__ import annotations

import contextvars
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from kserve.errors import InvalidInput, ModelNotReady
from kserve.model import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from stroke_mlops.data import schema
from stroke_mlops.registry.signing import SignatureError, public_key_from_env
from stroke_mlops.serving.defaults import MAX_INSTANCES
from stroke_mlops.serving.explain import Explainer, Explanations
from stroke_mlops.serving.loading import ModelLoadError, fetch_model_dir, load_explained_model
from stroke_mlops.serving.metrics import ServingMetrics, count_missing, refusal_reason
from stroke_mlops.serving.protocol.columns import Columns, columns_from_v1, columns_from_v2
from stroke_mlops.serving.protocol.errors import InvalidRequestError
from stroke_mlops.serving.protocol.strict_json import parse_json_body
from stroke_mlops.serving.protocol.v2_request import RawV2Request, decode_v2_request
from stroke_mlops.serving.request_log import (
    PREDICTION_ID_HEADER,
    RequestLogger,
    bounded_request_id,
    new_prediction_id,
    utc_timestamp,
)
from stroke_mlops.serving.scoring import CompiledModel, Predictions

log = logging.getLogger(__name__)

OUTPUT_NAMES = ("probability", "decision")
RawPayload: TypeAlias = dict[str, Any] | InferRequest | RawV2Request | bytes
MAX_ERROR_CHARS = 1000  # refusal messages (to the client and the store) are cut here


@dataclass
class RequestContext:
    """One inference request as the middleware saw it, shared with predict() and the handlers."""

    client_id: str | None  # the x-request-id header as sent
    started: float
    protocol: str
    request_id: str | None = None  # bounded; set by predict() or when a refusal is recorded
    request_id_replaced: str | None = None  # why the client's id was not kept
    recorded: bool = False
    error: str | None = None


current_request: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "stroke_request", default=None
)


@dataclass
class ScoringRequest:
    """One request between preprocess(), predict() and postprocess()."""

    compiled: CompiledModel  # the model it was checked against, whatever load() does meanwhile
    record: dict[str, Any]  # its request-log record, completed by postprocess()
    started: float
    columns: Columns
    count: int
    v2: InferRequest | None  # None for V1
    predictions: Predictions | Explanations | None = None


def cap_message(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``message`` cut to ``limit`` characters (with a note saying how much was left out)."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… ({len(message) - limit} more characters not shown)"


class StrokeModel(Model):
    """The stroke-risk predictor (see the module docstring for the protocols)."""

    def __init__(
        self,
        model_uri: str,
        *,
        name: str = schema.MODEL_NAME,
        request_logger: RequestLogger | None = None,
        metrics: ServingMetrics | None = None,
        download_dir: Path | None = None,
        max_instances: int = MAX_INSTANCES,
        public_key: Path | None = None,
    ) -> None:
        super().__init__(name, return_response_headers=True)  # x-prediction-id
        self.model_uri = model_uri
        self.max_instances = max_instances
        self.public_key = public_key  # None: $STROKE_MLOPS_SIGNING_PUBLIC_KEY at load()
        self.compiled: CompiledModel | None = None
        self.explainer: Explainer | None = None
        self.request_logger = request_logger or RequestLogger()
        self.metrics = metrics or ServingMetrics(registry=None)
        self._nullable: tuple[str, ...] = ()
        self._download_dir = download_dir

    def load(self) -> bool:
        """Fetch, verify (signature, then sha256, before deserializing), compile; then, and
        only then, ready."""
        self.ready = False
        try:
            public_key = self.public_key or public_key_from_env()
        except SignatureError as error:
            raise ModelLoadError(str(error)) from error
        try:
            model_dir = fetch_model_dir(self.model_uri, self._download_dir)
            self.compiled, self.explainer = load_explained_model(model_dir, public_key)
        except ModelLoadError:
            raise
        except Exception as error:  # checksum, unpickling, unsupported shape: all refuse
            reason = str(error) or repr(error)
            where = "" if self.model_uri in reason else f"{self.model_uri}: "
            raise ModelLoadError(f"{where}{reason}") from error
        self._nullable = tuple(spec.name for spec in self.compiled.specs if spec.nullable)
        self.metrics.add_features(spec.name for spec in self.compiled.specs)
        log.info(
            "loaded model %s version %s (%s, threshold %.4f) from %s",
            self.name,
            self.compiled.version,
            self.compiled.classifier,
            self.compiled.threshold,
            self.model_uri,
        )
        self.ready = True
        return True

    def start(self) -> None:
        """Keep ``ready`` as load() left it (kserve's default start() would force it True)."""

    def stop(self) -> None:
        self.ready = False
        self.request_logger.close()

    def get_input_types(self) -> list[dict[str, Any]]:
        specs = self._model().specs
        return [{"name": s.name, "datatype": s.datatype, "shape": [-1]} for s in specs]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [
            {"name": "probability", "datatype": "FP64", "shape": [-1]},
            {"name": "decision", "datatype": "INT64", "shape": [-1]},
        ]

    def preprocess(
        self, payload: RawPayload, headers: dict[str, str] | None = None
    ) -> ScoringRequest:
        """Decode a V1 body or a V2 request strictly and turn it into columns (KServe's first
        step). Raw bodies (V1 bytes, :class:`RawV2Request`) are decoded here, so a body that
        does not decode is refused and recorded like any other invalid request."""
        started = time.perf_counter()
        context = current_request.get()
        compiled = self._model()
        is_v2 = isinstance(payload, InferRequest | RawV2Request)
        v2_id = payload.id if isinstance(payload, InferRequest) else None
        request_id, replaced = bounded_request_id((headers or {}).get("x-request-id") or v2_id)
        if context is not None:
            context.request_id, context.request_id_replaced = request_id, replaced
            context.recorded = True  # this model records the request, good or bad
        record: dict[str, Any] = {
            "ts": utc_timestamp(),
            "request_id": request_id,
            "model_name": self.name,
            "model_version": compiled.version,
            "protocol": "v2" if is_v2 else "v1",
        }
        if replaced is not None:
            record["request_id_replaced"] = replaced
        try:
            if isinstance(payload, RawV2Request):
                payload = decode_v2_request(payload, self.name)
            if isinstance(payload, InferRequest):
                if payload.id and not (headers or {}).get("x-request-id"):
                    _use_request_id(record, context, payload.id)  # known once decoded
                columns, count = columns_from_v2(payload.inputs, compiled.specs, self.max_instances)
                _check_requested_outputs(payload)
                v2 = payload
            else:
                body = parse_json_body(payload) if isinstance(payload, bytes | str) else payload
                columns, count = columns_from_v1(body, compiled.specs, self.max_instances)
                v2 = None
        except InvalidRequestError as error:
            raise self._refused(record, started, error) from error
        return ScoringRequest(compiled, record, started, columns, count, v2)

    def validate(self, payload: Any) -> Any:
        """Everything is validated against the signature, with precise errors, in preprocess()
        (shape and names) and predict() (values)."""
        return payload

    def predict(
        self,
        payload: ScoringRequest | RawPayload,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        """Check, encode and score the columns (KServe's second step).

        Given a request instead of preprocess()'s result (a direct, in-process call), it runs
        the three steps and returns the response.
        """
        if not isinstance(payload, ScoringRequest):
            return self.postprocess(self.predict(self.preprocess(payload, headers), headers))
        try:
            payload.predictions = payload.compiled.predict(payload.columns, payload.count)
        except InvalidRequestError as error:
            raise self._refused(payload.record, payload.started, error) from error
        return payload

    def postprocess(
        self,
        result: ScoringRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> dict[str, Any] | InferResponse:
        """The V1 body or V2 response; the request's record and metrics (KServe's last step)."""
        predictions, count, record = result.predictions, result.count, result.record
        assert predictions is not None  # predict() ran
        prediction_id = new_prediction_id()  # ours, unique: what feedback labels join on
        response: dict[str, Any] | InferResponse
        if result.v2 is not None:
            response = InferResponse(
                response_id=result.v2.id or record["request_id"],
                model_name=self.name,
                model_version=predictions.model_version,
                infer_outputs=[
                    InferOutput("probability", [count], "FP64", data=predictions.probabilities),
                    InferOutput("decision", [count], "INT64", data=predictions.decisions),
                ],
                requested_outputs=result.v2.request_outputs,
                use_binary_outputs=result.v2.use_binary_outputs,
                # In the body too: KServe's InferenceGraph router passes no response header on.
                parameters={"prediction_id": prediction_id},
            )
        else:
            response = predictions.v1_body(self.name)
            response["prediction_id"] = prediction_id
        if response_headers is not None:
            response_headers[PREDICTION_ID_HEADER] = prediction_id
        record.update(
            status="ok",
            prediction_id=prediction_id,
            instances=count,
            inputs=result.columns,
            outputs={
                "probability": predictions.probabilities,
                "decision": predictions.decisions,
            },
            latency_ms=round((time.perf_counter() - result.started) * 1000, 3),
        )
        if isinstance(predictions, Explanations):
            record["outputs"]["base_value"] = predictions.base_values
            record["outputs"]["contributions"] = {
                name: predictions.contributions[:, k] for k, name in enumerate(predictions.features)
            }
        self.request_logger.log(record)
        self.metrics.observe_predictions(
            predictions.model_version,
            predictions.probabilities,
            predictions.decisions,
            count_missing(result.columns, self._nullable),
        )
        return response

    def _refused(
        self, record: dict[str, Any], started: float, error: InvalidRequestError
    ) -> InvalidInput:
        """Record a refused request; the InvalidInput (HTTP 400) to raise."""
        message = cap_message(str(error))
        reason = refusal_reason(400, message)
        record.update(
            status="invalid",
            http_status=400,
            reason=reason,
            error=message,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        self.request_logger.log(record)
        self.metrics.observe_refusal(reason)
        return InvalidInput(message)

    def explain(
        self, payload: ScoringRequest | RawPayload, headers: dict[str, str] | None = None
    ) -> ScoringRequest | dict[str, Any]:
        """KServe's V1 explain verb, in predict()'s place between preprocess() and postprocess():
        the same decoding, validation, limits and request record, answered with each instance's
        exact contributions (serving/explain.py). Given a request instead of preprocess()'s
        result (a direct, in-process call), it runs the three steps and returns the response."""
        if not isinstance(payload, ScoringRequest):
            explained = self.explain(self.preprocess(payload, headers), headers)
            assert isinstance(explained, ScoringRequest)
            response = self.postprocess(explained)
            assert isinstance(response, dict)  # V1 only: a V2 request is refused below
            return response
        payload.record["verb"] = "explain"
        try:
            if payload.v2 is not None:
                raise InvalidRequestError("explanations are served on V1 (:explain) only")
            payload.predictions = self._explainer().explain(payload.columns, payload.count)
        except InvalidRequestError as error:
            raise self._refused(payload.record, payload.started, error) from error
        return payload

    def record_refusal(self, context: RequestContext, status: int, message: str) -> None:
        """Record a request refused before predict() (no inputs: they may not even parse)."""
        if context.recorded:
            return
        context.recorded = True
        if context.request_id is None:
            context.request_id, context.request_id_replaced = bounded_request_id(context.client_id)
        message = cap_message(message)
        reason = refusal_reason(status, message)
        record: dict[str, Any] = {
            "ts": utc_timestamp(),
            "request_id": context.request_id,
            "model_name": self.name,
            "model_version": self.compiled.version if self.compiled else None,
            "protocol": context.protocol,
            "status": "invalid",
            "http_status": status,
            "reason": reason,
            "error": message,
            "latency_ms": round((time.perf_counter() - context.started) * 1000, 3),
        }
        if context.request_id_replaced is not None:
            record["request_id_replaced"] = context.request_id_replaced
        self.request_logger.log(record)
        self.metrics.observe_refusal(reason)

    def _explainer(self) -> Explainer:
        if self.explainer is None:
            raise ModelNotReady(self.name, "the model is not loaded")
        return self.explainer

    def _model(self) -> CompiledModel:
        if self.compiled is None:
            raise ModelNotReady(self.name, "the model is not loaded")
        return self.compiled


def _use_request_id(record: dict[str, Any], context: RequestContext | None, candidate: str) -> None:
    """Take a V2 body's ``id`` as the request id, bounded like a header's."""
    request_id, replaced = bounded_request_id(candidate)
    record["request_id"] = request_id
    record.pop("request_id_replaced", None)
    if replaced is not None:
        record["request_id_replaced"] = replaced
    if context is not None:
        context.request_id, context.request_id_replaced = request_id, replaced


def _check_requested_outputs(request: InferRequest) -> None:
    for output in request.request_outputs or ():
        if output.name not in OUTPUT_NAMES:
            raise InvalidRequestError(
                f'output "{output.name}" is not an output of this model '
                f"(outputs: {', '.join(OUTPUT_NAMES)})"
            )
