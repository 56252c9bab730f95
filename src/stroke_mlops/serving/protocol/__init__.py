"""The request protocol: strict JSON, V1 and V2 bodies turned into columns, value checks, and
the V2 binary tensor extension.

A V1 body (``{"instances": [{...}, ...]}``) and a V2 request (one named input per feature) are
first turned into the same columns (:func:`columns_from_v1`, :func:`columns_from_v2`), which
:meth:`stroke_mlops.serving.scoring.CompiledModel.predict` then validates, encodes and scores.
Bad input raises :class:`InvalidRequestError` whose message names the instance, the field and
what was expected, e.g.
``instance 3: field "gender": expected one of Female, Male, Other; got "F"``.
"""

from stroke_mlops.serving.protocol.columns import (
    Columns,
    V2Tensor,
    columns_from_v1,
    columns_from_v2,
)
from stroke_mlops.serving.protocol.errors import MAX_REPORTED_ERRORS, InvalidRequestError
from stroke_mlops.serving.protocol.inputs import MAX_INSTANCES, InputSpec, input_specs
from stroke_mlops.serving.protocol.strict_json import parse_json_body

__all__ = [
    "MAX_INSTANCES",
    "MAX_REPORTED_ERRORS",
    "Columns",
    "InputSpec",
    "InvalidRequestError",
    "V2Tensor",
    "columns_from_v1",
    "columns_from_v2",
    "input_specs",
    "parse_json_body",
]
