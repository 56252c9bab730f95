"""Run the pipeline here with ``kfp.local`` and summarise it: steps, times, metrics, model.

``SubprocessRunner`` runs each component as a local process in this environment (no Docker);
``DockerRunner`` runs each in the project image with host networking (see
``stroke_mlops.local_docker``). Credentials for an ``s3://`` store come from this process's
environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``): kfp.local
ignores the Kubernetes platform config the cluster runner attaches.

Each run has a folder of its own, ``<pipeline root>/run-<UTC time>-<pid>/``::

    kfp.log              what kfp.local prints (executor JSON, outputs), never on the screen
    logs/<step>.log      each step's own output (stdout and stderr)
    stroke-mlops-<...>/  kfp.local's task folders: each step's artifacts and executor_output.json

Progress is not scraped from that text: kfp.local runs every container task through one
function that returns the task's outputs (artifacts with their metadata, parameters) and its
status. This module wraps it for the length of a run to time each step and read its key figure,
and replaces the function that starts a SubprocessRunner task's process, so each step's process
writes to its own log and dies with the run (``stroke_mlops.step_processes``). Both are kfp.local
internals, reached only through ``stroke_mlops.compat.kfp_local``.
"""

import contextlib
import datetime as dt
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from pipelines.stroke_pipeline import build_pipeline
from stroke_mlops import step_processes
from stroke_mlops.run_progress import (
    FAILURE,
    RUNNING,
    SUCCESS,
    RunProgress,
    StepRecord,
    error_line,
    read_log_tail,
)

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
# A run here takes minutes: scratch of a run whose runner is gone, or older than an hour, and a
# folder store's unfinished publish older than an hour are leftovers a later run removes.
STALE_AFTER_S = 3600
KFP_LOG = "kfp.log"
LOGS_DIR = "logs"
# Key files named by these go into the pipeline root, the one host folder containers see.
SIGNING_KEY_ENV = ("STROKE_MLOPS_SIGNING_KEY", "STROKE_MLOPS_SIGNING_PUBLIC_KEY")


@dataclass
class LocalRunSummary:
    succeeded: bool
    seconds: float
    steps: list[StepRecord]
    run_dir: Path | None  # this run's folder: kfp.log, logs/, the task folders
    error: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    artifacts_dir: Path | None = None  # kfp.local's folder of task folders, inside run_dir

    def failed_steps(self) -> list[StepRecord]:
        return [step for step in self.steps if step.status != SUCCESS]

    def render(self) -> str:
        """The summary after the step lines: failures with their log tails, then the results."""
        lines = [f"Pipeline {'SUCCEEDED' if self.succeeded else 'FAILED'} in {self.seconds:.1f} s"]
        for step in self.failed_steps():
            tail = read_log_tail(step.log_path) if step.log_path else []
            lines.append(f"Step {step.name} {step.status}: {error_line(tail) or 'see its log'}")
            if tail:
                lines.append(f"  last lines of {step.log_path}:")
                lines += [f"    {line}" for line in tail]
        if self.error and not self.failed_steps():
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
            promoted = self.outputs.get("promoted") == self.outputs["published"]
            lines.append(
                f"Model: {self.outputs['published']}"
                + (" (now production)" if promoted else " (published, not promoted)")
            )
        if "deploy" in self.outputs:
            lines.append(f"KServe: {self.outputs['deploy']}; YAML in {self.outputs['manifests']}")
        if self.run_dir:
            lines.append(f"Run folder (artifacts, {KFP_LOG}, {LOGS_DIR}/): {self.run_dir}")
        return "\n".join(lines)


def absolute_uri(uri: str) -> str:
    """Local paths become absolute (each component runs in its own working directory)."""
    if "://" in uri:
        return uri
    return str(Path(uri).expanduser().resolve())


