"""minio internals the model store relies on (minio 7.2).

* ``Minio._put_object`` sends the headers it is given as they are; the public ``put_object``
  turns any header it does not know (``If-Match``, ``If-None-Match``) into ``x-amz-meta-*``.
  The production pointer's compare-and-swap needs the conditional headers.
* ``Minio._base_url`` is where a client keeps its endpoint; error messages name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stroke_mlops.compat import require_tested

TESTED = ("7.2",)
VERSION = require_tested("minio", TESTED, __name__)


def put_object_with_headers(
    client: Any, bucket: str, key: str, content: bytes, headers: Mapping[str, Any]
) -> Any:
    """PUT ``content`` at ``bucket/key`` sending ``headers`` unchanged (conditional writes)."""
    return client._put_object(bucket, key, content, headers=dict(headers))


def endpoint_url(client: Any) -> str | None:
    """The client's endpoint as ``http(s)://host``, or None when it cannot be read."""
    base_url = getattr(client, "_base_url", None)
    host = getattr(base_url, "host", None)
    if not host:
        return None
    scheme = "https" if getattr(base_url, "is_https", True) else "http"
    return f"{scheme}://{host}"
