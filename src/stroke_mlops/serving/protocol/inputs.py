"""The signature's inputs (``signature.json``): what each accepts, as the protocol checks it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stroke_mlops.serving.defaults import MAX_INSTANCES as MAX_INSTANCES  # the row limit


@dataclass(frozen=True)
class InputSpec:
    """One input of ``signature.json``: its kind and the values it accepts."""

    name: str
    kind: str  # "number" | "integer" | "string"
    datatype: str  # Open Inference Protocol datatype: FP64 | INT64 | BYTES
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[int, ...] = ()
    categories: tuple[str, ...] = ()

    def expectation(self) -> str:
        """What a valid value looks like, as the error messages say it."""
        if self.kind == "number":
            text = f"a number in [{self.minimum:g}, {self.maximum:g}]"
        elif self.kind == "integer":
            text = " or ".join(str(v) for v in self.allowed) if self.allowed else "an integer"
        else:
            text = "one of " + ", ".join(self.categories)
        return f"{text} or null" if self.nullable else text


def input_specs(signature: Mapping[str, Any]) -> tuple[InputSpec, ...]:
    """The signature's inputs, in signature order (raises ValueError on a malformed signature)."""
    specs: list[InputSpec] = []
    try:
        for raw in signature["inputs"]:
            kind = raw["type"]
            if kind == "number":
                spec = InputSpec(
                    name=raw["name"],
                    kind=kind,
                    datatype=raw["datatype"],
                    nullable=bool(raw.get("nullable", False)),
                    minimum=float(raw["minimum"]),
                    maximum=float(raw["maximum"]),
                )
            elif kind == "integer":
                spec = InputSpec(
                    name=raw["name"],
                    kind=kind,
                    datatype=raw["datatype"],
                    nullable=bool(raw.get("nullable", False)),
                    allowed=tuple(int(v) for v in raw.get("allowed", ())),
                )
            elif kind == "string":
                spec = InputSpec(
                    name=raw["name"],
                    kind=kind,
                    datatype=raw["datatype"],
                    nullable=bool(raw.get("nullable", False)),
                    categories=tuple(str(c) for c in raw["categories"]),
                )
            else:
                raise ValueError(f"input {raw.get('name')!r} has unknown type {kind!r}")
            specs.append(spec)
    except (KeyError, TypeError) as error:
        raise ValueError(f"signature.json: malformed inputs ({error!r})") from error
    if not specs:
        raise ValueError("signature.json: no inputs")
    return tuple(specs)
