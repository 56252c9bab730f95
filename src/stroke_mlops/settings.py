"""Names of the infrastructure and the loop's defaults, defined once.

The CLI, the pipelines, the manifest builders (:mod:`stroke_mlops.deploy.kserve_objects`) and the
model server read them from here; ``tests/unit/test_settings.py`` checks that each reader's
default is the value below and that the values are written nowhere else in the code. The
Kubernetes manifests (``manifests/``) and make targets (``mk/``) repeat some of them: change
them together.
"""

from __future__ import annotations

from dataclasses import dataclass

# Kubernetes and MinIO
NAMESPACE = "stroke-mlops"  # the app, MinIO and the InferenceService
BUCKET = "stroke-mlops"  # the MinIO bucket
S3_CREDENTIALS_SECRET = "stroke-mlops-s3"  # keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
CLUSTER_S3_ENDPOINT = f"http://minio.{NAMESPACE}.svc.cluster.local:9000"  # as pods see it
CLUSTER_S3_REGION = "us-east-1"
CLUSTER_STORE_URI = f"s3://{BUCKET}/models"
CLUSTER_REQUEST_LOG_URI = f"s3://{BUCKET}/request-logs"
CLUSTER_DATA_URI = f"s3://{BUCKET}/data/healthcare-dataset-stroke-data.csv"
# Prometheus: the Pushgateway the monitor pushes its verdict to (manifests/monitoring)
CLUSTER_PUSHGATEWAY_URL = f"http://pushgateway.{NAMESPACE}.svc.cluster.local:9091"
PUSHGATEWAY_URL_ENV = "STROKE_PUSHGATEWAY_URL"  # the CLI's default for monitor --pushgateway

# Kubeflow Pipelines
KFP_API = "http://127.0.0.1:8888"  # e.g. a port-forward of ml-pipeline-ui
KFP_EXPERIMENT = "stroke-mlops"

# The model server
MODEL_MOUNT_PATH = "/mnt/models"  # where KServe's storage initializer puts storageUri
HTTP_PORT = 8080


@dataclass(frozen=True)
class LoopDefaults:
    """The monitor-and-retrain loop's defaults (CLI options and pipeline parameters).

    ``min_rows`` and ``cooldown_hours`` are also the defaults of the monitoring functions that
    apply them (monitoring.monitor.DEFAULT_MIN_ROWS, monitoring.retraining.DEFAULT_COOLDOWN_HOURS;
    a test keeps them equal).
    """

    window_hours: float = 24.0  # judge the last N hours of requests
    min_rows: int = 200  # fewer rows is insufficient data: never drift, never retraining
    cooldown_hours: float = 24.0  # no retraining within N hours of a promotion or attempt


LOOP = LoopDefaults()
