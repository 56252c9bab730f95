"""Strict JSON: a raw request body decoded, or refused with what is wrong and where."""

from __future__ import annotations

import json
import sys
from typing import Any

from stroke_mlops.serving.protocol.errors import InvalidRequestError, quote


def parse_json_body(body: bytes | str) -> Any:
    """Decode a raw request body as strict JSON; InvalidRequestError says what is wrong and where.

    Refused: invalid JSON (with its position), a key repeated in one object (named), integers of
    more than 4,300 digits, and nesting deeper than Python's recursion limit.
    """
    try:
        return _STRICT_JSON.decode(body if isinstance(body, str) else body.decode("utf-8"))
    except json.JSONDecodeError as error:
        raise InvalidRequestError(f"the body is not valid JSON: {error}") from error
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            f"the body is not UTF-8 text (byte {error.start} is not valid UTF-8)"
        ) from error
    except RecursionError as error:
        raise InvalidRequestError("the body's JSON is nested too deeply") from error
    except ValueError as error:  # an integer beyond int()'s digit limit, a duplicate key
        reason = str(error)
        if "integer string conversion" in reason:
            reason = f"an integer has more than {sys.get_int_max_str_digits()} digits"
        raise InvalidRequestError(f"the body is not accepted JSON: {reason}") from error


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the key {quote(key)} appears twice in one object")
            seen.add(key)
    return obj


# NaN and Infinity (which Python's json.dumps writes) parse, so that the value check can name
# the field they were sent for.
_STRICT_JSON = json.JSONDecoder(object_pairs_hook=_object_without_duplicates)
