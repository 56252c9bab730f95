"""xgboost internals the compiled scorer relies on (xgboost 3.2).

``Booster.inplace_predict`` spends most of a one-row call in Python: it checks the input's type
against a dozen frameworks, rebuilds its JSON configuration and copies the output through two
array interfaces. :class:`DensePredictor` makes the same C call it ends in,
``XGBoosterPredictFromDense`` (through ``xgboost.core._LIB`` and ``_check_call``), with the
configuration built once; the input is always a C-contiguous float64 matrix here. The compiled
model's parity check (compiled vs. ``predict_proba`` at load) covers it like the rest.
"""

from __future__ import annotations

import ctypes
import json
from typing import Any

import numpy as np
from xgboost.core import _LIB, _check_call, c_bst_ulong

from stroke_mlops.compat import require_tested

TESTED = ("3.2",)
VERSION = require_tested("xgboost-cpu", TESTED, __name__)


class DensePredictor:
    """``booster.inplace_predict(x, iteration_range=..., predict_type="value",
    missing=..., validate_features=False)`` for a 2-D float64 ``x``, as float64."""

    def __init__(self, booster: Any, iteration_range: tuple[int, int], missing: float) -> None:
        self._booster = booster  # keeps the handle alive
        self._handle = booster.handle
        self._config = json.dumps(
            {
                "type": 0,  # "value"
                "training": False,
                "iteration_begin": int(iteration_range[0]),
                "iteration_end": int(iteration_range[1]),
                "missing": float(missing),
                "strict_shape": False,
                "cache_id": 0,
            }
        ).encode()

    def __call__(self, encoded: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(encoded, dtype=np.float64)
        interface = json.dumps(
            {
                "data": (rows.ctypes.data, False),
                "shape": list(rows.shape),
                "strides": None,
                "typestr": "<f8",
                "version": 3,
            }
        ).encode()
        shape = ctypes.POINTER(c_bst_ulong)()
        dims = c_bst_ulong()
        predictions = ctypes.POINTER(ctypes.c_float)()
        _check_call(
            _LIB.XGBoosterPredictFromDense(
                self._handle,
                interface,
                self._config,
                ctypes.c_void_p(),
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(predictions),
            )
        )
        count = 1
        for axis in range(dims.value):
            count *= int(shape[axis])
        # a copy: the buffer belongs to the booster and is reused by its next prediction
        return np.ctypeslib.as_array(predictions, shape=(count,)).astype(np.float64)