def new_run_dir(pipeline_root: Path) -> Path:
    """A folder no other run uses: UTC time to the microsecond and this process's id."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-%f")
    run_dir = pipeline_root / f"run-{stamp}-{os.getpid()}"
    run_dir.mkdir(parents=True)
    return run_dir


# --------------------------------------------------------------------------- key figures


def _metadata(outputs: dict[str, Any], name: str) -> dict[str, Any]:
    artifact = outputs.get(name)
    return dict(getattr(artifact, "metadata", None) or {})


def _path(outputs: dict[str, Any], name: str) -> Path | None:
    artifact = outputs.get(name)
    path = getattr(artifact, "path", None)
    return Path(path) if path else None


def key_figure(step: str, outputs: dict[str, Any]) -> str:
    """The one figure a person wants from a finished step, read from its kfp outputs (empty
    when they are not what this runner expects: a progress line never stops a run)."""
    try:
        return _key_figure(step, outputs)
    except (TypeError, ValueError, KeyError):
        return ""


def _key_figure(step: str, outputs: dict[str, Any]) -> str:
    if step == "ingest":
        return f"{int(_metadata(outputs, 'raw_data').get('bytes', 0)):,} bytes"
    if step == "validate-data":
        report = _metadata(outputs, "report")
        verdict = "contract holds" if outputs.get("passed") else "contract FAILED"
        return (
            f"{verdict}: {int(report.get('passed', 0))} of {int(report.get('expectations', 0))} "
            f"expectations met on {int(report.get('rows', 0)):,} rows"
        )
    if step == "preprocess":
        parts = ("train_data", "validation_data", "test_data")
        rows = [int(_metadata(outputs, part).get("rows", 0)) for part in parts]
        return "rows train {:,} / validation {:,} / test {:,}".format(*rows)
    if step == "train":
        return f"selected {_metadata(outputs, 'model').get('selected', '?')}"
    if step == "evaluate":
        metrics = _metadata(outputs, "metrics")
        return (
            f"test recall {metrics.get('test_recall', float('nan')):.3f}, precision "
            f"{metrics.get('test_precision', float('nan')):.3f}, ROC AUC "
            f"{metrics.get('test_roc_auc', float('nan')):.3f}"
        )
    if step == "gate":
        return "BLESSED" if outputs.get("Output") else "NOT BLESSED (nothing published)"
    if step == "publish":
        return f"version {outputs.get('version', '?')}"
    if step == "infra-validate":
        report = _metadata(outputs, "report")
        return f"served and answered; ready after {report.get('startup_seconds', 0):.1f} s"
    if step == "promote":
        return f"production -> {outputs.get('Output', '?')}"
    if step == "deploy":
        return str(outputs.get("Output", "")).split(":")[0]
    return ""


def collect_outputs(task_outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What the summary shows, from the outputs kfp.local returned for each task."""
    outputs: dict[str, Any] = {}
    evaluated = task_outputs.get("evaluate", {})
    if (evaluation := _path(evaluated, "evaluation")) and evaluation.is_file():
        outputs["evaluation"] = json.loads(evaluation.read_text())
    if "train" in task_outputs:
        outputs["selected"] = _metadata(task_outputs["train"], "model").get("selected")
    if "gate" in task_outputs:
        outputs["gate"] = str(_metadata(task_outputs["gate"], "report").get("reasons", ""))
    if "publish" in task_outputs:
        outputs["published"] = task_outputs["publish"].get("version")
    if "promote" in task_outputs:
        outputs["promoted"] = task_outputs["promote"].get("Output")
    if "deploy" in task_outputs:
        outputs["deploy"] = task_outputs["deploy"].get("Output")
        outputs["manifests"] = str(_path(task_outputs["deploy"], "manifests"))
    return outputs


# --------------------------------------------------------------------------- kfp.local hooks


