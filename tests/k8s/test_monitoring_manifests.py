"""manifests/monitoring offline: the Grafana dashboard and the alert rules parse, have the shape
their consumers read, and query only metrics our exporter (stroke_mlops.serving.metrics) has.
With promtool on PATH (Debian: ``apt-get install prometheus``) the rules are also checked and
unit-tested by Prometheus' own tool."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from stroke_mlops import settings
from stroke_mlops.serving.metrics import METRIC_NAMES
from tests.k8s.k8s_objects import find

MONITORING = Path(__file__).resolve().parents[2] / "manifests" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RULES = MONITORING / "prometheus-rules.yaml"

# PromQL words that look like metric names but are not (functions, operators, modifiers).
_PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "rate", "increase", "irate", "abs", "log2", "scalar",
    "histogram_quantile", "time", "by", "without", "on", "ignoring", "group_left",
    "group_right", "and", "or", "unless", "offset", "bool", "inf", "nan", "topk", "bottomk",
    "vector",
}  # fmt: skip
NAMESPACE_LABEL = "kubernetes.io/metadata.name"
_DURATION = r"\d+(ms|s|m|h|d|w|y)"
_RULE_DURATION = re.compile(rf"^(0|({_DURATION})+)$")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (labels, functions and durations removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors, $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+", "", text)  # Grafana variables
    words = re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b", text)
    return {w for w in words if w.lower() not in _PROMQL_WORDS}


def test_metric_names_are_found_in_promql() -> None:
    expr = (
        'sum by (le) (rate(stroke_prediction_score_bucket{model_version="1"}[5m])) / '
        "scalar(sum(rate(stroke_predictions_total[$__rate_interval] offset 1d))) > 0.5"
    )
    assert metric_names(expr) == {"stroke_prediction_score_bucket", "stroke_predictions_total"}


# --------------------------------------------------------------------------------------------
# The Grafana dashboard


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_targets(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_has_the_fields_grafana_imports(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    for panel in dashboard["panels"]:
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24 and position["h"] > 0, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].strip() and target["refId"], panel["title"]


def test_dashboard_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        p = panel["gridPos"]
        for x in range(p["x"], p["x"] + p["w"]):
            for y in range(p["y"], p["y"] + p["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_dashboard_queries_only_metrics_we_export(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(t["expr"]) for t in dashboard_targets(dashboard)))
    assert used - METRIC_NAMES == set()
    shown = {n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n in used}
    for required in (
        "stroke_predictions_total",
        "stroke_prediction_score",
        "stroke_refused_requests_total",
        "stroke_missing_values_total",
        "stroke_request_log_dropped_records_total",
        "stroke_request_log_write_failures_total",
        "stroke_monitor_drift_detected",
        "stroke_monitor_realised_recall",
        "stroke_monitor_realised_precision",
        "stroke_monitor_drift_distance",
    ):
        assert required in shown, required
    per_version = [t for t in dashboard_targets(dashboard) if '=~"$version"' in t["expr"]]
    assert len(per_version) >= 8


# --------------------------------------------------------------------------------------------
# The alert rules

# The PrometheusRule shape (prometheus-operator monitoring.coreos.com/v1) with a Prometheus
# rules file as its spec; unknown fields are errors, as a strict API server would make them.
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": _STRINGS,
            },
        },
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": _RULE_DURATION.pattern},
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "additionalProperties": False,
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Za-z]\\w*$"},
                                        "record": {"type": "string"},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": {
                                            "type": "string",
                                            "pattern": _RULE_DURATION.pattern,
                                        },
                                        "labels": _STRINGS,
                                        "annotations": _STRINGS,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def rule_object() -> dict[str, Any]:
    documents = list(yaml.safe_load_all(RULES.read_text()))
    assert len(documents) == 1
    return dict(documents[0])


def alerts(rule_object: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rule_object["spec"]["groups"] for r in g["rules"]}


def test_rules_have_the_prometheus_rule_shape(rule_object: dict[str, Any]) -> None:
    jsonschema.validate(rule_object, RULE_SCHEMA)
    names = [g["name"] for g in rule_object["spec"]["groups"]]
    assert len(names) == len(set(names))


def test_the_schema_refuses_a_malformed_rule(rule_object: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(rule_object))
    broken["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, RULE_SCHEMA)


def test_rules_cover_drift_refusals_and_dropped_logs(rule_object: dict[str, Any]) -> None:
    found = alerts(rule_object)
    read = {name: metric_names(rule["expr"]) for name, rule in found.items()}
    assert "stroke_monitor_drift_detected" in read["StrokeDataDriftDetected"]
    assert "stroke_refused_requests_total" in read["StrokeRefusedRequestsSpike"]
    assert "stroke_request_log_dropped_records_total" in read["StrokeRequestLogDroppingRecords"]
    assert "stroke_request_log_write_failures_total" in read["StrokeRequestLogWritesFailing"]
    assert {"stroke_monitor_realised_recall", "stroke_monitor_recall_floor"} <= read[
        "StrokeRealisedRecallBelowFloor"
    ]
    for name, rule in found.items():
        assert read[name] <= METRIC_NAMES, name
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert rule["annotations"]["summary"], name


# CI installs promtool (.ci/run), so there the promtool checks always run.
promtool = pytest.mark.skipif(
    shutil.which("promtool") is None and os.environ.get("CI") != "true",
    reason="promtool not installed (Debian: apt-get install prometheus)",
)


@pytest.fixture
def rules_file(rule_object: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_object["spec"]))
    return path


@promtool
def test_promtool_accepts_the_rules(rules_file: Path) -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", str(rules_file)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# Series for `promtool test rules`: a steady day, then a burst of refusals, dropped records
# and a drift verdict. Each alert must fire in the burst and not before it.
RULE_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: stroke_accepted_requests_total{{model_version="3"}}
        values: 0+60x1500
      - series: stroke_refused_requests_total{{reason="invalid_value"}}
        values: 0+1x1440 1440+60x60
      - series: stroke_request_log_dropped_records_total{{cause="queue_full"}}
        values: 0x1440 0+5x60
      - series: stroke_request_log_write_failures_total
        values: 0x1500
      - series: stroke_monitor_drift_detected
        values: 0x1440 1x60
      - series: stroke_monitor_drifted_features
        values: 0x1440 2x60
      - series: stroke_monitor_realised_recall{{model_version="3",bound="high"}}
        values: 0.9x1500
      - series: stroke_monitor_recall_floor{{model_version="3"}}
        values: 0.4x1500
      - series: stroke_monitor_realised_recall{{model_version="4",bound="high"}}
        values: 0.5x1440 0.3x60
      - series: stroke_monitor_realised_recall{{model_version="4",bound="low"}}
        values: 0.1x1500
      - series: stroke_monitor_recall_floor{{model_version="4"}}
        values: 0.4x1500
    alert_rule_test:
      - eval_time: 1430m
        alertname: StrokeRefusedRequestsSpike
        exp_alerts: []
      - eval_time: 1470m
        alertname: StrokeRefusedRequestsSpike
        exp_alerts:
          - exp_labels: {{severity: warning}}
      - eval_time: 1430m
        alertname: StrokeRequestLogDroppingRecords
        exp_alerts: []
      - eval_time: 1460m
        alertname: StrokeRequestLogDroppingRecords
        exp_alerts:
          - exp_labels: {{severity: warning}}
      - eval_time: 1460m
        alertname: StrokeRequestLogWritesFailing
        exp_alerts: []
      - eval_time: 1430m
        alertname: StrokeDataDriftDetected
        exp_alerts: []
      - eval_time: 1445m
        alertname: StrokeDataDriftDetected
        exp_alerts:
          - exp_labels: {{severity: warning}}
      - eval_time: 1430m
        alertname: StrokeRealisedRecallBelowFloor
        exp_alerts: []
      - eval_time: 1445m
        alertname: StrokeRealisedRecallBelowFloor
        exp_alerts:
          - exp_labels: {{severity: critical, model_version: "4"}}
  # A fresh Prometheus (no day of history) and a client whose every request is refused (no
  # accepted series at all): the spike must still fire.
  - interval: 1m
    input_series:
      - series: stroke_refused_requests_total{{reason="malformed_json"}}
        values: 0+10x30
    alert_rule_test:
      - eval_time: 25m
        alertname: StrokeRefusedRequestsSpike
        exp_alerts:
          - exp_labels: {{severity: warning}}
"""


