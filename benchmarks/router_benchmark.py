"""Router overhead: single-row V1 requests to a predictor alone and through KServe's router, side
by side in one run.

    sudo .venv/bin/python benchmarks/router_benchmark.py [--requests 3000] [--rounds 3]
        [--challenger-percent 10] [--model lr|xgb|vote]

Fits the model on the real data (``data/raw/…`` or $STROKE_DATA) as serving_benchmark.py does,
publishes it twice (versions ``benchmark-champion`` and ``benchmark-challenger``), serves each
with ``python -m stroke_mlops.serving.predictor`` (request logging to stdout, as deployed) and
puts KServe's router (tools/platform/bin/kserve-router, ``make platform-tools``) in front of them
with the graph ``stroke-mlops deploy --challenger-percent`` emits. The router runs in its own
network namespace (its port 8080 is fixed), so this needs root. Each round sends ``--requests``
single-row requests alternately to the champion directly and to the router (the order flips
every request, one persistent connection each), so load from other processes falls on both
alike; it prints per round and overall the p50/p90/p99 of each path, the p50 difference (goal:
at most 1 ms) and the router's CPU time per request.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from serving_benchmark import DEFAULT_DATA, make_model_dir, process_cpu_seconds  # noqa: E402

from stroke_mlops.data import dataset, schema  # noqa: E402
from stroke_mlops.deploy.traffic_split import (  # noqa: E402
    build_inference_graph,
    resolve_service_urls,
)
from stroke_mlops.monitoring.replay import as_instances  # noqa: E402
from stroke_mlops.registry import signing  # noqa: E402
from stroke_mlops.serving.infra_validation import ServerProcess, v1_body  # noqa: E402
from tools.local_platform import router as kserve_router  # noqa: E402

PREDICT_PATH = f"/v1/models/{schema.MODEL_NAME}:predict"
GOAL_MS = 1.0


def _timed_post(connection: http.client.HTTPConnection, body: bytes) -> tuple[float, bytes]:
    start = time.perf_counter()
    connection.request(
        "POST", PREDICT_PATH, body=body, headers={"content-type": "application/json"}
    )
    response = connection.getresponse()
    answer = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {answer[:200]!r}")
    return elapsed, answer


def _quantiles(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    at = [ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 for q in (0.5, 0.9, 0.99)]
    return at[0], at[1], at[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="per path and round (3000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument("--challenger-percent", type=int, default=10, help="split (10)")
    parser.add_argument("--model", choices=("lr", "xgb", "vote"), default="vote")
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("STROKE_DATA", DEFAULT_DATA))
    )
    args = parser.parse_args(argv)
    reason = kserve_router.unavailable_reason()
    if reason:
        print(f"router benchmark: cannot run: {reason}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="router-benchmark-") as scratch_dir:
        scratch = Path(scratch_dir)
        keys = signing.generate_key_pair(scratch / "keys")
        model = make_model_dir(args.data, args.model, scratch / "model", keys.private_key)
        patients = dataset.clean_patients(dataset.read_raw_patients_file(args.data))
        bodies = [v1_body([instance]) for instance in as_instances(patients)]
        servers: dict[str, ServerProcess] = {}
        with kserve_router.RouterNetwork() as network:
            try:
                for name in ("stroke", "stroke-challenger"):
                    server = ServerProcess(
                        str(model), host=network.host_ip, public_key=keys.public_key
                    )
                    servers[name] = server
                    server.start()
                    ready, why = server.wait_ready(120)
                    if not ready:
                        raise RuntimeError(f"{name}: {why}\n{server.log_tail()}")
                urls = {
                    name: f"http://{s.host}:{s.port}{PREDICT_PATH}" for name, s in servers.items()
                }
                graph = build_inference_graph(
                    "stroke", "stroke-challenger", args.challenger_percent, name="stroke-split"
                )
                spec = resolve_service_urls(graph, urls)
                with kserve_router.running_router(network, spec, scratch / "router.log") as router:
                    return _measure(args, bodies, servers["stroke"], network, router)
            finally:
                for server in servers.values():
                    server.cleanup()


def _measure(
    args: argparse.Namespace,
    bodies: list[bytes],
    champion: ServerProcess,
    network: kserve_router.RouterNetwork,
    router: kserve_router.RouterProcess,
) -> int:
    print(
        f"router benchmark: {args.model} model, {args.rounds} rounds x {args.requests} "
        f"single-row V1 requests per path, split {100 - args.challenger_percent}/"
        f"{args.challenger_percent}; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} at start; goal: router adds <= {GOAL_MS:g} ms at p50"
    )
    direct = http.client.HTTPConnection(champion.host, champion.port, timeout=10)
    routed = http.client.HTTPConnection(network.router_ip, kserve_router.ROUTER_PORT, timeout=10)
    all_direct: list[float] = []
    all_routed: list[float] = []
    cpu_per_request: list[float] = []
    try:
        for body in bodies[:50]:  # warm both paths and their connections
            _timed_post(direct, body)
            _timed_post(routed, body)
        for round_number in range(1, args.rounds + 1):
            direct_s: list[float] = []
            routed_s: list[float] = []
            cpu_before = process_cpu_seconds(router.process.pid)
            for i in range(args.requests):
                body = bodies[i % len(bodies)]
                first, second = (direct, routed) if i % 2 == 0 else (routed, direct)
                for connection in (first, second):
                    elapsed, _ = _timed_post(connection, body)
                    (routed_s if connection is routed else direct_s).append(elapsed)
            cpu_after = process_cpu_seconds(router.process.pid)
            if cpu_before is not None and cpu_after is not None:
                cpu_per_request.append((cpu_after - cpu_before) * 1000 / args.requests)
            d50, d90, d99 = _quantiles(direct_s)
            r50, r90, r99 = _quantiles(routed_s)
            print(
                f"round {round_number}: predictor alone p50 {d50:.3f} ms (p90 {d90:.3f}, p99 "
                f"{d99:.3f}); through the router p50 {r50:.3f} ms (p90 {r90:.3f}, p99 "
                f"{r99:.3f}); difference at p50 {r50 - d50:+.3f} ms"
            )
            all_direct += direct_s
            all_routed += routed_s
    finally:
        direct.close()
        routed.close()
    d50, d90, d99 = _quantiles(all_direct)
    r50, r90, r99 = _quantiles(all_routed)
    difference = r50 - d50
    cpu = f"{statistics.median(cpu_per_request):.3f} ms" if cpu_per_request else "n/a"
    print(
        f"all rounds: predictor alone p50 {d50:.3f} ms (p90 {d90:.3f}, p99 {d99:.3f}); "
        f"through the router p50 {r50:.3f} ms (p90 {r90:.3f}, p99 {r99:.3f})"
    )
    print(
        f"router overhead at p50: {difference:+.3f} ms "
        f"({'meets' if difference <= GOAL_MS else 'MISSES'} the {GOAL_MS:g} ms goal); "
        f"router CPU per request {cpu}; load average {os.getloadavg()[0]:.2f} at end"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
