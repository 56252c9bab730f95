"""stroke-mlops: a stroke-risk model from raw CSV to a KServe endpoint, built with KFP v2."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("stroke-mlops")
except _metadata.PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