@contextlib.contextmanager
def observed_tasks(
    run_dir: Path,
    progress: RunProgress,
    task_outputs: dict[str, dict[str, Any]],
    *,
    echo_step_logs: bool = False,
) -> Iterator[None]:
    """Time each kfp.local task, keep its outputs, and give its process a log and a scratch;
    ``echo_step_logs`` also writes each step's log, once it ends, to stdout (``--verbose``)."""
    from stroke_mlops.compat import kfp_local

    logs = run_dir / LOGS_DIR
    logs.mkdir(exist_ok=True)

    def observe(run_task: kfp_local.TaskRunner) -> kfp_local.TaskRunner:
        def run_observed_task(**kwargs: Any) -> tuple[dict[str, Any], Any]:
            name = kfp_local.task_name(kwargs["component_name"])
            log_path = logs / f"{name}.log"
            progress.start(name, log_path)
            result: tuple[dict[str, Any], Any] | None = None
            try:
                with (
                    log_path.open("a", encoding="utf-8") as log,
                    step_processes.step_scratch(run_dir, name) as scratch,
                    step_processes.running_step(step_processes.StepContext(name, log, scratch)),
                ):
                    result = run_task(**kwargs)
                return result
            finally:
                if echo_step_logs:
                    print(f"----- {log_path}\n{log_path.read_text(errors='replace')}", flush=True)
                succeeded = result is not None and kfp_local.succeeded(result[1])
                outputs = result[0] if result is not None else {}
                if succeeded:
                    task_outputs[name] = outputs
                progress.finish(
                    name,
                    SUCCESS if succeeded else FAILURE,
                    key_figure(name, outputs) if succeeded else "",
                )

        return run_observed_task

    def in_step_process(original: kfp_local.SubprocessRunner) -> kfp_local.SubprocessRunner:
        def run_step_subprocess(
            full_command: list[str], env_vars: dict[str, str] | None = None
        ) -> int:
            step = step_processes.current_step()
            if step is None:  # not one of this run's tasks: kfp's own behaviour, to kfp.log
                return int(original(full_command, env_vars))
            return step_processes.run_step_process(
                full_command,
                env={**os.environ, **(env_vars or {})},
                scratch=step.scratch,
                log=step.log,
            )

        return run_step_subprocess

    with (
        kfp_local.observed_task_runs(observe),
        kfp_local.replaced_subprocess_runner(in_step_process),
    ):
        yield


class _Tee:
    """Write to several text streams (``--verbose``: kfp's log to its file and the screen)."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def _root_logging_to(output: TextIO) -> Iterator[None]:
    """kfp.local logs through the root logger (workspace clean-up, task errors): to its log."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    handler = logging.StreamHandler(output)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers[:] = [handler]
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _clear_store_leftovers(store_uri: str) -> None:
    from stroke_mlops.registry.store import open_store

    with contextlib.suppress(Exception):  # a store that cannot be opened fails in its step
        open_store(store_uri).clear_stale_scratch(older_than_s=STALE_AFTER_S)


def run_locally(
    *,
    data_uri: str,
    store_uri: str,
    arguments: dict[str, Any] | None = None,
    runner: RunnerName = "subprocess",
    pipeline_root: str = "local_outputs",
    stream: TextIO | None = None,
    verbose: bool = False,
    live: bool | None = None,
) -> LocalRunSummary:
    """Run the whole pipeline with kfp.local in a run folder of its own; never raises for a
    failed step. Progress goes to ``stream`` (stdout); kfp's own output to ``kfp.log`` (and to
    ``stream`` too with ``verbose``)."""
    return execute_locally(
        build_pipeline(),
        {
            "data_uri": absolute_uri(data_uri),
            "store_uri": absolute_uri(store_uri),
            **(arguments or {}),
        },
        uris={"data": data_uri, "store": store_uri},
        runner=runner,
        pipeline_root=pipeline_root,
        stream=stream,
        verbose=verbose,
        live=live,
    )


