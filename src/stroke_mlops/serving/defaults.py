"""Serving defaults shared by ``stroke-mlops serve``, the predictor module and the ServingRuntime.

Kept free of heavy imports so the CLI can show them without loading KServe.
"""

MAX_INSTANCES = 10_000  # per request; larger batches belong to a batch job, not the endpoint
DEFAULT_HOST = "127.0.0.1"  # local runs; the image's command binds 0.0.0.0 for the pod
POD_HOST = "0.0.0.0"  # in the pod, traffic from the Service (and any probe) comes to the pod IP
