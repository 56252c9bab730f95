"""Feedback labels (folder and S3 store), labelled_requests, realised recall; the CLI's exits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stroke_mlops.cli import main
from stroke_mlops.data import schema
from stroke_mlops.monitoring.feedback import (
    FEEDBACK_DIR,
    FeedbackError,
    labelled_requests,
    load_feedback,
    record_feedback,
)
from stroke_mlops.monitoring.monitor import MonitorSummary, run_monitor
from stroke_mlops.registry.model_dir import open_signed_model_dir
from stroke_mlops.registry.signing import public_key_from_env
from tests.monitoring.conftest import THRESHOLD, MonitoredStore, ServeRows
from tests.s3_server import S3Bucket


def pid(number: int) -> str:
    """A prediction id of the predictor's form."""
    return f"{number:032x}"


def stored(store: Path | str) -> dict[str, int]:
    """Every stored (prediction id → stroke), read back from the feedback objects."""
    folder = Path(store) / FEEDBACK_DIR
    lines = [line for f in sorted(folder.iterdir()) for line in f.read_text().splitlines()]
    return {d["prediction_id"]: d["stroke"] for d in map(json.loads, lines)}


def test_feedback_round_trip_in_a_folder_store_appends_and_refuses_a_conflict(
    tmp_path: Path,
) -> None:
    first = record_feedback(str(tmp_path), {pid(1): 1, pid(2): 0})
    again = record_feedback(str(tmp_path), [(pid(2), 0), (pid(3), 1), (pid(3), 1)])
    with pytest.raises(FeedbackError, match=r"1 prediction id.*already have the other outcome"):
        record_feedback(str(tmp_path), [(pid(2), 1)])

    assert first.uri.startswith(tmp_path.as_uri()) and f"/{FEEDBACK_DIR}/" in first.uri
    assert (again.rows, again.duplicates, again.already_stored, again.stored) == (3, 1, 1, 1)
    assert stored(tmp_path) == {pid(1): 1, pid(2): 0, pid(3): 1}
    assert len(load_feedback(str(tmp_path)).index) == 3
    files = sorted((tmp_path / FEEDBACK_DIR).iterdir())
    assert len(files) == 2 and all(f.suffix == ".jsonl" for f in files)  # appended, not replaced


def test_feedback_round_trip_in_an_s3_store(s3_bucket: S3Bucket) -> None:
    record_feedback(s3_bucket.uri("models"), {pid(7): 1})
    assert s3_bucket.keys(f"models/{FEEDBACK_DIR}/")
    assert len(load_feedback(s3_bucket.uri("models")).index) == 1


def test_a_bad_outcome_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(FeedbackError, match=r"outcome 1: stroke must be 0 or 1"):
        record_feedback(str(tmp_path), [(pid(1), 1), (pid(2), 2)])
    with pytest.raises(FeedbackError, match="both outcomes in this file"):
        record_feedback(str(tmp_path), [(pid(1), 1), (pid(1), 0)])
    for forged in (
        "patient-42",
        "a" * 10_000,
        pid(1)[:-1] + "\x00",
        pid(1) + "\n",
        pid(0xABCDEF).upper(),
    ):
        with pytest.raises(FeedbackError, match="must be an id the predictor issued") as caught:
            record_feedback(str(tmp_path), [(forged, 1)])
        assert forged not in str(caught.value)  # the value is not echoed
    assert not (tmp_path / FEEDBACK_DIR).exists()


def _store_copy(monitored_store: MonitoredStore, root: Path) -> Path:
    """The same store (versions and pointer linked) with a feedback folder of its own."""
    (root / "stroke").mkdir(parents=True)
    for item in (monitored_store.root / "stroke").iterdir():
        (root / "stroke" / item.name).symlink_to(item)
    return root


