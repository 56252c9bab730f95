"""Realised outcomes of the *other* model versions in a window (a challenger beside production).

:class:`~stroke_mlops.monitoring.window.WindowCounts` judges the production version in full; a
window that also holds requests answered by other versions (a traffic split) gets their
realised recall and precision from here, so each version's recall reaches Prometheus with its
own ``model_version`` label. Only labelled rows are kept, as four counts per version, and each
labelled row is counted once however often its record repeats. At most :data:`MAX_VERSIONS`
versions are tallied (label values stay bounded); records of further versions are counted in
``untallied_records``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stroke_mlops.monitoring.labels import LabelIndex, id_key
from stroke_mlops.monitoring.records import check_accepted_record
from stroke_mlops.monitoring.requests import prediction_row_ids

__all__ = ["MAX_VERSIONS", "LabelledCounts", "VersionOutcomes"]

MAX_VERSIONS = 8


@dataclass
class LabelledCounts:
    """What :func:`stroke_mlops.monitoring.monitor.assess_performance` reads from a window."""

    labelled_rows: int = 0
    labelled_positives: int = 0
    labelled_predicted: int = 0
    labelled_hits: int = 0
    seen: set[int] = field(default_factory=set, repr=False)  # labelled row keys counted


class VersionOutcomes:
    """Labelled counts per model version other than ``skip_version``."""

    def __init__(self, labels: LabelIndex | None, skip_version: str) -> None:
        self.labels = labels if labels is not None and len(labels) else None
        self.skip_version = skip_version
        self.versions: dict[str, LabelledCounts] = {}
        self.untallied_records = 0

    def add(self, record: dict[str, Any]) -> None:
        """Count one record's labelled rows (no-op without labels or for the skipped version)."""
        version = record.get("model_version")
        if self.labels is None or version == self.skip_version or record.get("status") != "ok":
            return
        if not isinstance(version, str) or not version:
            return
        counts = self.versions.get(version)
        if counts is None:
            if len(self.versions) >= MAX_VERSIONS:
                self.untallied_records += 1
                return
            counts = self.versions[version] = LabelledCounts()
        checked = check_accepted_record(record)
        if isinstance(checked, str) or checked.prediction_id is None:
            return
        keys = [id_key(i) for i in prediction_row_ids(checked.prediction_id, checked.count)]
        found = self.labels.lookup(np.fromiter(keys, dtype=np.uint64, count=len(keys)))
        for key, label, decision in zip(keys, found.tolist(), checked.decisions, strict=True):
            if label < 0 or key in counts.seen:
                continue
            counts.seen.add(key)
            counts.labelled_rows += 1
            counts.labelled_positives += label
            counts.labelled_predicted += int(decision == 1)
            counts.labelled_hits += int(label == 1 and decision == 1)
