"""Serving benchmark: the real model server on 127.0.0.1 under bounded load, and in-process floors.

    .venv/bin/python benchmarks/serving_benchmark.py [--model-dir DIR] [--model lr|xgb|vote]
        [--requests 2000] [--time-cap 10]
    .venv/bin/python benchmarks/serving_benchmark.py --model vote --side-by-side OLD_CHECKOUT
        [--rounds 5]

Without ``--model-dir`` it fits a model on the real data (``data/raw/…`` or $STROKE_DATA) and
publishes it to a temporary model directory. It then measures, in-process, sklearn's
``predict_proba`` on a one-row DataFrame and our compiled path on 1 and 100 rows; starts the
server (``python -m stroke_mlops.serving.predictor``, request logging on, as deployed) and
sends, for V1 and V2, single-row and 100-row requests at concurrency 1 and 8, each scenario
bounded by a request count and a time cap, one persistent HTTP connection (TCP_NODELAY) per
worker thread. It prints
p50/p99 latency and throughput. The client shares the machine (and its CPUs) with the server,
so the figures are a floor for a real deployment, not a ceiling. The HTTP table also gives the
server process's CPU time per request (user + system, from /proc): on a busy shared machine the
latencies swing with other processes' load, while the CPU a request costs barely does, so that
column is the one to compare between two versions of the server.

``--side-by-side OLD_CHECKOUT`` compares three servers of the same fitted model in one run: this
checkout's, an older revision's (``git worktree add OLD_CHECKOUT <rev>``; it runs from that
checkout's ``src/`` with this environment's packages, its model directory written by its own
code) and a stock-style KServe predictor (``benchmarks/stock_kserve_predictor.py``: a plain
``kserve.Model`` calling ``predict_proba`` on a pandas frame). The three run at once; each
round sends every scenario to each server in turn (the order rotates), so load from other
processes falls on all three alike. It prints, per scenario, the median over the rounds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import VotingClassifier

from stroke_mlops.data import dataset, schema
from stroke_mlops.registry import model_dir, signature, signing
from stroke_mlops.serving import loading, scoring
from stroke_mlops.serving.infra_validation import ServerProcess, free_port, v1_body, v2_body
from stroke_mlops.training import train

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / "data" / "raw" / "healthcare-dataset-stroke-data.csv"
GOALS = "goals: 1 row p50 <= 3 ms and >= 250 req/s at concurrency 1; 100 rows p50 <= 10 ms"


@dataclass
class Measured:
    label: str
    latencies_s: list[float]
    wall_s: float
    rows_per_request: int
    errors: int = 0
    server_cpu_s: float | None = None  # CPU time the server process spent on these requests

    def p(self, quantile: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.latencies_s:
            return None
        return self.server_cpu_s * 1000 / len(self.latencies_s)

    @property
    def per_second(self) -> float:
        return len(self.latencies_s) / self.wall_s if self.wall_s else 0.0


def make_model_dir(data_path: Path, kind: str, target: Path, signing_key: Path) -> Path:
    """Fit the project's pipeline on the real data and publish it like the pipeline does."""
    patients = dataset.clean_patients(dataset.read_raw_patients_file(data_path))
    features, labels = dataset.features_and_target(patients)
    # The training candidates' own classifiers, so the benchmark serves what the pipeline ships.
    imbalance = float((labels == 0).sum() / labels.sum())
    members = {c.name: c.make_classifier(0, imbalance) for c in train.CANDIDATES}
    classifier = {
        "lr": members["logistic_regression"],
        "xgb": members["xgboost"],
        "vote": VotingClassifier(list(members.items()), voting="soft"),
    }[kind]
    pipeline = train.build_model_pipeline(classifier).fit(features, labels)
    model_dir.write_model_dir(
        target,
        model=pipeline,
        signature=signature.build_signature(signature.example_instances(patients)),
        model_card=f"# Benchmark model ({kind})\n",
        metadata={"version": f"benchmark-{kind}", "threshold": 0.5},
        signing_key=signing_key,
    )
    return target


