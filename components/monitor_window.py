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
    pushgateway_url: str,
    summary: Output[Artifact],
    metrics: Output[Metrics],
    report: Output[HTML],
) -> NamedTuple("Verdict", [("recommendation", str), ("drift_detected", bool)]):  # type: ignore[valid-type]
    """Judge the window against the production version's reference set (summary.json + HTML);
    push its gauges to the Pushgateway at ``pushgateway_url`` unless it is empty."""
    from pathlib import Path

    from stroke_mlops import steps
    from stroke_mlops.logs import configure_logging

    configure_logging()
    verdict = steps.monitor_request_window(
        store_uri,
        requests_uri,
        since=since,
        until=until,
        min_rows=min_rows,
        summary_path=Path(summary.path),
        report_path=Path(report.path),
        pushgateway_url=pushgateway_url,
    )
    for name, value in verdict.metrics.items():
        metrics.log_metric(name, value)
    summary.metadata.update(verdict.metadata)
    return (verdict.recommendation, verdict.drift_detected)
