"""The operations view's facts: which version serves, every version's gate decision, and the
latest monitor report with its realised recall (read from the store and the reports folder)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from stroke_mlops.monitoring.monitor import REPORT_FILE, SUMMARY_FILE
from stroke_mlops.monitoring.summary import MonitorSummary
from stroke_mlops.registry.store import ModelStore
from stroke_mlops.registry.versions import VersionSummary, describe_versions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorView:
    summary: MonitorSummary
    report: Path | None  # report.html beside summary.json, when there is one


@dataclass(frozen=True)
class Operations:
    production: VersionSummary | None
    versions: tuple[VersionSummary, ...]  # newest first
    monitor: MonitorView | None
    monitor_problem: str = ""  # why no report is shown, when one was expected


def read_operations(store: ModelStore, reports: Path | None) -> Operations:
    versions = describe_versions(store)
    production = next((v for v in versions if v.is_production), None)
    monitor, problem = latest_monitor(reports) if reports is not None else (None, "")
    return Operations(production, tuple(reversed(versions)), monitor, problem)


def latest_monitor(reports: Path) -> tuple[MonitorView | None, str]:
    """The newest ``summary.json`` under ``reports`` (by its ``generated_at``)."""
    if not reports.is_dir():
        return None, f"{reports} is not a folder"
    found: list[tuple[str, Path, MonitorSummary]] = []
    for path in reports.rglob(SUMMARY_FILE):
        try:
            summary = MonitorSummary.from_json(path.read_text())
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("skipping unreadable monitor summary %s: %s", path, error)
            continue
        found.append((summary.generated_at, path, summary))
    if not found:
        return None, f"no monitor report ({SUMMARY_FILE}) under {reports} yet"
    _, path, summary = max(found, key=lambda item: item[0])
    report = path.parent / REPORT_FILE
    return MonitorView(summary, report if report.is_file() else None), ""