def time_calls(
    label: str, call: Callable[[], object], count: int, rows: int, cap_s: float
) -> Measured:
    for _ in range(min(20, count)):
        call()
    latencies: list[float] = []
    began = time.perf_counter()
    deadline = began + cap_s
    while len(latencies) < count and time.perf_counter() < deadline:
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return Measured(label, latencies, time.perf_counter() - began, rows)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (all its threads), or None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(
    server: ServerProcess,
    label: str,
    path: str,
    bodies: list[bytes],
    *,
    rows: int,
    concurrency: int,
    count: int,
    cap_s: float,
) -> Measured:
    """``count`` requests (at most ``cap_s`` seconds) from ``concurrency`` threads."""
    lock = threading.Lock()
    issued = [0]
    latencies: list[float] = []
    errors = [0]
    headers = {"content-type": "application/json"}

    def worker(seed: int) -> None:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
        connection.connect()
        # http.client sends the headers and the body in two writes; with Nagle's algorithm the
        # body then waits for the server's delayed ACK of the headers, and the figures measure
        # TCP timers instead of the server. Load generators (wrk, hey) set TCP_NODELAY too.
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mine: list[float] = []
        failed = 0
        for warm in range(10):
            connection.request(
                "POST", path, body=bodies[(seed + warm) % len(bodies)], headers=headers
            )
            connection.getresponse().read()
        start_gate.wait()
        index = seed
        while True:
            with lock:
                if issued[0] >= count or time.perf_counter() > deadline:
                    break
                issued[0] += 1
            index += 1
            began = time.perf_counter()
            connection.request("POST", path, body=bodies[index % len(bodies)], headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - began)
            failed += response.status != 200
        connection.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    start_gate = threading.Barrier(concurrency + 1)
    deadline = float("inf")
    threads = [threading.Thread(target=worker, args=(k * 7,)) for k in range(concurrency)]
    for thread in threads:
        thread.start()
    while start_gate.n_waiting < concurrency:  # every worker has warmed up its connection
        time.sleep(0.005)
    pid = server.process.pid if server.process is not None else -1
    cpu_before = process_cpu_seconds(pid)
    began = time.perf_counter()
    deadline = began + cap_s
    start_gate.wait()
    for thread in threads:
        thread.join()
    cpu_after = process_cpu_seconds(pid)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Measured(label, latencies, time.perf_counter() - began, rows, errors[0], cpu)


def print_table(title: str, rows: list[Measured], *, http: bool) -> None:
    print(f"\n{title}")
    head = f"  {'scenario':<34}{'n':>7}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}{'rows/s':>11}"
    print(head + ("   errors  srv CPU ms/req" if http else ""))
    for m in rows:
        line = (
            f"  {m.label:<34}{len(m.latencies_s):>7}{m.p(0.5):>10.3f}{m.p(0.99):>10.3f}"
            f"{m.per_second:>10.0f}{m.per_second * m.rows_per_request:>11.0f}"
        )
        cpu = m.server_cpu_ms_per_request
        cpu_text = f"{cpu:>16.3f}" if cpu is not None else f"{'n/a':>16}"
        print(line + (f"{m.errors:>9}{cpu_text}" if http else ""))


# The older revision writes its own model directory from the pipeline fitted here (joblib was
# its format; a throw-away file in the benchmark's scratch folder).
OLD_WRITER = """
import sys
from pathlib import Path
import joblib
from stroke_mlops.data import dataset
from stroke_mlops.registry import model_dir, signature
pipeline, data, target = joblib.load(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
patients = dataset.clean_patients(dataset.read_raw_patients_file(data))
model_dir.write_model_dir(
    target, model=pipeline, model_card="# Benchmark model\\n",
    signature=signature.build_signature(signature.example_instances(patients)),
    metadata={"version": "benchmark-old", "threshold": 0.5},
)
"""


def _old_tree_env(old: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(old / "src"), "STROKE_MLOPS_SIGNING_PUBLIC_KEY": ""}


