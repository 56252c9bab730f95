"""Calibration, power and cost of the drift monitor, on windows drawn from the real data.

    .venv/bin/python benchmarks/monitor_benchmark.py [--seeds 10] [--windows 25] [--rows 300]
                                                     [--requests 1000000]

Statistics. For each split seed the data is split as the pipeline splits it (60/20/20,
stratified). A model is trained by the project's own search (``train_candidates``) on the
*train* part only, its threshold chosen on its out-of-fold scores, and the reference set is built
as publish builds it (``build_reference_set``: the test part, scored). Windows are drawn without
replacement from the *validation* part: rows the model never saw and that are not reference
rows. (Publish trains on train + validation; the benchmark holds validation out so that the
windows' scores are honest, as live traffic's are.) Each window is one request-log record of the
predictor's format, scored by the model, and judged by the monitor's own code
(``WindowCounts`` + ``judge_window``). Printed: the false-alarm rate on undrifted windows and,
for each drift scenario of ``stroke_mlops.monitoring.scenarios``, the share of windows called
drift and the share where the right feature is named.

Cost. ``--requests`` single-row requests (real rows, resampled) are written as request-log
objects of 500 records (the sink's batch size) in a temp folder; then ``stroke-mlops monitor``
runs on them in a child process; its wall time, CPU time (user + system: what the judgement costs
whatever else shares the machine), rows/s and peak RSS are printed, with a window of a tenth of
the size for comparison (memory must not grow with the window).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stroke_mlops.data import dataset, schema  # noqa: E402
from stroke_mlops.monitoring import reference  # noqa: E402
from stroke_mlops.monitoring.monitor import DEFAULT_ALPHA, WindowCounts, judge_window  # noqa: E402
from stroke_mlops.monitoring.scenarios import SCENARIOS, Scenario  # noqa: E402
from stroke_mlops.registry import signature  # noqa: E402
from stroke_mlops.registry.model_dir import write_model_dir  # noqa: E402
from stroke_mlops.registry.signing import generate_key_pair  # noqa: E402
from stroke_mlops.registry.store import LocalModelStore  # noqa: E402
from stroke_mlops.serving.request_log import encode_record  # noqa: E402
from stroke_mlops.training import evaluate, metrics, train  # noqa: E402

DATA = REPO / "data/raw/healthcare-dataset-stroke-data.csv"
# The CLI in a child process that reports its own peak RSS (KiB) as its last stderr line.
_CHILD = (
    "import resource, sys\n"
    "from stroke_mlops.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print('cpu_s rss_kib', usage.ru_utime + usage.ru_stime, usage.ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)
VERSION = "benchmark"


def columns(rows: pd.DataFrame) -> dict[str, list[object]]:
    """Request-log ``inputs``: feature → values (missing bmi as None, indicators as int)."""
    out: dict[str, list[object]] = {}
    for name in schema.FEATURE_COLUMNS:
        series = rows[name]
        if name in schema.BINARY_COLUMNS:
            out[name] = [int(v) for v in series]
        elif name in schema.NUMERIC_COLUMNS:
            out[name] = [None if np.isnan(v) else float(v) for v in series]
        else:
            out[name] = [str(v) for v in series]
    return out


def logged_record(
    instances: dict[str, list[object]],
    scores: np.ndarray,
    threshold: float,
    row: int,
    *,
    ts: str,
    request_id: str,
    prediction_id: str | None = None,
) -> bytes:
    """Row ``row`` as the predictor logs a single-row request (a ``prediction_id`` if given)."""
    record: dict[str, object] = {"ts": ts, "request_id": request_id}
    if prediction_id is not None:
        record["prediction_id"] = prediction_id
    record |= {
        "model_name": "stroke",
        "model_version": VERSION,
        "protocol": "v1",
        "status": "ok",
        "instances": 1,
        "inputs": {name: [values[row]] for name, values in instances.items()},
        "outputs": {
            "probability": [float(scores[row])],
            "decision": [int(scores[row] >= threshold)],
        },
        "latency_ms": 1.0,
    }
    return encode_record(record)


def window_record(model: Any, rows: pd.DataFrame, threshold: float) -> dict[str, object]:
    scores = model.predict_proba(rows[list(schema.FEATURE_COLUMNS)])[:, 1]
    return {
        "model_version": VERSION,
        "status": "ok",
        "instances": len(rows),
        "inputs": columns(rows),
        "outputs": {
            "probability": scores.tolist(),
            "decision": (scores >= threshold).astype(int).tolist(),
        },
    }


def fit_seed(
    patients: pd.DataFrame, seed: int, family: str
) -> tuple[Any, float, pd.DataFrame, pd.DataFrame]:
    """(model trained on train, threshold, reference set from test, the validation pool)."""
    split = dataset.split_patients(patients, seed=seed)
    features, target = dataset.features_and_target(split.train)
    candidates = [c for c in train.CANDIDATES if family == "all" or c.name == family]
    result = train.train_candidates(
        features, target, seed=seed, precision_floor=0.15, candidates=candidates
    )
    # As evaluate does: over every repeat's out-of-fold scores, the highest recall whose
    # precision has its lower confidence bound at the floor.
    threshold = metrics.select_confident_threshold(
        np.asarray(target),
        np.atleast_2d(result.oof_scores),
        precision_floor=0.15,
        confidence=evaluate.EvaluationConfig().precision_confidence,
    ).threshold
    reference_set = reference.build_reference_set(result.model, split.test)
    return result.model, threshold, reference_set, split.validation


def _unchanged(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return rows


def statistics_table(
    patients: pd.DataFrame, *, seeds: int, windows: int, rows: int, family: str
) -> None:
    cases: list[tuple[str, Scenario, str | None]] = [("undrifted", _unchanged, None)]
    cases += [(name, drift, feature) for name, (drift, feature) in SCENARIOS.items()]
    called = dict.fromkeys([name for name, _, _ in cases], 0)
    named = dict.fromkeys(called, 0)
    false_alarms: dict[str, int] = {}
    started = time.perf_counter()
    for seed in range(seeds):
        model, threshold, reference_set, pool = fit_seed(patients, seed, family)
        profile = reference.profile_reference(reference_set, threshold=threshold)
        rng = np.random.default_rng(1000 + seed)
        for name, drift, feature in cases:
            for _ in range(windows):
                drifted_pool = drift(pool, rng)
                chosen = rng.choice(len(drifted_pool), size=rows, replace=False)
                counts = WindowCounts(profile, VERSION)
                counts.add(window_record(model, drifted_pool.iloc[chosen], threshold))
                results = judge_window(profile, counts, min_rows=rows)
                flagged = [r.name for r in results if r.verdict == "drift"]
                called[name] += bool(flagged)
                named[name] += feature in flagged
                if feature is None:
                    for check in flagged:
                        false_alarms[check] = false_alarms.get(check, 0) + 1
        print(f"  seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    total = seeds * windows
    print(
        f"\nDrift decisions at {rows} rows per window (Holm, alpha {DEFAULT_ALPHA}), model "
        f"family {family}, {seeds} split seeds x {windows} windows = {total} per case:\n"
    )
    print(f"| {'window':<26} | called drift | right feature named | target  |")
    print(f"|{'-' * 28}|--------------|---------------------|---------|")
    for name, _, feature in cases:
        target = ">= 95 %" if feature else "<= 5 %"
        named_text = f"{named[name] / total:.1%}" if feature else "—"
        print(f"| {name:<26} | {called[name] / total:>12.1%} | {named_text:>19} | {target:>7} |")
    if false_alarms:
        print(f"\nfalse alarms by check: {false_alarms}")


def write_logs(
    patients: pd.DataFrame, model: Any, threshold: float, folder: Path, count: int
) -> None:
    """``count`` single-row request records in objects of 500, as the request-log sink writes."""
    instances = columns(patients)
    scores = model.predict_proba(patients[list(schema.FEATURE_COLUMNS)])[:, 1]
    rng = np.random.default_rng(7)
    picks = rng.integers(0, len(patients), size=count)
    partition = folder / "request-logs" / "dt=2026-01-01"
    partition.mkdir(parents=True)
    batch: list[bytes] = []
    for number, row in enumerate(picks.tolist()):
        batch.append(
            logged_record(
                instances,
                scores,
                threshold,
                row,
                ts=f"2026-01-01T{number // 3_600_000 % 24:02d}:00:00.000+00:00",
                request_id=f"bench-{number}",
            )
        )
        if len(batch) == 500:
            (partition / f"{number:09d}.jsonl").write_bytes(b"".join(batch))
            batch = []
    if batch:
        (partition / "last.jsonl").write_bytes(b"".join(batch))


def benchmark_store(
    root: Path, patients: pd.DataFrame, model: Any, threshold: float, reference_set: pd.DataFrame
) -> Path:
    """``root/store``, whose production version is ``model`` with its reference set (signed with
    a throw-away key pair under ``root/keys``)."""
    built = root / "built"
    write_model_dir(
        built,
        model=model,
        signature=signature.build_signature(signature.example_instances(patients)),
        model_card="# benchmark\n",
        metadata={"version": VERSION, "threshold": threshold},
        extra_files={reference.REFERENCE_FILE: reference.reference_csv_bytes(reference_set)},
        signing_key=generate_key_pair(root / "keys").private_key,
    )
    store = root / "store"
    LocalModelStore(store).publish_version(built, VERSION)
    LocalModelStore(store).promote(VERSION)
    return store


def cost_table(patients: pd.DataFrame, requests: int) -> None:
    model, threshold, reference_set, _ = fit_seed(patients, 42, "logistic_regression")
    cpus = os.cpu_count()
    print(f"\nCost of judging a window (stroke-mlops monitor, child process, {cpus} CPUs):\n")
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| logged requests | wall s | rows/s (wall) | CPU s | rows/CPU-s | peak RSS |")
    print("|-----------------|--------|---------------|-------|------------|----------|")
    for count in (requests // 10, requests):
        with tempfile.TemporaryDirectory(prefix="monitor-bench-") as scratch:
            root = Path(scratch)
            benchmark_store(root, patients, model, threshold, reference_set)
            write_logs(patients, model, threshold, root / "logs", count)
            command = [
                sys.executable, "-c", _CHILD, "monitor", "--store", str(root / "store"),
                "--requests", str(root / "logs"), "--output", str(root / "out"),
            ]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"monitor failed: {done.stderr.strip()}")
            cpu_text, rss_text = done.stderr.strip().splitlines()[-1].split()[-2:]
            cpu_seconds, peak_mib = float(cpu_text), int(rss_text) / 1024
            summary = orjson.loads((root / "out" / "summary.json").read_bytes())
            assert summary["rows"] == count, summary["rows"]
            print(
                f"| {count:>15,} | {seconds:>6.1f} | {count / seconds:>13,.0f} | "
                f"{cpu_seconds:>5.1f} | {count / cpu_seconds:>10,.0f} | {peak_mib:>4.0f} MiB |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="split seeds (10)")
    parser.add_argument("--windows", type=int, default=25, help="windows per seed and case (25)")
    parser.add_argument("--rows", type=int, default=300, help="rows per window (300)")
    parser.add_argument("--requests", type=int, default=1_000_000, help="cost test size (1e6)")
    parser.add_argument(
        "--family",
        default="logistic_regression",
        choices=["logistic_regression", "xgboost", "all"],
        help="model families searched per seed: one (fast) or all, as the pipeline (slow)",
    )
    parser.add_argument("--skip-cost", action="store_true", help="only the statistics")
    parser.add_argument("--skip-statistics", action="store_true", help="only the cost")
    args = parser.parse_args()
    patients = dataset.clean_patients(dataset.read_raw_patients(DATA.read_bytes()), keep_id=True)
    if not args.skip_statistics:
        statistics_table(
            patients, seeds=args.seeds, windows=args.windows, rows=args.rows, family=args.family
        )
    if not args.skip_cost:
        cost_table(patients, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
