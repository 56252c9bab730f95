"""The app's pages over HTTP (in process, FastAPI's TestClient), against the real predictor."""

from __future__ import annotations

import copy
import json
import re
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stroke_mlops.app.patient import form_fields
from stroke_mlops.app.web import MAX_FORM_BYTES, create_app
from stroke_mlops.cli import build_parser
from stroke_mlops.registry.model_dir import verify_model_dir
from stroke_mlops.serving.infra_validation import ServerProcess, free_port, v1_body
from tests.app.conftest import FIRST, SECOND, AppWorld

pytestmark = pytest.mark.integration

PATIENT = {
    "gender": "Male",
    "age": "67",
    "hypertension": "0",
    "heart_disease": "1",
    "ever_married": "Yes",
    "work_type": "Private",
    "Residence_type": "Urban",
    "avg_glucose_level": "228.69",
    "bmi": "36.6",
    "smoking_status": "formerly smoked",
}


@pytest.fixture(scope="module")
def client(app_world: AppWorld, predictor: ServerProcess) -> TestClient:
    url = f"http://{predictor.host}:{predictor.port}"
    return TestClient(create_app(url, str(app_world.store), app_world.reports))


def _contract(app_world: AppWorld) -> dict[str, Any]:
    return verify_model_dir(app_world.production_dir).signature


def test_the_form_is_built_from_the_shipped_contract(app_world: AppWorld) -> None:
    contract = _contract(app_world)
    fields = {f.name: f for f in form_fields(contract)}
    age = next(i for i in contract["inputs"] if i["name"] == "age")
    work = next(i for i in contract["inputs"] if i["name"] == "work_type")
    assert (fields["age"].minimum, fields["age"].maximum) == (age["minimum"], age["maximum"])
    assert [v for v, _ in fields["work_type"].choices] == work["categories"]
    assert fields["bmi"].optional and not fields["age"].optional
    changed = copy.deepcopy(contract)  # another contract, another form: no second copy
    for spec in changed["inputs"]:
        if spec["name"] == "age":
            spec["maximum"] = 99.0
    assert {f.name: f for f in form_fields(changed)}["age"].maximum == 99.0


def test_the_form_page_shows_the_contracts_ranges_and_categories(
    client: TestClient, app_world: AppWorld
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "content-security-policy" in page.headers
    assert re.search(r'id="age"[^>]*min="0" max="120"', page.text)
    work = next(i for i in _contract(app_world)["inputs"] if i["name"] == "work_type")
    select = page.text.split('id="work_type"', 1)[1].split("</select>", 1)[0]
    assert re.findall(r'<option value="([^"]+)"', select) == work["categories"]
    assert f"production model {SECOND}" in page.text


def test_a_patient_gets_the_predictors_risk_decision_and_contributions(
    client: TestClient, predictor: ServerProcess
) -> None:
    page = client.post("/", data=PATIENT)
    assert page.status_code == 200, page.text
    status, raw = predictor.request(
        "POST", "/v1/models/stroke:explain", v1_body([_as_instance(PATIENT)])
    )
    assert status == 200
    (expected,) = json.loads(raw)["explanations"]
    risk = re.search(r'id="risk">([^<]+)<', page.text)
    assert risk is not None and risk.group(1).strip() == f"{expected['probability'] * 100:.1f} %"
    decision = re.search(r'id="decision"[^>]*>([^<]+)<', page.text)
    assert decision is not None
    flagged = "Flagged" in decision.group(1)
    assert flagged == bool(expected["decision"])
    bars = dict(re.findall(r'data-feature="([^"]+)" data-contribution="([^"]+)"', page.text))
    assert set(bars) == set(expected["contributions"])
    for name, value in bars.items():
        assert float(value) == pytest.approx(expected["contributions"][name])
    # the predictor's own id, which feedback labels join on (not the app's correlation id)
    assert re.search(r'id="prediction-id">[0-9a-f]{32}<', page.text)


def test_a_value_out_of_range_gets_the_predictors_message_on_its_field(client: TestClient) -> None:
    page = client.post("/", data={**PATIENT, "age": "300"})
    assert page.status_code == 400
    error = re.search(r'id="age-error"[^>]*>([^<]+)<', page.text)
    assert error is not None
    assert "Age (years): expected a number in [0, 120]; got 300" in unescape(error.group(1))
    assert 'value="300"' in page.text  # what was typed stays in the form


def test_text_in_a_number_box_and_an_empty_required_box_are_named(client: TestClient) -> None:
    page = client.post("/", data={**PATIENT, "avg_glucose_level": "high", "age": ""})
    assert page.status_code == 400
    text = unescape(page.text)
    assert "Average glucose (mg/dL): 'high' is not a number; expected a number in" in text
    assert "Age (years): required (a number in [0, 120])" in text


def test_an_empty_bmi_is_sent_as_unknown(client: TestClient) -> None:
    page = client.post("/", data={**PATIENT, "bmi": ""})
    assert page.status_code == 200
    assert 'data-feature="bmi"' in page.text


def test_an_unreachable_predictor_is_a_clear_502(app_world: AppWorld) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    page = TestClient(create_app(down, str(app_world.store))).post("/", data=PATIENT)
    assert page.status_code == 502
    assert f"the predictor at {down} is not reachable" in page.text


def test_an_oversized_form_is_refused(client: TestClient) -> None:
    page = client.post("/", content=b"a=" + b"x" * MAX_FORM_BYTES)
    assert page.status_code == 413


def test_operations_shows_production_history_gates_and_realised_recall(
    client: TestClient, app_world: AppWorld
) -> None:
    page = client.get("/operations")
    assert page.status_code == 200
    text = unescape(page.text)
    assert re.search(rf'id="production-version">{SECOND}<', text)
    assert "Logistic regression fitted for the app tests." in text  # the model card
    rows = dict(re.findall(r'data-version="([^"]+)">(.*?)</tr>', text, re.S))
    assert list(rows) == [SECOND, FIRST]  # newest first
    assert "Promoted: no champion yet" in rows[FIRST]
    assert f"Promoted over {FIRST}" in rows[SECOND]
    assert "(production)" in rows[SECOND] and "(production)" not in rows[FIRST]
    recall = app_world.summary.performance.recall
    assert recall.value is not None
    shown = re.search(r'id="realised-recall">.*?<strong>([0-9.]+)</strong>', text, re.S)
    assert shown is not None and shown.group(1) == f"{recall.value:.3f}"
    assert f">{app_world.summary.recommendation}<" in text
    report = client.get("/operations/monitor-report")
    assert report.status_code == 200 and "realised recall" in report.text


def test_the_app_binds_127_0_0_1_unless_told_otherwise() -> None:
    args = build_parser().parse_args(
        ["app", "--predictor-url", "http://127.0.0.1:8080", "--store", "s"]
    )
    assert args.host == "127.0.0.1"


def _as_instance(form: dict[str, str]) -> dict[str, Any]:
    numbers = {"age", "avg_glucose_level", "bmi"}
    integers = {"hypertension", "heart_disease"}
    return {
        k: float(v) if k in numbers else int(v) if k in integers else v for k, v in form.items()
    }
