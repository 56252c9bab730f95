"""A local Prometheus + Pushgateway + Alertmanager that evaluates the shipped alert rules.

For demos and tests on one machine (no cluster): Debian's packages ``prometheus``,
``prometheus-pushgateway`` and ``prometheus-alertmanager`` run as child processes on 127.0.0.1
with free ports and a temporary folder. Prometheus scrapes the given predictors (their
``/metrics``) and the gateway (``honor_labels``, as the shipped ServiceMonitor does), evaluates
``manifests/monitoring/prometheus-rules.yaml`` and sends what fires to the Alertmanager, whose
v2 API answers :meth:`AlertStack.firing`.

Scrape and evaluation run every ``interval_s`` (1 s by default) instead of a cluster's 30 s; a
rule's ``for:`` longer than ``max_for`` is shortened to it (say so wherever a figure depends on
it); nothing else in the rules is changed.

    with AlertStack(["127.0.0.1:8080"]) as stack:
        subprocess.run(["stroke-mlops", "monitor", ..., "--pushgateway", stack.pushgateway_url])
        print(stack.wait_firing("StrokeDataDriftDetected", timeout_s=60))

``python -m stroke_mlops.monitoring.alert_stack --predictor 127.0.0.1:8080`` runs it until
Ctrl-C (or until ``--wait-for ALERT`` fires) and prints the three URLs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = ["BINARIES", "SHIPPED_RULES", "AlertStack", "AlertStackError", "rules_for_test"]

# Debian package → its binary
BINARIES = {
    "prometheus": "prometheus",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "prometheus-alertmanager": "prometheus-alertmanager",
}
SHIPPED_RULES = Path(__file__).resolve().parents[3] / "manifests/monitoring/prometheus-rules.yaml"
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class AlertStackError(RuntimeError):
    """A server is missing, did not come up, or an alert did not fire in time."""


def _seconds(duration: str) -> float:
    return sum(int(n) * _SECONDS[unit] for n, unit in _DURATION.findall(duration))


def rules_for_test(rules: Path, *, max_for: str | None) -> dict[str, Any]:
    """The rules file (a PrometheusRule's spec, or a plain rules file) with every ``for:``
    longer than ``max_for`` set to ``max_for``."""
    document = yaml.safe_load(rules.read_text())
    spec = document.get("spec", document) if document.get("kind") == "PrometheusRule" else document
    if max_for is not None:
        for group in spec["groups"]:
            for rule in group["rules"]:
                if "for" in rule and _seconds(rule["for"]) > _seconds(max_for):
                    rule["for"] = max_for
    return dict(spec)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, timeout_s: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.loads(response.read())


class AlertStack:
    """Prometheus, a Pushgateway and an Alertmanager as child processes (a context manager)."""

    def __init__(
        self,
        predictors: Sequence[str] = (),
        *,
        rules: Path = SHIPPED_RULES,
        interval_s: float = 1.0,
        max_for: str | None = "1s",
        work_dir: Path | None = None,
    ) -> None:
        missing = [b for b in BINARIES.values() if shutil.which(b) is None]
        if missing:
            raise AlertStackError(
                f"{', '.join(missing)} not installed (Debian: apt-get install {' '.join(BINARIES)})"
            )
        self.predictors = list(predictors)
        self._scratch = None if work_dir else tempfile.TemporaryDirectory(prefix="alert-stack-")
        self.work_dir = work_dir or Path(self._scratch.name)  # type: ignore[union-attr]
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.interval_s = interval_s
        self.ports = {name: _free_port() for name in ("prometheus", "pushgateway", "alertmanager")}
        self.prometheus_url = f"http://127.0.0.1:{self.ports['prometheus']}"
        self.pushgateway_url = f"http://127.0.0.1:{self.ports['pushgateway']}"
        self.alertmanager_url = f"http://127.0.0.1:{self.ports['alertmanager']}"
        self._rules = rules_for_test(rules, max_for=max_for)
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # -- life cycle ------------------------------------------------------------------------

    def __enter__(self) -> AlertStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _write_configs(self) -> None:
        interval = f"{max(1, round(self.interval_s * 1000))}ms"
        (self.work_dir / "rules.yml").write_text(yaml.safe_dump(self._rules, sort_keys=False))
        prometheus = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": ["rules.yml"],
            "alerting": {
                "alertmanagers": [
                    {"static_configs": [{"targets": [f"127.0.0.1:{self.ports['alertmanager']}"]}]}
                ]
            },
            "scrape_configs": [
                {
                    "job_name": "stroke-predictor",
                    "static_configs": [{"targets": self.predictors}],
                },
                {
                    "job_name": "pushgateway",
                    "honor_labels": True,  # keep the pushed job/instance labels
                    "static_configs": [{"targets": [f"127.0.0.1:{self.ports['pushgateway']}"]}],
                },
            ],
        }
        (self.work_dir / "prometheus.yml").write_text(yaml.safe_dump(prometheus, sort_keys=False))
        alertmanager = {
            "route": {
                "receiver": "none",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "none"}],  # shown by the API; sent nowhere
        }
        (self.work_dir / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager))

    def _spawn(self, name: str, args: list[str]) -> None:
        log = (self.work_dir / f"{name}.log").open("wb")
        with log:
            self._processes[name] = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the three servers and wait until each answers ``/-/ready``."""
        self._write_configs()
        work = self.work_dir
        self._spawn(
            "alertmanager",
            [
                BINARIES["prometheus-alertmanager"],
                f"--config.file={work / 'alertmanager.yml'}",
                f"--storage.path={work / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}",
                "--cluster.listen-address=",  # no gossip port: a single local instance
            ],
        )
        self._spawn(
            "pushgateway",
            [
                BINARIES["prometheus-pushgateway"],
                f"--web.listen-address=127.0.0.1:{self.ports['pushgateway']}",
                # Debian's build persists to /var/lib/prometheus/pushgateway.data by default and
                # reloads it at start: one run's pushes would greet the next. Memory only.
                "--persistence.file=",
            ],
        )
        self._spawn(
            "prometheus",
            [
                BINARIES["prometheus"],
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            ],
        )
        deadline = time.monotonic() + timeout_s
        for name, url in (
            ("alertmanager", self.alertmanager_url),
            ("pushgateway", self.pushgateway_url),
            ("prometheus", self.prometheus_url),
        ):
            while True:
                code = self._processes[name].poll()
                if code is not None:
                    raise AlertStackError(f"{name} exited with status {code}:\n{self.log(name)}")
                if self._ready(url):
                    break
                if time.monotonic() > deadline:
                    raise AlertStackError(f"{name} not ready in {timeout_s:g} s:\n{self.log(name)}")
                time.sleep(0.1)

    @staticmethod
    def _ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1.0) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        """Stop every server this stack started (SIGTERM, then SIGKILL after 10 s)."""
        for process in self._processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self._processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def log(self, name: str, lines: int = 20) -> str:
        path = self.work_dir / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    # -- reading -----------------------------------------------------------------------------

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector (Prometheus HTTP API)."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        return list(_get(url)["data"]["result"])

    def targets_up(self) -> bool:
        """Every scrape target has been scraped successfully at least once."""
        active = _get(f"{self.prometheus_url}/api/v1/targets")["data"]["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    def alerts(self) -> list[dict[str, Any]]:
        """The Alertmanager's active alerts (``GET /api/v2/alerts``)."""
        return list(_get(f"{self.alertmanager_url}/api/v2/alerts?active=true&silenced=false"))

    def firing(self) -> dict[str, list[dict[str, str]]]:
        """Alert name → the label sets of its active alerts in the Alertmanager."""
        found: dict[str, list[dict[str, str]]] = {}
        for alert in self.alerts():
            labels = alert["labels"]
            found.setdefault(labels["alertname"], []).append(labels)
        return found

    def wait_firing(self, name: str, timeout_s: float = 60.0) -> list[dict[str, str]]:
        """Wait until ``name`` is active in the Alertmanager; its label sets."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.firing().get(name)
            if found:
                return found
            time.sleep(0.25)
        raise AlertStackError(f"{name} did not fire within {timeout_s:g} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stroke_mlops.monitoring.alert_stack",
        description="Run Prometheus, a Pushgateway and an Alertmanager on 127.0.0.1 with the "
        "shipped alert rules, scraping the given predictors.",
    )
    parser.add_argument("--predictor", action="append", default=[], metavar="HOST:PORT")
    parser.add_argument("--rules", type=Path, default=SHIPPED_RULES)
    parser.add_argument("--max-for", default="1s", help="shorten longer for: to this (or 'none')")
    parser.add_argument("--wait-for", metavar="ALERT", help="exit once this alert fires")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    args = parser.parse_args(argv)
    max_for = None if args.max_for == "none" else args.max_for
    try:
        with AlertStack(args.predictor, rules=args.rules, max_for=max_for) as stack:
            print(f"prometheus   {stack.prometheus_url}")
            print(f"pushgateway  {stack.pushgateway_url}  (stroke-mlops monitor --pushgateway)")
            print(f"alertmanager {stack.alertmanager_url}/api/v2/alerts", flush=True)
            if args.wait_for:
                labels = stack.wait_firing(args.wait_for, timeout_s=args.timeout_s)
                print(f"firing: {args.wait_for} {json.dumps(labels)}")
                return 0
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(1)
    except AlertStackError as error:
        print(f"alert stack: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
