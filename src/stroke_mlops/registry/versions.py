"""Operating the versions of a model store: list them, show one, roll production back.

Every read goes through ``ModelStore.download_version`` (which verifies each file's sha256), and
a rollback is the store's own ``promote``: one atomic write of the production pointer.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stroke_mlops.registry.model_dir import METADATA_FILE, MODEL_CARD_FILE
from stroke_mlops.registry.store import ModelStore, ProductionPointer, StoreError

TEST_METRICS = ("recall", "precision", "roc_auc", "pr_auc")


class _Read:
    """describe_versions(production=READ): read the pointer from the store."""


READ = _Read()


@dataclass(frozen=True)
class VersionSummary:
    """One published version as an operator sees it."""

    version: str
    uri: str
    created_at: str
    selected_model: str
    threshold: float | None
    test_metrics: dict[str, float]
    gate: str  # the first line of the model card's "Gate" section, "" when it has none
    is_production: bool
    metadata: dict[str, Any]
    model_card: str


def _gate_line(model_card: str) -> str:
    lines = model_card.splitlines()
    if "## Gate" not in lines:
        return ""
    after = lines[lines.index("## Gate") + 1 :]
    return next((line.strip() for line in after if line.strip()), "")


def describe_version(
    store: ModelStore, version: str, *, production: ProductionPointer | None = None
) -> VersionSummary:
    """Download and verify ``version``; summarize its metadata and model card."""
    with tempfile.TemporaryDirectory(prefix="stroke-version-") as scratch:
        local = store.download_version(version, Path(scratch) / version)
        metadata = json.loads((local / METADATA_FILE).read_text())
        card_path = local / MODEL_CARD_FILE
        model_card = card_path.read_text() if card_path.is_file() else ""
    test = (metadata.get("metrics") or {}).get("test") or {}
    threshold = metadata.get("threshold")
    return VersionSummary(
        version=version,
        uri=store.version_uri(version),
        created_at=str(metadata.get("created_at", "")),
        selected_model=str(metadata.get("selected_model", "")),
        threshold=float(threshold) if isinstance(threshold, int | float) else None,
        test_metrics={
            k: float(test[k]) for k in TEST_METRICS if isinstance(test.get(k), int | float)
        },
        gate=_gate_line(model_card),
        is_production=production is not None and production.version == version,
        metadata=metadata,
        model_card=model_card,
    )


def describe_versions(
    store: ModelStore, *, production: ProductionPointer | _Read | None = READ
) -> list[VersionSummary]:
    """Every complete version, oldest first (version names sort by publication time).

    ``production`` is the pointer to mark (read from the store when not given)."""
    if isinstance(production, _Read):
        production = store.production()
    return [describe_version(store, v, production=production) for v in store.list_versions()]


def render_table(summaries: list[VersionSummary]) -> str:
    """A fixed-width table: production marked with ``*``."""
    header = ("", "VERSION", "MODEL", "RECALL", "PRECISION", "ROC_AUC", "THRESHOLD", "GATE")
    rows: list[tuple[str, ...]] = [header]
    for s in summaries:
        metric = s.test_metrics.get
        rows.append(
            (
                "*" if s.is_production else "",
                s.version,
                s.selected_model or "-",
                *(f"{metric(k):.3f}" if metric(k) is not None else "-" for k in TEST_METRICS[:3]),
                f"{s.threshold:.4f}" if s.threshold is not None else "-",
                s.gate or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ).rstrip()


def rollback(
    store: ModelStore, version: str, *, expected: str | None = None
) -> tuple[ProductionPointer, str]:
    """Point production back at ``version``, an earlier complete version; returns (new pointer,
    the version that was in production). With ``expected``, the pointer moves only while
    production is still that version (the one a comparison found worse): compare-and-swap.

    Refused (StoreError) when nothing is in production, when ``version`` is already production
    or is not older than it (use promote to move forward), or when it is missing or fails its
    checksums. The move itself is ``store.promote``: one atomic pointer write.
    """
    current = store.production()
    if current is None:
        raise StoreError(f"{store.uri}: nothing is in production, so there is nothing to roll back")
    if version == current.version:
        raise StoreError(f"{version} is already in production (since {current.promoted_at})")
    versions = store.list_versions()
    if version not in versions:
        known = ", ".join(versions) or "none"
        raise StoreError(f"{store.uri}: no complete version {version!r}; versions: {known}")
    if version > current.version:
        raise StoreError(
            f"{version} is newer than production {current.version}: a rollback goes back to an "
            "earlier version (a newer one goes through the pipeline's gate and promote)"
        )
    if expected is None:
        return store.promote(version), current.version
    return store.promote(version, expected=expected), current.version