def execute_locally(
    pipeline: Callable[..., Any],
    arguments: dict[str, Any],
    *,
    uris: dict[str, str],
    runner: RunnerName = "subprocess",
    pipeline_root: str = "local_outputs",
    stream: TextIO | None = None,
    verbose: bool = False,
    live: bool | None = None,
) -> LocalRunSummary:
    """Run ``pipeline(**arguments)`` with kfp.local (see run_locally); ``uris`` (name → URI,
    "store" among them) are the locations the docker runner's containers must reach."""
    from kfp import local

    store_uri = uris["store"]

    stream = stream or sys.stdout
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    run_dir = new_run_dir(root)
    step_processes.mark_run_folder(run_dir)
    step_processes.clear_stale_runs(root, older_than_s=STALE_AFTER_S)
    if "://" not in store_uri or store_uri.startswith("file://"):
        _clear_store_leftovers(absolute_uri(store_uri))
    # Display names are a UI-only setting: kfp.local says it ignores them, once per task.
    warnings.filterwarnings("ignore", message="Task .* have no effect in the current local runner")
    workspace = str(run_dir / step_processes.WORKSPACE_DIR)
    if runner == "docker":
        from stroke_mlops.image import project_image
        from stroke_mlops.local_docker import host_network_docker_runner, require_local_image

        for name, uri in uris.items():
            if "://" not in uri or uri.startswith("file://"):
                raise ValueError(
                    f"the docker runner needs an s3:// or https:// {name} URI (containers see "
                    f"only the pipeline root), got {uri!r}"
                )
        require_local_image(project_image())
        # Containers share the host network, so the S3 endpoint on 127.0.0.1 is reachable.
        environment = {k: v for k, v in os.environ.items() if k in FORWARDED_ENV}
        environment.update(_signing_keys_for_containers(run_dir))
        local.init(
            runner=host_network_docker_runner(environment),
            pipeline_root=str(run_dir),
            workspace_root=workspace,
        )
    else:
        # The components name the project image; here they run in this environment instead,
        # which has the same library and pinned dependencies installed: that is the point.
        warnings.filterwarnings(
            "ignore",
            message="You may be attemping to run a task that uses custom",
            category=RuntimeWarning,
        )
        local.init(
            runner=local.SubprocessRunner(use_venv=False),
            pipeline_root=str(run_dir),
            workspace_root=workspace,
        )
    task_outputs: dict[str, dict[str, Any]] = {}
    started = time.perf_counter()
    error: str | None = None
    with (
        (run_dir / KFP_LOG).open("w", encoding="utf-8") as kfp_log,
        RunProgress(stream, live=live) as progress,
    ):
        kfp_output: TextIO = _Tee(kfp_log, stream) if verbose else kfp_log  # type: ignore[assignment]
        original_stdout = sys.stdout
        sys.stdout = kfp_output
        try:
            with (
                observed_tasks(run_dir, progress, task_outputs, echo_step_logs=verbose),
                _root_logging_to(kfp_output),
            ):
                pipeline(**arguments)
        except RuntimeError as failure:  # kfp.local raises RuntimeError when a task fails
            error = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
        finally:
            sys.stdout = original_stdout
            step_processes.clear_run_scratch(run_dir)
    seconds = round(time.perf_counter() - started, 2)
    steps = list(progress.steps.values())
    for step in steps:  # a step still running here was cut short by the failure of another
        if step.status == RUNNING:
            step.status = FAILURE
    return LocalRunSummary(
        succeeded=error is None and all(step.status == SUCCESS for step in steps),
        seconds=seconds,
        steps=steps,
        run_dir=run_dir,
        error=_plain(error),
        outputs=collect_outputs(task_outputs),
        artifacts_dir=next(
            (p for p in run_dir.iterdir() if p.is_dir() and p.name.startswith("stroke-mlops-")),
            None,
        ),
    )


def _plain(text: str | None) -> str | None:
    """kfp colours task names in its messages; the summary is plain text."""
    if text is None:
        return None
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _signing_keys_for_containers(root: Path) -> dict[str, str]:
    """Copy the signing keys into the pipeline root (mounted at the same path); their env."""
    import shutil

    keys_dir = root / ".signing-keys"
    environment: dict[str, str] = {}
    for variable in SIGNING_KEY_ENV:
        if source := os.environ.get(variable):
            keys_dir.mkdir(mode=0o700, exist_ok=True)
            target = keys_dir / Path(source).name
            shutil.copyfile(source, target)
            target.chmod(0o600)  # tasks run as this user (local_docker: run_as_host_user)
            environment[variable] = str(target)
    return environment
