"""Every use of an upstream library's private names or internals, one module per upstream.

The rest of the code uses only what kfp, kserve, uvicorn, minio and xgboost document. Where
only an internal will do, it lives in :mod:`kfp_local`, :mod:`kserve`, :mod:`uvicorn`,
:mod:`minio` or :mod:`xgboost` here, and each of those refuses to import on a version it was not
tested with (:func:`require_tested`), so an upgrade fails loudly at start-up instead of
misbehaving.
To upgrade: read the new version's source of every name the module lists, adjust, and add the
version to its ``TESTED``.

Kept free of upstream imports: each module imports its upstream when it is itself imported.
"""

from __future__ import annotations

from importlib.metadata import version

# compat module -> the distribution whose internals it uses
UPSTREAMS = {
    "stroke_mlops.compat.kfp_local": "kfp",
    "stroke_mlops.compat.kserve": "kserve",
    "stroke_mlops.compat.uvicorn": "uvicorn",
    "stroke_mlops.compat.minio": "minio",
    "stroke_mlops.compat.xgboost": "xgboost-cpu",
}


class UntestedUpstreamError(ImportError):
    """An upstream library's installed version is not one its compat module was tested with."""


def require_tested(distribution: str, tested: tuple[str, ...], module: str) -> str:
    """The installed ``distribution`` version; UntestedUpstreamError unless its ``major.minor``
    is in ``tested``."""
    installed = version(distribution)
    if ".".join(installed.split(".")[:2]) not in tested:
        raise UntestedUpstreamError(
            f"{module} relies on internals of {distribution} {' or '.join(tested)}, but "
            f"{distribution} {installed} is installed: check every name {module} uses against "
            f"{distribution} {installed}'s source, then add it to {module}.TESTED"
        )
    return installed