def side_by_side(
    args: argparse.Namespace,
    directory: Path,
    public_key: Path,
    pipeline: Any,
    bodies: dict[str, dict[str, list[bytes]]],
    scratch: Path,
) -> int:
    """This checkout's server, the old revision's and a stock KServe predictor, interleaved."""
    import joblib

    old = args.side_by_side.resolve()
    joblib.dump(pipeline, scratch / "pipeline.joblib")
    old_dir = scratch / "old-model"
    subprocess.run(
        [
            sys.executable,
            "-c",
            OLD_WRITER,
            str(scratch / "pipeline.joblib"),
            str(args.data),
            str(old_dir),
        ],
        check=True,
        env={**os.environ, **_old_tree_env(old)},
    )
    revision = subprocess.run(
        ["git", "-C", str(old), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    ports = {name: free_port() for name in ("new", "old", "stock")}
    module = ["-m", "stroke_mlops.serving.predictor", "--host", "127.0.0.1"]
    servers = {
        "new": ServerProcess(str(directory), public_key=public_key, port=ports["new"]),
        "old": ServerProcess(
            str(old_dir),
            port=ports["old"],
            env=_old_tree_env(old),
            command=[
                sys.executable,
                *module,
                "--model-uri",
                str(old_dir),
                "--port",
                str(ports["old"]),
            ],
        ),
        "stock": ServerProcess(
            str(directory),
            port=ports["stock"],
            command=[
                sys.executable,
                str(REPO_ROOT / "benchmarks" / "stock_kserve_predictor.py"),
                "--model-dir",
                str(directory),
                "--public-key",
                str(public_key),
                "--port",
                str(ports["stock"]),
            ],
        ),
    }
    paths = {"v1": "/v1/models/stroke:predict", "v2": "/v2/models/stroke/infer"}
    scenarios = [  # (label, protocol, rows, requests, servers)
        ("v1   1 row", "v1", 1, args.requests, ("new", "old", "stock")),
        ("v1 100 rows", "v1", 100, args.batch_requests, ("new", "old", "stock")),
        ("v2   1 row", "v2", 1, args.requests, ("new", "old")),
        ("v2 100 rows", "v2", 100, args.batch_requests, ("new", "old")),
    ]
    measured: dict[tuple[str, str], list[Measured]] = {}
    try:
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            ready, why = server.wait_ready(120)
            if not ready:
                print(f"{name} server did not start: {why}\n{server.log_tail()}", file=sys.stderr)
                return 1
        print(f"side by side: new = this checkout, old = {revision}, stock = plain kserve.Model")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
        for round_index in range(args.rounds):
            for label, protocol, rows, count, names in scenarios:
                shift = round_index % len(names)
                for name in names[shift:] + names[:shift]:
                    kind = "single" if rows == 1 else "batch"
                    measured.setdefault((label, name), []).append(
                        load(
                            servers[name],
                            label,
                            paths[protocol],
                            bodies[kind][protocol],
                            rows=rows,
                            concurrency=1,
                            count=count,
                            cap_s=args.time_cap,
                        )
                    )
            print(f"  round {round_index + 1}/{args.rounds} done", flush=True)
    finally:
        for server in servers.values():
            server.stop()
    print_side_by_side(measured, scenarios, args.rounds)
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    return 1 if any(m.errors for runs in measured.values() for m in runs) else 0


def print_side_by_side(
    measured: dict[tuple[str, str], list[Measured]], scenarios: list[Any], rounds: int
) -> None:
    def median(runs: list[Measured], figure: Callable[[Measured], float | None]) -> float:
        values = [v for v in (figure(m) for m in runs) if v is not None]
        return statistics.median(values) if values else float("nan")

    print(f"\nmedians over {rounds} rounds, concurrency 1 (CPU: server process, ms/request)")
    head = f"  {'scenario':<13}{'server':<7}{'p50 ms':>9}{'req/s':>9}{'CPU ms':>9}"
    print(head + "   vs old     vs stock")
    table: dict[str, Any] = {}
    for label, _, _, _, names in scenarios:
        figures = {
            name: (
                median(measured[(label, name)], lambda m: m.p(0.5)),
                median(measured[(label, name)], lambda m: m.per_second),
                median(measured[(label, name)], lambda m: m.server_cpu_ms_per_request),
            )
            for name in names
        }
        table[label] = figures
        for name in names:
            p50, rate, cpu = figures[name]
            versus = ""
            if name == "new":
                versus = f"   {rate / figures['old'][1]:>5.2f}x req/s"
                if "stock" in figures:
                    versus += f"  {rate / figures['stock'][1]:>5.2f}x req/s"
            print(f"  {label:<13}{name:<7}{p50:>9.3f}{rate:>9.0f}{cpu:>9.3f}{versus}")
    print("\n" + json.dumps({"medians": table}, default=str))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="a published model directory")
    parser.add_argument(
        "--model",
        choices=("lr", "xgb", "vote"),
        default="xgb",
        help="what to fit when no --model-dir is given (default xgb)",
    )
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("STROKE_DATA", DEFAULT_DATA))
    )
    parser.add_argument(
        "--requests", type=int, default=2000, help="single-row requests per scenario"
    )
    parser.add_argument(
        "--batch-requests", type=int, default=300, help="100-row requests per scenario"
    )
    parser.add_argument(
        "--time-cap", type=float, default=10.0, help="seconds per scenario, at most"
    )
    parser.add_argument(
        "--side-by-side",
        type=Path,
        metavar="OLD_CHECKOUT",
        help="compare with an older revision's server and a stock KServe predictor",
    )
    parser.add_argument("--rounds", type=int, default=5, help="side-by-side rounds (5)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="serving-benchmark-") as scratch:
        if args.model_dir:  # signed by the pipeline: its public key from the environment
            directory, public_key = args.model_dir, signing.public_key_from_env()
        else:  # a throw-away key pair for the model fitted here
            keys = signing.generate_key_pair(Path(scratch) / "keys")
            directory = make_model_dir(
                args.data, args.model, Path(scratch) / "model", keys.private_key
            )
            public_key = keys.public_key
        verified = model_dir.open_signed_model_dir(directory, public_key)
        pipeline = verified.load_model()
        compiled = loading.load_compiled_model(directory, public_key)
        patients = dataset.clean_patients(dataset.read_raw_patients_file(args.data))
        instances: list[dict[str, Any]] = [
            {str(k): (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in patients.loc[:, list(schema.FEATURE_COLUMNS)].to_dict("records")
        ]
        for row in instances:
            for name in schema.BINARY_COLUMNS:
                row[name] = int(row[name])
        hundreds = [instances[k * 100 : (k + 1) * 100] for k in range(len(instances) // 100)]
        one_row_frame = scoring.instances_to_frame(instances[:1])

        load_avg = os.getloadavg()[0]
        print(f"serving benchmark: {directory} ({compiled.classifier}, version {compiled.version})")
        print(f"machine: {os.cpu_count()} CPUs, load average {load_avg:.2f} at start; {GOALS}")
        cap = args.time_cap
        floors = [
            time_calls(
                "sklearn predict_proba, 1 row",
                lambda: pipeline.predict_proba(one_row_frame),
                min(300, args.requests),
                1,
                cap,
            ),
            time_calls(
                "compiled (validate+score), 1 row",
                lambda: compiled.predict_instances(instances[:1]),
                args.requests,
                1,
                cap,
            ),
            time_calls(
                "compiled (validate+score), 100 rows",
                lambda: compiled.predict_instances(hundreds[0]),
                args.batch_requests,
                100,
                cap,
            ),
        ]
        print_table("in-process floors (one thread)", floors, http=False)

        single = {
            "v1": [v1_body([i]) for i in instances[:500]],
            "v2": [v2_body([i], verified.signature) for i in instances[:500]],
        }
        batch = {
            "v1": [v1_body(h) for h in hundreds],
            "v2": [v2_body(h, verified.signature) for h in hundreds],
        }
        if args.side_by_side:
            both = {"single": single, "batch": batch}
            return side_by_side(args, directory, public_key, pipeline, both, Path(scratch))
        paths = {"v1": "/v1/models/stroke:predict", "v2": "/v2/models/stroke/infer"}
        results: list[Measured] = []
        with ServerProcess(str(directory), public_key=public_key) as server:
            ready, why = server.wait_ready(120)
            if not ready:
                print(f"the server did not start: {why}\n{server.log_tail()}", file=sys.stderr)
                return 1
            for rows, bodies, count in (
                (1, single, args.requests),
                (100, batch, args.batch_requests),
            ):
                for protocol in ("v1", "v2"):
                    for concurrency in (1, 8):
                        plural = "s" if rows > 1 else " "
                        label = f"{protocol} {rows:>3} row{plural} concurrency {concurrency}"
                        results.append(
                            load(
                                server,
                                label,
                                paths[protocol],
                                bodies[protocol],
                                rows=rows,
                                concurrency=concurrency,
                                count=count,
                                cap_s=cap,
                            )
                        )
        print_table(
            "HTTP on 127.0.0.1 (kserve.ModelServer, request log on, client on the same CPUs)",
            results,
            http=True,
        )
        print(f"\nload average at end {os.getloadavg()[0]:.2f}")
        return 1 if any(m.errors for m in results) else 0


if __name__ == "__main__":
    sys.exit(main())
