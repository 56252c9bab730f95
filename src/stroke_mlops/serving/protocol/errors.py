"""The refusal every protocol step raises, and the helpers that word its message."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_REPORTED_ERRORS = 10  # a request with more bad values reports the first ones and a count


class InvalidRequestError(ValueError):
    """A request the signature refuses; the message names the instance, field and expectation."""


def raise_if_any(errors: list[str]) -> None:
    """Raise one InvalidRequestError listing the first MAX_REPORTED_ERRORS of ``errors``."""
    if not errors:
        return
    shown = errors[:MAX_REPORTED_ERRORS]
    more = len(errors) - len(shown)
    message = "; ".join(shown) + (f"; and {more} more" if more else "")
    raise InvalidRequestError(message)


def quote(text: object) -> str:
    """``text`` as a JSON string, cut to 60 characters."""
    return json.dumps(str(text)[:60])


def describe(value: Any) -> str:
    """A short, JSON-flavoured rendering of a bad value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 64:  # never echo (or even convert) a huge integer in full
            return f"an integer of about {round(value.bit_length() * 0.30103)} digits"
        return str(value)
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bytes):
        return f"{quote(value.decode('utf-8', 'replace'))} (bytes)"
    return f"a {type(value).__name__}"
