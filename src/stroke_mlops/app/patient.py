"""The patient form: its fields come from the shipped ``signature.json``, never a second copy.

:func:`form_fields` turns the signature's inputs into form fields (number boxes with the
contract's range, yes/no choices, category lists); :func:`read_patient` turns submitted form
values into one V1 instance, or field errors for what is not even of the right kind (an empty
required box, text in a number box). Ranges and categories are judged by the predictor, the
single judge of the contract, whose 400 message names the field (:func:`field_of_message`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stroke_mlops.serving.protocol.inputs import input_specs

_LABELS = {
    "gender": "Gender",
    "age": "Age (years)",
    "hypertension": "Hypertension",
    "heart_disease": "Heart disease",
    "ever_married": "Ever married",
    "work_type": "Work type",
    "Residence_type": "Residence",
    "avg_glucose_level": "Average glucose (mg/dL)",
    "bmi": "BMI (kg/m²)",
    "smoking_status": "Smoking status",
}
_FIELD_IN_MESSAGE = re.compile(r'field "([A-Za-z_]+)"')


@dataclass(frozen=True)
class FormField:
    """One input of the form, as the template renders it."""

    name: str
    label: str
    kind: str  # "number" | "choice"
    choices: tuple[tuple[str, str], ...] = ()  # (value, text)
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False
    hint: str = ""


def form_fields(signature: Mapping[str, Any]) -> tuple[FormField, ...]:
    """The form's fields, in the signature's order, with its ranges and allowed values."""
    fields = []
    for spec in input_specs(signature):
        label = _LABELS.get(spec.name, spec.name)
        if spec.kind == "number":
            assert spec.minimum is not None and spec.maximum is not None
            fields.append(
                FormField(
                    spec.name,
                    label,
                    "number",
                    minimum=spec.minimum,
                    maximum=spec.maximum,
                    optional=spec.nullable,
                    hint=f"{spec.minimum:g} to {spec.maximum:g}"
                    + ("; leave empty if unknown" if spec.nullable else ""),
                )
            )
        elif spec.kind == "integer":
            texts = {0: "no", 1: "yes"} if tuple(spec.allowed) == (0, 1) else {}
            choices = tuple((str(v), texts.get(v, str(v))) for v in spec.allowed)
            fields.append(FormField(spec.name, label, "choice", choices=choices))
        else:
            choices = tuple((c, c.replace("_", " ")) for c in spec.categories)
            fields.append(FormField(spec.name, label, "choice", choices=choices))
    return tuple(fields)


def read_patient(
    signature: Mapping[str, Any], form: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(instance, errors by field) from submitted form values (strings)."""
    instance: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in input_specs(signature):
        raw = (form.get(spec.name) or "").strip()
        label = _LABELS.get(spec.name, spec.name)
        if not raw:
            if spec.nullable:
                instance[spec.name] = None
            else:
                errors[spec.name] = f"{label}: required ({spec.expectation()})"
            continue
        if spec.kind == "number":
            try:
                value = float(raw)
            except ValueError:
                errors[spec.name] = f"{label}: {_quote(raw)} is not a number; expected " + (
                    spec.expectation()
                )
                continue
            if not math.isfinite(value):
                errors[spec.name] = f"{label}: expected {spec.expectation()}"
                continue
            instance[spec.name] = value
        elif spec.kind == "integer":
            try:
                instance[spec.name] = int(raw)
            except ValueError:
                errors[spec.name] = f"{label}: expected {spec.expectation()}"
        else:
            instance[spec.name] = raw  # the predictor judges the category
    return instance, errors


def field_of_message(message: str, names: Sequence[str]) -> str | None:
    """The input a predictor error message names (``field "age"``), if it is one of ``names``."""
    found = _FIELD_IN_MESSAGE.search(message)
    return found.group(1) if found and found.group(1) in names else None


def without_instance_prefix(message: str) -> str:
    """``instance 0: field "age": ...`` as one patient's message: ``field "age": ...``."""
    return re.sub(r"^instance 0: ", "", message)


def label_of(name: str) -> str:
    return _LABELS.get(name, name)


def _quote(raw: str, limit: int = 40) -> str:
    return repr(raw if len(raw) <= limit else raw[:limit] + "…")
