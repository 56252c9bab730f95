"""The app in a real browser: Debian's headless Chromium driven by Playwright (never
``playwright install``). Screenshots go to outputs/test-artifacts/browser/ (gitignored)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from stroke_mlops.serving.infra_validation import ServerProcess, v1_body
from tests.app.conftest import SECOND, RunningApp

pytestmark = pytest.mark.integration

CHROMIUM = Path(os.environ.get("STROKE_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(__file__).resolve().parents[2] / "outputs" / "test-artifacts" / "browser"
# Playwright adds --headless itself (headless=True); the user-data dir is a fresh temp folder.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PATIENT = {
    "gender": "Female",
    "age": "79",
    "hypertension": "1",
    "heart_disease": "0",
    "ever_married": "Yes",
    "work_type": "Self-employed",
    "Residence_type": "Rural",
    "avg_glucose_level": "174.12",
    "bmi": "24",
    "smoking_status": "never smoked",
}
SELECTS = {"gender", "hypertension", "heart_disease", "ever_married", "work_type"}
SELECTS |= {"Residence_type", "smoking_status"}


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def _fill(page: Page, patient: dict[str, str]) -> None:
    for name, value in patient.items():
        if name in SELECTS:
            page.select_option(f"#{name}", value)
        else:
            page.fill(f"#{name}", value)


def test_a_clinician_fills_the_form_and_reads_the_risk_and_the_chart(
    browser_page: Page, running_app: RunningApp, predictor: ServerProcess
) -> None:
    page = browser_page
    page.goto(running_app.url + "/")
    page.screenshot(path=str(SCREENSHOTS / "1-form.png"), full_page=True)
    _fill(page, PATIENT)
    page.click("button[type=submit]")
    page.wait_for_selector("#risk")
    page.screenshot(path=str(SCREENSHOTS / "2-risk.png"), full_page=True)

    instance = {
        **PATIENT,
        "age": 79.0,
        "avg_glucose_level": 174.12,
        "bmi": 24.0,
        "hypertension": 1,
        "heart_disease": 0,
    }
    status, raw = predictor.request("POST", "/v1/models/stroke:explain", v1_body([instance]))
    assert status == 200
    (expected,) = json.loads(raw)["explanations"]
    risk = page.inner_text("#risk")
    assert risk.strip() == f"{expected['probability'] * 100:.1f} %"
    decision = page.inner_text("#decision")
    assert ("Flagged" in decision) == bool(expected["decision"])
    assert f"{expected['threshold'] * 100:.1f} %" in decision

    bars = page.locator("svg#contributions g.bar")
    assert bars.count() == 10
    shown: dict[str, float] = {}
    for index in range(bars.count()):
        bar = bars.nth(index)
        shown[str(bar.get_attribute("data-feature"))] = float(
            str(bar.get_attribute("data-contribution"))
        )
        box = bar.locator("rect").bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0  # drawn, on screen
    assert shown == pytest.approx(expected["contributions"])
    # sorted by size: the first bar is the largest contribution
    first = bars.nth(0).get_attribute("data-feature")
    assert first == max(shown, key=lambda name: abs(shown[name]))
    for index in range(bars.count()):  # each bar is labelled with its value
        feature = str(bars.nth(index).get_attribute("data-feature"))
        value = bars.nth(index).locator("text").nth(1).text_content() or ""
        assert value == f"{expected['contributions'][feature] * 100:+.1f} pp"


def test_a_bad_value_gets_a_message_on_its_field(
    browser_page: Page, running_app: RunningApp
) -> None:
    page = browser_page
    page.goto(running_app.url + "/")
    _fill(page, {**PATIENT, "age": "300"})
    page.click("button[type=submit]")
    page.wait_for_selector("#age-error")
    page.screenshot(path=str(SCREENSHOTS / "3-bad-value.png"), full_page=True)
    message = page.inner_text("#age-error")
    assert "Age (years): expected a number in [0, 120]; got 300" in message
    assert page.input_value("#age") == "300"
    assert page.locator("#risk").count() == 0


def test_the_operations_view_in_the_browser(browser_page: Page, running_app: RunningApp) -> None:
    page = browser_page
    page.goto(running_app.url + "/operations")
    page.click("summary")  # open the model card
    page.screenshot(path=str(SCREENSHOTS / "4-operations.png"), full_page=True)
    assert page.inner_text("#production-version") == SECOND
    assert "Realised recall:" in page.inner_text("#realised-recall")
    assert page.locator("#versions tbody tr").count() == 2
