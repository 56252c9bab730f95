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
runs on them in a child process; its wall time, rows/s and peak RSS are printed (with a window of
a tenth of the size for comparison: memory must not grow with the window).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stroke_mlops.data import dataset, schema  # noqa: E402
from stroke_mlops.monitoring import reference  # noqa: E402
from stroke_mlops.monitoring.monitor import DEFAULT_ALPHA, WindowCounts, judge_window  # noqa: E402
from stroke_mlops.monitoring.scenarios import SCENARIOS  # noqa: E402
from stroke_mlops.registry import signature  # noqa: E402
from stroke_mlops.registry.model_dir import write_model_dir  # noqa: E402
from stroke_mlops.registry.store import LocalModelStore  # noqa: E402
from stroke_mlops.serving.request_log import encode_record  # noqa: E402
from stroke_mlops.training import metrics, train  # noqa: E402

DATA = REPO / "data/raw/healthcare-dataset-stroke-data.csv"
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


def window_record(model: object, rows: pd.DataFrame, threshold: float) -> dict[str, object]:
    scores = model.predict_proba(rows[list(schema.FEATURE_COLUMNS)])[:, 1]  # type: ignore[attr-defined]
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


def fit_seed(patients: pd.DataFrame, seed: int) -> tuple[object, float, pd.DataFrame, pd.DataFrame]:
    """(model trained on train, threshold, reference set from test, the validation pool)."""
    split = dataset.split_patients(patients, seed=seed)
    features, target = dataset.features_and_target(split.train)
    result = train.train_candidates(features, target, seed=seed, precision_floor=0.15)
    threshold = metrics.select_threshold(target, result.oof_scores, precision_floor=0.15).threshold
    return (
        result.model,
        threshold,
        reference.build_reference_set(result.model, split.test),
        split.validation,
    )


def statistics_table(patients: pd.DataFrame, seeds: int, windows: int, rows: int) -> None:
    tallies: dict[str, list[int]] = {"undrifted": [0, 0, 0]}
    tallies.update({name: [0, 0, 0] for name in SCENARIOS})
    wrongly_named: dict[str, int] = {}
    started = time.perf_counter()
    for seed in range(seeds):
        model, threshold, reference_set, pool = fit_seed(patients, seed)
        profile = reference.profile_reference(reference_set, threshold=threshold)
        rng = np.random.default_rng(1000 + seed)
        cases = [("undrifted", lambda p, r: p, None)] + [
            (name, drift, feature) for name, (drift, feature) in SCENARIOS.items()
        ]
        for name, drift, feature in cases:
            for _ in range(windows):
                drifted_pool = drift(pool, rng)
                chosen = rng.choice(len(drifted_pool), size=rows, replace=False)
                window_rows = drifted_pool.iloc[chosen]
                counts = WindowCounts(profile, VERSION)
                counts.add(window_record(model, window_rows, threshold))
                features, score, decision = judge_window(profile, counts, min_rows=rows)
                flagged = [r.name for r in (*features, score, decision) if r.verdict == "drift"]
                tally = tallies[name]
                tally[0] += 1
                tally[1] += bool(flagged)
                tally[2] += feature in flagged if feature else 0
                if name == "undrifted":
                    for flagged_name in flagged:
                        wrongly_named[flagged_name] = wrongly_named.get(flagged_name, 0) + 1
        print(f"  seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    print(
        f"\nDrift decisions at {rows} rows per window (Holm, alpha {DEFAULT_ALPHA}), "
        f"{seeds} split seeds x {windows} windows:\n"
    )
    print(f"| {'window':<26} | windows | called drift | right feature named | target |")
    print(f"|{'-' * 28}|---------|--------------|---------------------|--------|")
    for name, (total, drift, named) in tallies.items():
        target = "<= 5 %" if name == "undrifted" else ">= 95 %"
        named_text = "—" if name == "undrifted" else f"{named / total:.1%}"
        print(
            f"| {name:<26} | {total:>7} | {drift / total:>12.1%} | {named_text:>19} | {target:>6} |"
        )
    if wrongly_named:
        print(f"\nfalse alarms by check: {wrongly_named}")


def write_logs(
    patients: pd.DataFrame, model: object, threshold: float, folder: Path, count: int
) -> None:
    """``count`` single-row request records in objects of 500, as the request-log sink writes."""
    instances = columns(patients)
    scores = model.predict_proba(patients[list(schema.FEATURE_COLUMNS)])[:, 1]  # type: ignore[attr-defined]
    rng = np.random.default_rng(7)
    picks = rng.integers(0, len(patients), size=count)
    partition = folder / "request-logs" / "dt=2026-01-01"
    partition.mkdir(parents=True)
    batch: list[bytes] = []
    for number, row in enumerate(picks.tolist()):
        batch.append(
            encode_record(
                {
                    "ts": f"2026-01-01T{number // 3_600_000 % 24:02d}:00:00.000+00:00",
                    "request_id": f"bench-{number}",
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
            )
        )
        if len(batch) == 500:
            (partition / f"{number:09d}.jsonl").write_bytes(b"".join(batch))
            batch = []
    if batch:
        (partition / "last.jsonl").write_bytes(b"".join(batch))


def cost_table(patients: pd.DataFrame, requests: int) -> None:
    model, threshold, reference_set, _ = fit_seed(patients, 42)
    print(
        f"\nCost of judging a window (stroke-mlops monitor in a child process, {os.cpu_count()} CPUs):\n"
    )
    print("| logged requests | seconds | rows/s | peak RSS |")
    print("|-----------------|---------|--------|----------|")
    for count in (requests // 10, requests):
        with tempfile.TemporaryDirectory(prefix="monitor-bench-") as scratch:
            root = Path(scratch)
            built = root / "built"
            write_model_dir(
                built,
                model=model,  # type: ignore[arg-type]
                signature=signature.build_signature(signature.example_instances(patients)),
                model_card="# benchmark\n",
                metadata={"version": VERSION, "threshold": threshold},
                extra_files={
                    reference.REFERENCE_FILE: reference.reference_csv_bytes(reference_set)
                },
            )
            store = LocalModelStore(root / "store")
            store.publish_version(built, VERSION)
            store.promote(VERSION)
            write_logs(patients, model, threshold, root / "logs", count)
            command = [
                sys.executable, "-m", "stroke_mlops.cli", "monitor", "--store", str(root / "store"),
                "--requests", str(root / "logs"), "--output", str(root / "out"),
            ]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            seconds = time.perf_counter() - started
            peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            if done.returncode != 0:
                raise SystemExit(f"monitor failed: {done.stderr.strip()}")
            summary = orjson.loads((root / "out" / "summary.json").read_bytes())
            assert summary["rows"] == count, summary["rows"]
            print(
                f"| {count:>15,} | {seconds:>7.1f} | {count / seconds:>6,.0f} | {peak_mib:>5.0f} MiB |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="split seeds (10)")
    parser.add_argument("--windows", type=int, default=25, help="windows per seed and case (25)")
    parser.add_argument("--rows", type=int, default=300, help="rows per window (300)")
    parser.add_argument("--requests", type=int, default=1_000_000, help="cost test size (1e6)")
    parser.add_argument("--skip-cost", action="store_true", help="only the statistics")
    args = parser.parse_args()
    patients = dataset.clean_patients(dataset.read_raw_patients(DATA.read_bytes()))
    statistics_table(patients, args.seeds, args.windows, args.rows)
    if not args.skip_cost:
        cost_table(patients, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
