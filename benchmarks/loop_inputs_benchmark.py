"""Memory and time of the loop's inputs at size: a 1 GiB log object, 10 million logged requests,
1 and 10 million labels (issue 20: each under 1 GiB peak RSS, 10 M requests judged in ≤ 60 s).

    .venv/bin/python benchmarks/loop_inputs_benchmark.py [--requests 10000000]
        [--object-gib 1] [--labels 1000000,10000000] [--label-window 1000000]

Everything is generated in a temp folder (deleted afterwards; ~7 GB of disk at the defaults):
a store whose production version is a logistic regression fitted on the real data, with its
reference set; request-log records of the predictor's own format, each with its own
``prediction_id`` (real rows, resampled, scored by the model), in objects of 500 records (the
sink's batch) or as one object of ``--object-gib``; labels CSVs of ``prediction_id,stroke``.
Each measured step is the real command in a child process (``stroke-mlops monitor`` or
``stroke-mlops feedback``) that reports its own peak RSS and CPU time; wall time is measured
around it. The load average is printed beside each row: 2 shared cores make wall time swing,
CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from monitor_benchmark import (  # noqa: E402
    DATA,
    benchmark_store,
    columns,
    fit_seed,
    logged_record,
)

from stroke_mlops.data import dataset, schema  # noqa: E402

GIB = 1 << 30
# The CLI in a child process that reports its CPU time and peak RSS as its last stderr line.
# Peak RSS is the kernel's VmHWM: ru_maxrss would carry over the parent's peak across exec.
_CHILD = (
    "import resource, sys\n"
    "from stroke_mlops.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "usage = resource.getrusage(resource.RUSAGE_SELF)\n"
    "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]\n"
    "print('cpu_s rss_kib', usage.ru_utime + usage.ru_stime, hwm, file=sys.stderr)\n"
    "sys.exit(code)\n"
)
_PLACEHOLDER = "f" * 32


def line_templates(patients: pd.DataFrame, model: object, threshold: float) -> list[bytes]:
    """One encoded record per patient, with a placeholder where the prediction id goes."""
    instances = columns(patients)
    scores = model.predict_proba(patients[list(schema.FEATURE_COLUMNS)])[:, 1]  # type: ignore[attr-defined]
    return [
        logged_record(
            instances,
            scores,
            threshold,
            row,
            ts="2026-01-01T12:00:00.000+00:00",
            request_id=f"client-{row}",
            prediction_id=_PLACEHOLDER,
        )
        for row in range(len(patients))
    ]


def write_requests(
    templates: list[bytes], folder: Path, count: int, *, per_object: int = 500
) -> int:
    """``count`` records (ids 0…count-1, as 32 hex digits) in objects of ``per_object``."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [t.split(_PLACEHOLDER.encode()) for t in templates]
    picks = np.random.default_rng(7).integers(0, len(parts), size=count).tolist()
    written = 0
    for start in range(0, count, per_object):
        lines = []
        for number in range(start, min(start + per_object, count)):
            head, tail = parts[picks[number]]
            lines.append(head + b"%032x" % number + tail)
        chunk = b"".join(lines)
        (folder / f"{start:010d}.jsonl").write_bytes(chunk)
        written += len(chunk)
    return written


def write_one_object(templates: list[bytes], path: Path, size: int) -> int:
    """One log object of at least ``size`` bytes; returns its record count."""
    parts = [t.split(_PLACEHOLDER.encode()) for t in templates]
    rng = np.random.default_rng(8)
    number = written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        while written < size:
            lines = []
            for pick in rng.integers(0, len(parts), size=100_000).tolist():
                head, tail = parts[pick]
                lines.append(head + b"%032x" % number + tail)
                number += 1
            chunk = b"".join(lines)
            handle.write(chunk)
            written += len(chunk)
    return number


def write_labels(path: Path, count: int) -> None:
    """A labels CSV for prediction ids 0…count-1 (about 5 % strokes)."""
    strokes = (np.random.default_rng(9).random(count) < 0.05).astype(int).tolist()
    with path.open("wb") as handle:
        handle.write(b"prediction_id,stroke\n")
        for start in range(0, count, 100_000):
            handle.write(
                b"".join(
                    b"%032x,%d\n" % (n, strokes[n])
                    for n in range(start, min(start + 100_000, count))
                )
            )


def run_child(*argv: str) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MiB, stdout) of one CLI command in a child process."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.strip()[-500:]}")
    cpu_text, rss_text = done.stderr.strip().splitlines()[-1].split()[-2:]
    return wall, float(cpu_text), int(rss_text) / 1024, done.stdout


def row(what: str, wall: float, cpu: float, rss: float, load: float) -> None:
    verdict = "ok" if rss < 1024 else "OVER 1 GiB"
    print(
        f"| {what:<44} | {wall:>7.1f} | {cpu:>6.1f} | {rss:>6.0f} MiB {verdict:<10} "
        f"| {load:>4.1f} |"
    )
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000_000)
    parser.add_argument("--object-gib", type=float, default=1.0)
    parser.add_argument("--labels", default="1000000,10000000")
    parser.add_argument("--label-window", type=int, default=1_000_000,
                        help="logged requests the monitor joins the labels to")  # fmt: skip
    args = parser.parse_args()
    patients = dataset.clean_patients(dataset.read_raw_patients(DATA.read_bytes()), keep_id=True)
    model, threshold, reference_set, _ = fit_seed(patients, 42, "logistic_regression")
    templates = line_templates(patients, model, threshold)
    print(f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.1f}\n")
    print(f"| {'step':<44} |  wall s |  CPU s | {'peak RSS':<20} | load |")
    print(f"|{'-' * 46}|---------|--------|{'-' * 22}|------|")
    with tempfile.TemporaryDirectory(prefix="loop-inputs-bench-") as scratch:
        root = Path(scratch)
        store = benchmark_store(root, patients, model, threshold, reference_set)

        def monitor(logs: Path, out: str) -> tuple[float, float, float, str]:
            return run_child("monitor", "--store", str(store), "--requests", str(logs),
                             "--output", str(root / out))  # fmt: skip

        # one big object
        big = root / "big" / "one.jsonl"
        records = write_one_object(templates, big, int(args.object_gib * GIB))
        size = big.stat().st_size
        load = os.getloadavg()[0]
        wall, cpu, rss, _ = monitor(root / "big", "out-big")
        row(f"monitor: one {size / GIB:.2f} GiB object ({records:,} records)", wall, cpu, rss, load)
        shutil.rmtree(root / "big")

        # many requests
        size = write_requests(templates, root / "logs", args.requests)
        load = os.getloadavg()[0]
        wall, cpu, rss, _ = monitor(root / "logs", "out-many")
        row(f"monitor: {args.requests:,} requests ({size / GIB:.1f} GiB)", wall, cpu, rss, load)
        shutil.rmtree(root / "logs")

        # labels: ingest, then the monitor joining them to a window
        write_requests(templates, root / "window", args.label_window)
        for count in (int(n) for n in args.labels.split(",")):
            labels = root / "labels.csv"
            write_labels(labels, count)
            load = os.getloadavg()[0]
            wall, cpu, rss, _ = run_child(
                "feedback", "--store", str(store), "--labels", str(labels)
            )
            row(f"feedback: {count:,} labels recorded", wall, cpu, rss, load)
            load = os.getloadavg()[0]
            wall, cpu, rss, _ = monitor(root / "window", f"out-labels-{count}")
            row(f"monitor: {args.label_window:,} requests + {count:,} labels", wall, cpu, rss, load)
            labels.unlink()
            shutil.rmtree(store / "stroke" / "feedback")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
