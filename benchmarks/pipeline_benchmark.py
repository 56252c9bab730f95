"""Wall time of each step of the local pipeline run, and of the whole run.

    .venv/bin/python benchmarks/pipeline_benchmark.py [--runs N] [--data PATH]

Runs the real pipeline with kfp.local (SubprocessRunner) against a fresh folder store, N times,
and prints a table of per-step seconds (median over runs) and the whole run, with the CPU time
the run's processes used and the machine's load average (the machine is shared: a wall time
means little without them). Publish signs with the local-dev key pair, as ``stroke-mlops run``.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.local_runner import run_locally  # noqa: E402
from stroke_mlops.registry.signing import use_local_dev_keys  # noqa: E402


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="how many runs (1)")
    parser.add_argument(
        "--data",
        default=str(REPO / "data/raw/healthcare-dataset-stroke-data.csv"),
        help="the raw CSV",
    )
    args = parser.parse_args()
    use_local_dev_keys()  # unless STROKE_MLOPS_SIGNING_KEY / _PUBLIC_KEY name real keys
    cpu: list[float] = []
    load_before = os.getloadavg()[0]
    steps: dict[str, list[float]] = {}
    totals: list[float] = []
    for run in range(1, args.runs + 1):
        cpu_before = children_cpu_seconds() + time.process_time()
        with tempfile.TemporaryDirectory(prefix="stroke-bench-") as scratch:
            summary = run_locally(
                data_uri=args.data,
                store_uri=str(Path(scratch) / "store"),
                pipeline_root=str(Path(scratch) / "outputs"),
                stream=io.StringIO(),  # keep the benchmark's output to the table
            )
            if not summary.succeeded:  # rendered here: it quotes the failed step's log
                print(summary.render(), file=sys.stderr)
                return 1
        cpu.append(children_cpu_seconds() + time.process_time() - cpu_before)
        totals.append(summary.seconds)
        for step in summary.steps:
            steps.setdefault(step.name, []).append(step.seconds)
        print(f"run {run}/{args.runs}: {summary.seconds:.1f} s", file=sys.stderr)
    print(f"{'step':<20} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, values in steps.items():
        print(f"{name:<20} {statistics.median(values):9.2f} {min(values):7.2f} {max(values):7.2f}")
    print(
        f"{'whole run':<20} {statistics.median(totals):9.2f} {min(totals):7.2f} {max(totals):7.2f}"
    )
    print(
        f"sum of steps {sum(statistics.median(v) for v in steps.values()):.2f} s "
        "(the rest is kfp.local orchestration)"
    )
    print(
        f"CPU time (all processes) median {statistics.median(cpu):.1f} s; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after on {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
