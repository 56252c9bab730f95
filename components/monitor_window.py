from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Metrics, Output

from components._image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def monitor_window(
    store_uri: str,
    requests_uri: str,
    since: str,
    until: str,
    min_rows: int,
    summary: Output[Artifact],
    metrics: Output[Metrics],
    report: Output[HTML],
) -> NamedTuple("Verdict", [("recommendation", str), ("drift_detected", bool)]):  # type: ignore[valid-type]
    """Judge the window against the production version's reference set (summary.json + HTML)."""
    import shutil
    import tempfile
    from datetime import datetime
    from pathlib import Path

    from stroke_mlops.logs import configure_logging
    from stroke_mlops.monitoring.monitor import REPORT_FILE, SUMMARY_FILE, run_monitor

    configure_logging()
    with tempfile.TemporaryDirectory(prefix="monitor-") as scratch:
        result = run_monitor(
            store_uri,
            requests_uri,
            Path(scratch),
            since=datetime.fromisoformat(since),
            until=datetime.fromisoformat(until),
            min_rows=min_rows,
        )
        shutil.copyfile(Path(scratch) / SUMMARY_FILE, summary.path)
        shutil.copyfile(Path(scratch) / REPORT_FILE, report.path)
    metrics.log_metric("rows", result.rows)
    metrics.log_metric("drift_detected", int(result.drift_detected))
    metrics.log_metric("drifted_features", len(result.drifted_features))
    for feature in result.features:
        if feature.verdict in ("drift", "no drift"):
            metrics.log_metric(f"{feature.name}_adjusted_p", round(feature.adjusted_p_value, 6))
    summary.metadata.update(
        {
            "model_version": result.model_version,
            "recommendation": result.recommendation,
            "drifted_features": result.drifted_features,
            "reasons": result.reasons,
        }
    )
    return (result.recommendation, result.drift_detected)