@promtool
def test_alerts_fire_on_a_burst_and_not_before(rule_object: dict[str, Any], tmp_path: Path) -> None:
    spec = json.loads(json.dumps(rule_object["spec"]))
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # promtool compares them in full; check rules parses them
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    tests = tmp_path / "rule-tests.yaml"
    tests.write_text(RULE_TESTS.format(rules="rules.yaml"))
    ran = subprocess.run(
        ["promtool", "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


# --------------------------------------------------------------------------------------------
# Scrape targets and the Pushgateway, as the overlays render them


def test_prometheus_reaches_every_predictor_and_the_gateway(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = overlay
    runtime = find(objects, "ServingRuntime", "stroke-mlops-runtime")
    port = runtime["spec"]["containers"][0]["ports"][0]["containerPort"]
    monitor = find(objects, "PodMonitor", "stroke-mlops-predictors")["spec"]
    policy = find(objects, "NetworkPolicy", "predictor-ingress")["spec"]
    # the PodMonitor selects exactly the pods the predictor policy protects, on the served port
    assert monitor["selector"] == policy["podSelector"]
    assert [(e["portNumber"], e["path"]) for e in monitor["podMetricsEndpoints"]] == [
        (port, "/metrics")
    ]
    allowed = policy["ingress"][0]
    assert {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: "monitoring"}}} in allowed[
        "from"
    ]
    assert allowed["ports"] == [{"protocol": "TCP", "port": port}]
    # the gateway: where settings.CLUSTER_PUSHGATEWAY_URL points, scraped with honorLabels
    url = urlsplit(settings.CLUSTER_PUSHGATEWAY_URL)
    service = find(objects, "Service", "pushgateway", settings.NAMESPACE)
    assert url.hostname == f"pushgateway.{settings.NAMESPACE}.svc.cluster.local"
    assert [p["port"] for p in service["spec"]["ports"]] == [url.port]
    scrape = find(objects, "ServiceMonitor", "stroke-mlops-pushgateway")["spec"]
    assert scrape["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert scrape["endpoints"] == [
        {"port": "http", "path": "/metrics", "interval": "30s", "honorLabels": True}
    ]
    pushers = find(objects, "NetworkPolicy", "pushgateway-ingress")["spec"]["ingress"][0]["from"]
    namespaces = {s["namespaceSelector"]["matchLabels"][NAMESPACE_LABEL] for s in pushers[1:]}
    assert namespaces == {"kubeflow", "monitoring"}  # the monitor step's pods, Prometheus
    # the rules in the overlay are the file the live alert tests load
    assert find(objects, "PrometheusRule", "stroke-mlops-predictor") == yaml.safe_load(
        RULES.read_text()
    ) | {"metadata": find(objects, "PrometheusRule", "stroke-mlops-predictor")["metadata"]}
