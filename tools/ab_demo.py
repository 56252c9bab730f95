"""``make ab-demo``: two model versions side by side behind KServe's own router, on this machine.

1. Fits two versions on the development rows of the project's patient split (seed 42): the
   champion a logistic regression, the challenger XGBoost (each threshold: the highest recall
   whose out-of-fold precision holds 0.15), and publishes both, signed, to a demo store; the
   champion is promoted to production.
2. Serves each with ``stroke-mlops serve`` (request logging to the demo's request-log folder) and
   puts KServe's router (tools/platform/bin/kserve-router) in front of them with the graph
   ``stroke-mlops deploy --challenger-percent N`` emits. The router listens on its fixed port
   8080 in its own network namespace (root needed; see tools/local_platform/router.py).
3. Replays the held-out test patients through the router, one request each.
4. Later, their outcomes arrive: writes them as a feedback label file keyed by the
   ``prediction_id`` each answer carried, and records it with ``stroke-mlops feedback``.
5. Prints the share each version answered and ``stroke-mlops compare``'s verdict on the two.
6. Alerts: Debian's Prometheus, Pushgateway and Alertmanager (``monitoring.alert_stack``, the
   shipped rules with ``for:`` shortened to 1 s) scrape both predictors; after the replay a bad
   client sends malformed requests through the router and ``StrokeRefusedRequestsSpike`` fires
   in the Alertmanager (skipped, with a line, where those packages are not installed).
Every process it started is stopped at the end (Ctrl-C too).

    .venv/bin/python -m tools.ab_demo [--data CSV] [--work-dir DIR] [--challenger-percent N]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from stroke_mlops.data import dataset, schema
from stroke_mlops.deploy.traffic_split import build_inference_graph, resolve_service_urls
from stroke_mlops.monitoring.alert_stack import AlertStack, AlertStackError
from stroke_mlops.monitoring.replay import as_instances
from stroke_mlops.registry import signature, signing
from stroke_mlops.registry.model_dir import write_model_dir
from stroke_mlops.registry.store import open_store
from stroke_mlops.serving.demo import local_model_uri
from stroke_mlops.serving.infra_validation import ServerProcess, v1_body
from tools.local_platform import router as kserve_router

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "data" / "raw" / "healthcare-dataset-stroke-data.csv"
PREDICT_PATH = f"/v1/models/{schema.MODEL_NAME}:predict"
SPLIT_SEED = 42
PRECISION_FLOOR = 0.15
SERVICES = {"champion": "stroke", "challenger": "stroke-challenger"}
SPIKE_ALERT = "StrokeRefusedRequestsSpike"
MALFORMED_REQUESTS = 400  # > 20 % of the replay's 1,022: the spike rule's ratio


@dataclass(frozen=True)
class Answer:
    prediction_id: str
    version: str
    decision: int
    stroke: int  # the outcome that arrives later


def _say(message: str) -> None:
    print(f"ab-demo: {message}", flush=True)


def _fit_version(kind: str, split: dataset.PatientSplit, version: str, target: Path) -> Path:
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from stroke_mlops.training import metrics, train

    development = pd.concat([split.train, split.validation], ignore_index=True)
    features, labels = dataset.features_and_target(development)
    imbalance = float((labels == 0).sum() / labels.sum())
    candidate = {c.name: c for c in train.CANDIDATES}[kind]
    pipeline = train.build_model_pipeline(candidate.make_classifier(SPLIT_SEED, imbalance))
    folds = StratifiedKFold(5, shuffle=True, random_state=SPLIT_SEED)
    scores = cross_val_predict(pipeline, features, labels, cv=folds, method="predict_proba")[:, 1]
    threshold = metrics.select_threshold(labels, scores, precision_floor=PRECISION_FLOOR)
    pipeline.fit(features, labels)
    write_model_dir(
        target,
        model=pipeline,
        signature=signature.build_signature(signature.example_instances(development)),
        model_card=f"# stroke {version}\n\nThe A/B demo's {kind} version.\n",
        metadata={
            "version": version,
            "threshold": threshold.threshold,
            "model_name": schema.MODEL_NAME,
        },
        signing_key=signing.private_key_from_env(),
    )
    _say(
        f"fitted {version} ({kind}): threshold {threshold.threshold:.3f}, out-of-fold recall "
        f"{threshold.recall:.2f} at precision {threshold.precision:.2f}"
    )
    return target


def _replay(router_ip: str, rows: Any) -> list[Answer]:
    connection = http.client.HTTPConnection(router_ip, kserve_router.ROUTER_PORT, timeout=30)
    answers = []
    try:
        for instance, stroke in zip(as_instances(rows), rows[schema.TARGET_COLUMN], strict=True):
            connection.request(
                "POST",
                PREDICT_PATH,
                body=v1_body([instance]),
                headers={"content-type": "application/json"},
            )
            response = connection.getresponse()
            body = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"the router answered {response.status}: {body}")
            answers.append(
                Answer(
                    body["prediction_id"],
                    body["model_version"],
                    int(body["predictions"][0]["decision"]),
                    int(stroke),
                )
            )
    finally:
        connection.close()
    return answers


def _malformed_burst(router_ip: str, count: int) -> int:
    """A bad client: ``count`` requests whose age is not a number; the refusals counted."""
    connection = http.client.HTTPConnection(router_ip, kserve_router.ROUTER_PORT, timeout=30)
    body = json.dumps({"instances": [{"age": "not a number"}]})
    refused = 0
    try:
        for _ in range(count):
            connection.request(
                "POST", PREDICT_PATH, body=body, headers={"content-type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            refused += 400 <= response.status < 500
    finally:
        connection.close()
    return refused


def _start_alert_stack(
    exits: contextlib.ExitStack, servers: dict[str, ServerProcess], work_dir: Path
) -> AlertStack | None:
    try:
        stack = exits.enter_context(
            AlertStack([f"{s.host}:{s.port}" for s in servers.values()], work_dir=work_dir)
        )
    except AlertStackError as error:
        _say(f"alert check skipped: {error}")
        return None
    deadline = time.monotonic() + 30
    while not stack.targets_up() and time.monotonic() < deadline:
        time.sleep(0.25)
    _say(f"Prometheus {stack.prometheus_url} scrapes both predictors; Alertmanager "
         f"{stack.alertmanager_url}")  # fmt: skip
    return stack


def _check_alert(stack: AlertStack, router_ip: str) -> bool:
    quiet = sorted(stack.firing())
    _say(f"alerts firing after the replay: {', '.join(quiet) or 'none'}")
    refused = _malformed_burst(router_ip, MALFORMED_REQUESTS)
    _say(f"a bad client sent {MALFORMED_REQUESTS} malformed requests; {refused} refused (4xx)")
    try:
        fired = stack.wait_firing(SPIKE_ALERT, timeout_s=90)
    except AlertStackError as error:
        _say(f"alert check failed: {error}")
        return False
    _say(f"alert firing in the Alertmanager: {SPIKE_ALERT} {fired[0].get('severity', '')}")
    return True


def _compare(store_uri: str, logs: Path, versions: dict[str, str], output: Path) -> bool:
    compared = subprocess.run(
        [sys.executable, "-m", "stroke_mlops.cli", "compare", "--store", store_uri,
         "--requests", str(logs), "--champion", versions["champion"],
         "--challenger", versions["challenger"], "--output", str(output)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    for line in (compared.stdout + compared.stderr).strip().splitlines():
        _say(line if line.startswith("compare") else f"compare: {line}")
    return compared.returncode == 0


def _write_labels(answers: list[Answer], path: Path) -> None:
    """The outcomes, known weeks later, keyed by the prediction id the predictor issued."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prediction_id", "stroke"])
        writer.writerows((a.prediction_id, a.stroke) for a in answers)


