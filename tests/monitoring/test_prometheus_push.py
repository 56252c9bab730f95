"""The monitor's gauges: what a run pushes (per check, per version), and a push that fails.

The gauges are read back with prometheus_client's parser from the text a Pushgateway receives;
tests/monitoring/test_alerts_live.py pushes them to a real gateway and alerts on them.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stroke_mlops.cli import main
from stroke_mlops.monitoring.feedback import record_feedback
from stroke_mlops.monitoring.monitor import run_monitor
from stroke_mlops.monitoring.prometheus_push import PushError, monitor_metrics_text, push_summary
from stroke_mlops.monitoring.summary import MonitorSummary
from stroke_mlops.serving.metrics import METRIC_NAMES
from stroke_mlops.training.promotion_gate import GateThresholds
from tests.monitoring.conftest import VERSION, MonitoredStore, ServeRows

OTHER = "v9-challenger"


def samples(summary: MonitorSummary) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = monitor_metrics_text(summary, now=1_700_000_000.0).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def as_other_version(log_dir: Path) -> list[tuple[str, int]]:
    """Copy every logged record as if another version had answered it (new prediction ids),
    written twice (a repeated object counts once); (row id, decision) of each copied row."""
    rows: list[tuple[str, int]] = []
    copied: list[str] = []
    for path in sorted(log_dir.rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record.get("status") != "ok":
                continue
            record["model_version"], record["prediction_id"] = OTHER, uuid.uuid4().hex
            decisions = record["outputs"]["decision"]
            ids = [record["prediction_id"]] if len(decisions) == 1 else [
                f"{record['prediction_id']}:{i}" for i in range(len(decisions))
            ]  # fmt: skip
            rows += list(zip(ids, decisions, strict=True))
            copied.append(json.dumps(record))
    partition = next(log_dir.rglob("dt=*"))
    for name in ("other-a.jsonl", "other-b.jsonl"):
        (partition / name).write_text("\n".join(copied) + "\n")
    return rows


def test_a_run_pushes_its_verdict_each_check_and_each_versions_recall(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(monitored_store.root, store)
    logs = tmp_path / "logs"
    served = serve_rows(monitored_store.window_pool.head(240), str(logs))
    other_rows = as_other_version(logs)
    missed = [row_id for row_id, decision in other_rows if decision == 0][:25]
    record_feedback(str(store), {**dict.fromkeys(missed, 1), **dict.fromkeys(served[:30], 0)})

    summary = run_monitor(str(store), str(logs), tmp_path / "out")
    found = samples(summary)

    assert {name for name, _ in found} <= METRIC_NAMES
    assert found[("stroke_monitor_drift_detected", (("model_version", VERSION),))] == 0.0
    assert found[("stroke_monitor_window_rows", ())] == 240.0
    assert found[("stroke_monitor_last_run_timestamp_seconds", ())] == 1_700_000_000.0
    checks = {labels[0][1] for name, labels in found if name == "stroke_monitor_drift_distance"}
    assert {"age", "avg_glucose_level", "smoking_status", "bmi"} <= checks
    tested = [c for c in summary.features if c.verdict in ("drift", "no drift")]
    for check in tested:
        assert found[("stroke_monitor_drift_adjusted_p_value", (("check", check.name),))] == (
            pytest.approx(check.adjusted_p_value)
        )
    # the other version: 25 labelled strokes, none flagged (each row counted once)
    other = summary.other_versions[OTHER]
    assert (other.status, other.labelled_positives, other.recall.value) == ("ok", 25, 0.0)
    assert other.below_floor
    assert found[("stroke_monitor_labelled_positives", (("model_version", OTHER),))] == 25.0
    high = found[("stroke_monitor_realised_recall", (("bound", "high"), ("model_version", OTHER)))]
    assert high == pytest.approx(other.recall.high) and high < GateThresholds().min_recall
    floor = GateThresholds().min_recall  # the gate's floor is the alert's
    assert found[("stroke_monitor_recall_floor", (("model_version", OTHER),))] == floor
    # production: labels but no strokes among them: no recall estimate, only its counts
    assert not any(
        name == "stroke_monitor_realised_recall" and ("model_version", VERSION) in labels
        for name, labels in found
    )
    assert found[("stroke_monitor_labelled_positives", (("model_version", VERSION),))] == 0.0
    # summary.json round-trips the per-version part
    saved = MonitorSummary.from_json((tmp_path / "out" / "summary.json").read_text())
    assert saved.other_versions == summary.other_versions


def test_a_failed_push_is_one_line_and_the_report_is_kept(
    monitored_store: MonitoredStore,
    serve_rows: ServeRows,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs = tmp_path / "logs"
    serve_rows(monitored_store.window_pool.head(20), str(logs))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code = main(
        ["monitor", "--store", str(monitored_store.root), "--requests", str(logs),
         "--output", str(tmp_path / "out"), "--min-rows", "10", "--pushgateway", closed]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("monitor: ") and "20 rows" in out
    assert err.splitlines() == [
        f"monitor: metrics not pushed (the report is kept): Pushgateway {closed} could not be "
        "reached: [Errno 111] Connection refused"
    ]
    assert (tmp_path / "out" / "summary.json").is_file()
    assert (tmp_path / "out" / "report.html").is_file()

    code = main(
        ["monitor", "--store", str(monitored_store.root), "--requests", str(logs),
         "--output", str(tmp_path / "out2"), "--pushgateway", "ftp://gateway"]
    )  # fmt: skip
    assert code == 2
    assert "--pushgateway: expected an http(s)://host[:port]" in capsys.readouterr().err


def test_insufficient_data_is_minus_one_and_shows_no_recall() -> None:
    found = samples(_minimal_summary())
    assert found[("stroke_monitor_drift_detected", (("model_version", VERSION),))] == -1.0
    assert not any(name.startswith("stroke_monitor_realised") for name, _ in found)


def test_a_gateway_that_never_answers_is_given_up_after_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        summary = _minimal_summary()
        started = time.monotonic()
        with pytest.raises(
            PushError, match=rf"Pushgateway {url} could not be reached: .*timed out"
        ):
            push_summary(summary, url, timeout_s=0.5)
        assert time.monotonic() - started < 5


def _minimal_summary() -> MonitorSummary:
    no_interval = {"value": None, "low": None, "high": None}
    return MonitorSummary.from_dict(
        {
            "model_version": VERSION, "since": None, "until": None, "rows": 0, "min_rows": 200,
            "reference_rows": 0, "alpha": 0.05, "correction": "holm", "drift_detected": False,
            "recommendation": "insufficient_data", "reasons": [], "features": [],
            "prediction": {"checks": [], "reference_positive_rate": 0.0,
                           "window_positive_rate": 0.0, "threshold": 0.5},
            "data_quality": {"missing_rate": {}, "reference_missing_rate": {},
                             "accepted_requests": 0, "refused_requests": 0, "refused_rate": 0.0,
                             "refusal_reasons": {}, "unreadable_records": 0,
                             "other_version_requests": 0, "objects_read": 0},
            "performance": {"status": "too few labels", "labelled_rows": 0,
                            "labelled_positives": 0, "min_labelled_positives": 20,
                            "recall": no_interval, "precision": no_interval,
                            "recall_floor": 0.4, "below_floor": False, "message": ""},
            "generated_at": "2026-01-01T00:00:00+00:00",
        }
    )  # fmt: skip