def test_labelled_requests_and_realised_recall_from_feedback(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    pool = monitored_store.window_pool
    rows = pd.concat([pool[pool["stroke"] == 1], pool[pool["stroke"] == 0].head(300)])
    logs = tmp_path / "logs"
    ids = serve_rows(rows, str(logs), prefix="req-")
    store = _store_copy(monitored_store, tmp_path / "store")
    record_feedback(str(store), dict(zip(ids, rows["stroke"].astype(int).tolist(), strict=True)))

    labelled = labelled_requests(str(store), str(logs))
    assert list(labelled.columns) == [*schema.FEATURE_COLUMNS, "stroke", "prediction_id"]
    assert len(labelled) == len(rows)
    by_id = labelled.set_index("prediction_id")
    assert by_id.loc[ids[0], "age"] == rows.iloc[0]["age"]
    assert by_id.loc[ids[0], "work_type"] == rows.iloc[0]["work_type"]
    assert (
        str(labelled["bmi"].dtype) == "float64" and str(labelled["hypertension"].dtype) == "int64"
    )
    assert labelled["stroke"].sum() == rows["stroke"].sum()

    model = open_signed_model_dir(monitored_store.version_dir, public_key_from_env()).load_model()
    decisions = model.predict_proba(rows[list(schema.FEATURE_COLUMNS)])[:, 1] >= THRESHOLD
    strokes = rows["stroke"].to_numpy() == 1
    performance = run_monitor(str(store), str(logs), tmp_path / "out").performance
    assert performance.status == "ok"
    assert performance.labelled_positives == strokes.sum() >= 20
    assert performance.recall.value == pytest.approx(decisions[strokes].mean())
    assert performance.precision.value == pytest.approx(strokes[decisions].mean())
    recall = performance.recall
    assert recall.low is not None and recall.value is not None and recall.high is not None
    assert recall.low < recall.value < recall.high


def test_too_few_labelled_strokes_say_so(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    pool = monitored_store.window_pool
    rows = pd.concat([pool[pool["stroke"] == 1].head(5), pool[pool["stroke"] == 0].head(200)])
    ids = serve_rows(rows, str(tmp_path / "logs"))
    store = _store_copy(monitored_store, tmp_path / "store")
    record_feedback(str(store), dict(zip(ids, rows["stroke"].astype(int).tolist(), strict=True)))

    performance = run_monitor(str(store), str(tmp_path / "logs"), tmp_path / "out").performance

    assert performance.status == "too few labels"
    assert performance.labelled_positives == 5
    assert performance.message == "too few labels: 5 labelled strokes in the window, 20 needed"


def test_cli_monitor_exits_0_with_a_report_and_2_on_unreadable_input(
    monitored_store: MonitoredStore,
    serve_rows: ServeRows,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs = tmp_path / "logs"
    serve_rows(monitored_store.window_pool.head(50), str(logs))

    code = main(
        ["monitor", "--store", str(monitored_store.root), "--requests", str(logs),
         "--output", str(tmp_path / "out"), "--min-rows", "100"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("monitor: insufficient_data — 50 rows")
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["rows"] == 50

    code = main(
        ["monitor", "--store", str(monitored_store.root), "--requests", str(tmp_path / "nowhere"),
         "--output", str(tmp_path / "out2")]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("error: ") and "no such folder" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err

    code = main(
        ["monitor", "--store", str(tmp_path / "empty-store"), "--requests", str(logs),
         "--output", str(tmp_path / "out3")]
    )  # fmt: skip
    assert code == 2
    assert "no production model" in capsys.readouterr().err


def test_cli_feedback_names_bad_rows_and_records_good_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"prediction_id,stroke\n{pid(1)},1\n{pid(2)},yes\n,0\n{pid(3)},1,extra\n")
    assert main(["feedback", "--store", str(tmp_path / "s"), "--labels", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 3 bad row(s)") and len(err.splitlines()) == 1
    assert "line 3: stroke must be 0 or 1" in err and "yes" not in err
    assert "line 4: prediction_id must be an id the predictor issued" in err
    assert "line 5: 3 fields; expected 2" in err
    assert not (tmp_path / "s").exists()

    for header in ("prediction_id,prediction_id,stroke", "request_id,stroke", "stroke"):
        (tmp_path / "header.csv").write_text(f"{header}\n{pid(1)},1\n")
        assert main(["feedback", "--store", str(tmp_path / "s"), "--labels",
                     str(tmp_path / "header.csv")]) == 2  # fmt: skip
        assert "expected a header with exactly the columns" in capsys.readouterr().err

    good = tmp_path / "good.csv"
    good.write_text(f"stroke,prediction_id\n1,{pid(1)}\n0,{pid(2)}:3\n0,{pid(2)}:3\n")
    assert main(["feedback", "--store", str(tmp_path / "s"), "--labels", str(good)]) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith("feedback: 3 outcome rows (1 strokes): 1 duplicate") and "recorded 2" in out
    )
    assert stored(tmp_path / "s") == {pid(1): 1, f"{pid(2)}:3": 0}


def test_realised_recall_under_the_floor_recommends_retraining_without_drift(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    rows = monitored_store.window_pool.sample(400, random_state=7)
    ids = serve_rows(rows, str(tmp_path / "logs"))
    store = _store_copy(monitored_store, tmp_path / "store")
    record_feedback(str(store), dict(zip(ids, rows["stroke"].astype(int).tolist(), strict=True)))

    def monitor(floor: float, output: str) -> MonitorSummary:
        return run_monitor(
            str(store),
            str(tmp_path / "logs"),
            tmp_path / output,
            min_labelled_positives=10,
            recall_floor=floor,
        )

    demanding = monitor(0.99, "demanding")
    assert demanding.drift_detected is False
    assert demanding.performance.below_floor is True
    assert demanding.recommendation == "retrain"
    assert demanding.reasons == [demanding.performance.message]
    assert "below the gate's floor 0.99" in demanding.performance.message
    page = (tmp_path / "demanding" / "report.html").read_text()
    assert "<b>Realised recall under the gate's floor: retraining recommended</b>" in page

    lenient = monitor(0.05, "lenient")
    assert lenient.performance.below_floor is False
    assert lenient.recommendation == "none"


def test_a_damaged_stored_label_line_is_quarantined_and_never_stops_the_monitor(
    monitored_store: MonitoredStore, serve_rows: ServeRows, tmp_path: Path
) -> None:
    rows = monitored_store.window_pool.head(30)
    ids = serve_rows(rows, str(tmp_path / "logs"))
    store = _store_copy(monitored_store, tmp_path / "store")
    record_feedback(str(store), {ids[0]: 1})
    damaged = store / FEEDBACK_DIR / "20990101T000000000000Z-x.jsonl"
    damaged.write_bytes(
        f'{{"prediction_id": "{ids[1]}", "stroke": 1, "recorded_at": "t"}}\n{{"stroke": 1}}\n'
        f'{{"prediction_id": "{ids[0]}", "stroke": 0}}\n\xff\xfe\n[[[[\n'.encode()
        + b"x" * 10_000
        + b"\n"
    )

    loaded = load_feedback(str(store))
    assert (len(loaded.index), loaded.quarantined_lines, loaded.conflicting_ids) == (1, 4, 1)
    assert loaded.quarantined[0].endswith("Z-x.jsonl line 2")

    summary = run_monitor(str(store), str(tmp_path / "logs"), tmp_path / "out", min_rows=10)
    assert summary.data_quality.quarantined_labels == 4
    assert summary.data_quality.conflicting_label_ids == 1  # ids[0]: 1 and 0, left out
    assert summary.performance.labelled_rows == 1  # ids[1] only