def run(data: Path, work_dir: Path, challenger_percent: int) -> int:
    reason = kserve_router.unavailable_reason()
    if reason:
        _say(f"cannot run: {reason}")
        return 2
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    signing.use_local_dev_keys(create=True)
    store_uri, logs = str(work_dir / "store"), work_dir / "request-logs"
    patients = dataset.clean_patients(dataset.read_raw_patients_file(data), keep_id=True)
    split = dataset.split_patients(patients, seed=SPLIT_SEED)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    versions = {"champion": f"{stamp}-champion", "challenger": f"{stamp}-challenger"}
    store = open_store(store_uri)
    uris = {}
    for role, kind in (("champion", "logistic_regression"), ("challenger", "xgboost")):
        built = _fit_version(kind, split, versions[role], work_dir / "built" / role)
        uris[role] = local_model_uri(store.publish_version(built, versions[role]).uri)
    store.promote(versions["champion"])
    _say(f"published both to {store_uri}; production is the champion {versions['champion']}")

    servers: dict[str, ServerProcess] = {}
    alert_fired: bool | None = None
    with kserve_router.RouterNetwork() as network, contextlib.ExitStack() as exits:
        try:
            for role in versions:
                servers[role] = ServerProcess(
                    uris[role],
                    host=network.host_ip,
                    public_key=signing.public_key_from_env(),
                    extra_args=["--request-log-uri", str(logs), "--no-stdout-request-log"],
                )
                servers[role].start()
            for role, server in servers.items():
                ready, why = server.wait_ready(120)
                if not ready:
                    raise RuntimeError(f"the {role} did not start: {why}\n{server.log_tail()}")
            alerts = _start_alert_stack(exits, servers, work_dir / "alert-stack")
            urls = {
                SERVICES[role]: f"http://{s.host}:{s.port}{PREDICT_PATH}"
                for role, s in servers.items()
            }
            graph = build_inference_graph(
                SERVICES["champion"],
                SERVICES["challenger"],
                challenger_percent,
                name="stroke-split",
            )
            (work_dir / "inference-graph.json").write_text(json.dumps(graph, indent=2))
            spec = resolve_service_urls(graph, urls)
            with kserve_router.running_router(network, spec, work_dir / "router.log") as router:
                _say(
                    f"KServe's router on {router.url} (its own network namespace), splitting "
                    f"{100 - challenger_percent}/{challenger_percent}; replaying "
                    f"{len(split.test)} held-out patients"
                )
                answers = _replay(network.router_ip, split.test)
                if alerts is not None:
                    alert_fired = _check_alert(alerts, network.router_ip)
        finally:
            exits.close()
            for server in servers.values():
                server.cleanup()  # SIGTERM: each writes its last request-log batch
    labels = work_dir / "outcomes.csv"
    _write_labels(answers, labels)
    recorded = subprocess.run(
        [
            sys.executable,
            "-m",
            "stroke_mlops.cli",
            "feedback",
            "--store",
            store_uri,
            "--labels",
            str(labels),
            "--requests",
            str(logs),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if recorded.returncode != 0:
        _say(f"feedback refused the outcomes: {recorded.stderr.strip()}")
        return 1
    said = (
        recorded.stdout.strip().splitlines()[-1].split("; recorded")[0] if recorded.stdout else ""
    )
    _say(f"outcomes arrived: {len(answers)} labels in {labels}; {said}")
    _report(answers, versions, challenger_percent)

    if not _compare(store_uri, logs, versions, work_dir / "compare.json"):
        return 1
    return 1 if alert_fired is False else 0


def _report(answers: list[Answer], versions: dict[str, str], challenger_percent: int) -> None:
    served = Counter(a.version for a in answers)
    for role, version in versions.items():
        mine = [a for a in answers if a.version == version]
        share = 100 * len(mine) / len(answers)
        expected = challenger_percent if role == "challenger" else 100 - challenger_percent
        flagged = sum(a.decision for a in mine)
        caught = sum(a.decision for a in mine if a.stroke)
        strokes = sum(a.stroke for a in mine)
        _say(
            f"{role:10s} {version}: answered {len(mine):4d} of {len(answers)} requests "
            f"({share:.1f} %, split says {expected} %); flagged {flagged}, caught {caught} of "
            f"{strokes} strokes"
        )
    if set(served) - set(versions.values()):
        _say(f"answers from unknown versions: {sorted(set(served) - set(versions.values()))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(os.environ.get("STROKE_DATA", DEFAULT_DATA))
    )
    parser.add_argument("--work-dir", type=Path, default=REPO / "outputs" / "ab-demo")
    parser.add_argument("--challenger-percent", type=int, default=30)
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM (also when started in the background, where SIGINT is inherited
    # ignored): KeyboardInterrupt, and every `finally` above stops what it started.
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, signal.default_int_handler)
    try:
        return run(args.data, args.work_dir, args.challenger_percent)
    except KeyboardInterrupt:
        _say("interrupted; every process it started is stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
