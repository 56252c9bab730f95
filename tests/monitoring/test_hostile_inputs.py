"""The loop's own inputs under bad data (issue 20): request-log objects, CLI options, label ids.

Every case ends in a clear outcome: counted and skipped, a data-quality alarm, or exit 2 with one
line; never a traceback, and never a value from the bad record echoed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

import orjson
import pytest

from stroke_mlops.cli import main
from stroke_mlops.monitoring.feedback import record_feedback
from stroke_mlops.monitoring.monitor import run_monitor
from tests.monitoring.conftest import MonitoredStore, ServeRows

SECRET = "zz-secret-value-zz"  # a bad value that must never be echoed


def _served_logs(monitored_store: MonitoredStore, serve_rows: ServeRows, root: Path) -> list[str]:
    """250 real rows served and logged under root/logs; returns the prediction ids."""
    return serve_rows(monitored_store.window_pool.sample(250, random_state=11), str(root / "logs"))


def _one_record(logs: Path) -> dict:
    first = next(p for p in sorted(logs.rglob("*.jsonl")))
    return json.loads(first.read_text().splitlines()[0])


def _bad_records(template: dict) -> list[dict]:
    bad = []
    for field, value in (
        ("age", [SECRET]),
        ("age", [["abc"]]),
        ("gender", [["x"]]),
        ("gender", [SECRET]),
        ("avg_glucose_level", [None]),
        ("bmi", [{"a": 1}]),
        ("hypertension", [True]),
        ("age", []),
    ):
        record = json.loads(json.dumps(template))
        record["inputs"][field] = value
        bad.append(record)
    record = json.loads(json.dumps(template))
    record["outputs"]["probability"] = [SECRET]
    bad.append(record)
    record = json.loads(json.dumps(template))
    del record["inputs"]["smoking_status"]
    bad.append(record)
    return bad


def test_bad_records_are_counted_by_reason_skipped_and_never_echoed(
    monitored_store: MonitoredStore,
    serve_rows: ServeRows,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _served_logs(monitored_store, serve_rows, tmp_path)
    logs = tmp_path / "logs"
    template = _one_record(logs)
    lines = [orjson.dumps(r) for r in _bad_records(template)]
    lines.append(b'{"model_version": "' + template["model_version"].encode() + b'", "status": "ok",'
                 b' "inputs": {"age": [NaN]}}')  # fmt: skip
    (logs / "dt=2026-13-45").mkdir()  # a partition folder that is no date
    (logs / "dt=2026-13-45" / "bad.jsonl").write_bytes(b"\n".join(lines) + b"\n")

    code = main(["monitor", "--store", str(monitored_store.root), "--requests", str(logs),
                 "--output", str(tmp_path / "out")])  # fmt: skip
    out, err = capsys.readouterr()

    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    quality = summary["data_quality"]
    assert summary["rows"] == 250
    assert quality["invalid_records"] == {
        "age: not a number": 2,
        "gender: not a known category": 2,
        "avg_glucose_level: missing": 1,
        "bmi: not a number": 1,
        "hypertension: not 0 or 1": 1,
        "age: row counts differ": 1,
        "probability: not a number in [0, 1]": 1,
        "smoking_status: missing": 1,
    }
    assert quality["unreadable_records"] == 1  # NaN is not JSON
    assert summary["recommendation"] == "data_quality_alarm"  # 11 of 261 unusable > 1 %
    assert summary["reasons"][0].startswith("data quality: 11 of 261 logged records")
    page = (tmp_path / "out" / "report.html").read_text()
    assert "Data-quality alarm" in page and "age: not a number" in page
    for text in (out, err, page, json.dumps(summary)):
        assert SECRET not in text and "abc" not in text


def test_a_vanished_feature_is_a_data_quality_alarm_not_no_drift(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    _served_logs(monitored_store, serve_rows, tmp_path)
    for path in (tmp_path / "logs").rglob("*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for record in records:
            record["inputs"]["age"] = [None] * record["instances"]
            record["inputs"]["avg_glucose_level"] = ["NaN"] * record["instances"]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))

    summary = run_monitor(str(monitored_store.root), str(tmp_path / "logs"), tmp_path / "out")

    assert summary.recommendation == "data_quality_alarm"
    assert summary.data_quality.invalid_records == {"age: missing": 250}
    assert summary.reasons[0].startswith("data quality: 250 of 250 logged records")


def test_a_copied_object_is_counted_once_and_odd_files_do_not_hang_or_stop_the_monitor(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    _served_logs(monitored_store, serve_rows, tmp_path)
    logs = tmp_path / "logs"
    objects = sorted(logs.rglob("*.jsonl"))
    shutil.copy(objects[0], objects[0].with_name("copy-of-" + objects[0].name))
    os.mkfifo(logs / "waiting.jsonl")  # nobody ever writes to it
    (logs / "zeros.jsonl").symlink_to("/dev/zero")
    (logs / "long.jsonl").write_bytes(b"x" * (5 * 1024 * 1024) + b"\n")

    summary = run_monitor(str(monitored_store.root), str(logs), tmp_path / "out")

    quality = summary.data_quality
    assert summary.rows == 250
    assert quality.duplicate_records == len(objects[0].read_text().splitlines())
    assert quality.unreadable_objects == 2  # the FIFO and /dev/zero: not regular files
    assert quality.unreadable_records == 1  # the 5 MiB line
    assert summary.recommendation == "data_quality_alarm"
    assert "2 request-log object(s) could not be read" in " ".join(summary.reasons)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--until", "9999-12-31T23:59:59Z", "too close to the calendar's ends"),
        ("--since", "0001-01-01T00:00:00+01:00", "too close to the calendar's ends"),
        ("--since", "2026-13-45", "is not an ISO-8601 time"),
        ("--output", "FILE", "exists and is not a folder"),
    ],
)
def test_bad_window_and_output_options_exit_2_before_any_work(
    option: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    if value == "FILE":
        output.write_text("keep me")
        value = str(output)
    argv = ["monitor", "--store", str(tmp_path / "no-store"), "--requests", str(tmp_path),
            "--output", str(output)]  # fmt: skip
    with pytest.raises(SystemExit) if option != "--output" else contextlib.nullcontext():
        code = main([*argv, option, value] if option != "--output" else argv)
        assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert (
        len([line for line in err.splitlines() if line.startswith("error") or "error:" in line])
        == 1
    )


def test_a_reused_client_request_id_cannot_change_realised_recall(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    """Issue 20 case 2: thirty requests sent with one client id and one label for it."""
    pool = monitored_store.window_pool
    honest = pool.sample(250, random_state=12)
    store = tmp_path / "store"
    (store / "stroke").mkdir(parents=True)
    for item in (monitored_store.root / "stroke").iterdir():
        (store / "stroke" / item.name).symlink_to(item)
    # client ids patient-420, patient-421, …: the forged batch reuses the same ones
    ids = serve_rows(honest, str(tmp_path / "logs" / "a"), prefix="patient-42")
    forged = serve_rows(
        pool.sample(30, random_state=13), str(tmp_path / "logs" / "b"), prefix="patient-42"
    )
    assert len(set(ids + forged)) == 280  # the predictor issued 280 distinct ids

    with pytest.raises(ValueError, match="must be an id the predictor issued"):
        record_feedback(str(store), {"patient-420": 1})
    record_feedback(str(store), {ids[0]: 1})

    summary = run_monitor(str(store), str(tmp_path / "logs"), tmp_path / "out")
    assert summary.performance.labelled_rows == 1
    assert summary.performance.labelled_positives == 1


def test_repeats_are_found_across_flushes(
    monitored_store: MonitoredStore,
    serve_rows: ServeRows,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stroke_mlops.monitoring import window as window_module
    from stroke_mlops.monitoring.reference import profile_reference
    from stroke_mlops.monitoring.requests import RequestLogReader

    _served_logs(monitored_store, serve_rows, tmp_path)
    monkeypatch.setattr(window_module, "_CHUNK_ROWS", 7)  # many small flushes
    counts = window_module.WindowCounts(
        profile_reference(monitored_store.reference, threshold=0.5),
        _one_record(tmp_path / "logs")["model_version"],
    )
    lines = list(RequestLogReader(str(tmp_path / "logs")).lines())
    for record, line_hash in [*lines, *lines[::-1], *lines[:50]]:
        counts.add(record, line_hash)
    counts.flush()
    assert (counts.rows, counts.duplicate_records) == (250, 300)
    assert len(counts._seen) < 12  # merged, not one array per flush
