"""Run the pipeline here with ``kfp.local`` and summarise it: steps, times, metrics, model.

``SubprocessRunner`` runs each component as a local process in this environment (no Docker);
``DockerRunner`` runs each in the project image with host networking (see
``stroke_mlops.local_docker``). Credentials for an ``s3://`` store come from this process's
environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``): kfp.local
ignores the Kubernetes platform config the cluster runner attaches.
"""

import io
import json
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from pipelines.stroke_pipeline import build_pipeline

RunnerName = Literal["subprocess", "docker"]
# What containers under the docker runner inherit from this process (S3 endpoint, credentials).
FORWARDED_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "S3_USE_HTTPS",
    "STROKE_MLOPS_LOG_LEVEL",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([^']+)'")
_FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")


@dataclass
class StepRecord:
    name: str
    status: str = "RUNNING"
    seconds: float = 0.0
    started: float = field(default=0.0, repr=False)


class StepClock(io.TextIOBase):
    """A stdout tee that times each task from kfp.local's own start/finish lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.steps: dict[str, StepRecord] = {}
        self._pending = ""

    def write(self, text: str) -> int:
        self.stream.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._observe(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def _observe(self, line: str) -> None:
        now = time.perf_counter()
        if match := _STARTED.search(line):
            self.steps[match[1]] = StepRecord(match[1], started=now)
        elif (match := _FINISHED.search(line)) and match[1] in self.steps:
            step = self.steps[match[1]]
            step.status, step.seconds = match[2], round(now - step.started, 2)


@dataclass
class LocalRunSummary:
    succeeded: bool
    seconds: float
    steps: list[StepRecord]
    run_dir: Path | None
    error: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f"Pipeline {'SUCCEEDED' if self.succeeded else 'FAILED'} in {self.seconds:.1f} s"]
        lines += [f"  {s.name:<22} {s.status:<8} {s.seconds:6.2f} s" for s in self.steps]
        if self.error:
            lines.append(f"Error: {self.error}")
        evaluation = self.outputs.get("evaluation")
        if evaluation:
            t, ci = evaluation["test"], evaluation["intervals"]
            lines += [
                "Held-out test set (threshold chosen on out-of-fold train + validation scores):",
                f"  model     {self.outputs.get('selected', '?')}, threshold "
                f"{evaluation['threshold']:.4f}",
                f"  recall    {t['recall']:.3f}  (95% CI {ci['recall']['low']:.3f}–"
                f"{ci['recall']['high']:.3f})",
                f"  precision {t['precision']:.3f}  (95% CI {ci['precision']['low']:.3f}–"
                f"{ci['precision']['high']:.3f})",
                f"  ROC AUC   {t['roc_auc']:.3f}   PR AUC {t['pr_auc']:.3f}   F2 {t['f2']:.3f}",
            ]
        if "gate" in self.outputs:
            lines.append(f"Gate: {self.outputs['gate']}")
        if "published" in self.outputs:
            lines.append(f"Model: {self.outputs['published']} (now production)")
        if "deploy" in self.outputs:
            lines.append(f"KServe: {self.outputs['deploy']}; YAML in {self.outputs['manifests']}")
        if self.run_dir:
            lines.append(f"Artifacts: {self.run_dir}")
        return "\n".join(lines)


def absolute_uri(uri: str) -> str:
    """Local paths become absolute (each component runs in its own working directory)."""
    if "://" in uri:
        return uri
    return str(Path(uri).expanduser().resolve())


def run_locally(
    *,
    data_uri: str,
    store_uri: str,
    arguments: dict[str, Any] | None = None,
    runner: RunnerName = "subprocess",
    pipeline_root: str = "local_outputs",
    stream: TextIO | None = None,
) -> LocalRunSummary:
    """Run the whole pipeline with kfp.local; never raises for a failed step."""
    from kfp import local

    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    # Display names are a UI-only setting: kfp.local says it ignores them, once per task.
    warnings.filterwarnings("ignore", message="Task .* have no effect in the current local runner")
    if runner == "docker":
        from stroke_mlops.image import project_image
        from stroke_mlops.local_docker import host_network_docker_runner, require_local_image

        for name, uri in (("data", data_uri), ("store", store_uri)):
            if "://" not in uri or uri.startswith("file://"):
                raise ValueError(
                    f"the docker runner needs an s3:// or https:// {name} URI (containers see "
                    f"only the pipeline root), got {uri!r}"
                )
        require_local_image(project_image())
        # Containers share the host network, so the S3 endpoint on 127.0.0.1 is reachable.
        environment = {k: v for k, v in os.environ.items() if k in FORWARDED_ENV}
        local.init(runner=host_network_docker_runner(environment), pipeline_root=str(root))
    else:
        # The components name the project image; here they run in this environment instead,
        # which has the same library and pinned dependencies installed: that is the point.
        warnings.filterwarnings(
            "ignore",
            message="You may be attemping to run a task that uses custom",
            category=RuntimeWarning,
        )
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    before = set(root.iterdir())
    clock = StepClock(stream or sys.stdout)
    started = time.perf_counter()
    error: str | None = None
    original_stdout = sys.stdout
    sys.stdout = clock
    try:
        build_pipeline()(
            data_uri=absolute_uri(data_uri), store_uri=absolute_uri(store_uri), **(arguments or {})
        )
    except RuntimeError as failure:  # kfp.local raises RuntimeError when a task fails
        error = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
    finally:
        sys.stdout = original_stdout
    seconds = round(time.perf_counter() - started, 2)
    run_dirs = sorted(set(root.iterdir()) - before)
    run_dir = run_dirs[-1] if run_dirs else None
    return LocalRunSummary(
        succeeded=error is None,
        seconds=seconds,
        steps=list(clock.steps.values()),
        run_dir=run_dir,
        error=error,
        outputs=collect_outputs(run_dir) if run_dir else {},
    )


def collect_outputs(run_dir: Path) -> dict[str, Any]:
    """Read what a person wants from a finished local run's artifact folders."""
    outputs: dict[str, Any] = {}
    evaluation = run_dir / "evaluate" / "evaluation"
    if evaluation.is_file():
        outputs["evaluation"] = json.loads(evaluation.read_text())
    trained = run_dir / "train" / "executor_output.json"
    if trained.is_file():
        model = json.loads(trained.read_text())["artifacts"]["model"]["artifacts"][0]
        outputs["selected"] = model.get("metadata", {}).get("selected")
    gate_report = run_dir / "gate" / "report"
    if gate_report.is_file():
        outputs["gate"] = " ".join(
            line.strip("*- ") for line in gate_report.read_text().splitlines()[2:] if line
        )
    published = run_dir / "publish" / "published_model" / "metadata.json"
    if published.is_file():
        outputs["published"] = json.loads(published.read_text())["version"]
    deployed = run_dir / "deploy" / "executor_output.json"
    if deployed.is_file():
        outputs["deploy"] = json.loads(deployed.read_text())["parameterValues"]["Output"]
        outputs["manifests"] = str(run_dir / "deploy" / "manifests")
    return outputs
