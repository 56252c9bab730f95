"""kfp.local internals the local runners rely on (kfp 2.17).

``kfp.local`` documents ``init``, ``SubprocessRunner`` and ``DockerRunner`` only. The local
runner also needs, from its modules:

* ``task_dispatcher.run_single_task_implementation``: runs one container task and returns its
  outputs and ``status.Status``; wrapped for the length of a run to time each step and read its
  outputs (:func:`observed_task_runs`).
* ``subprocess_task_handler.run_local_subprocess(full_command, env_vars) -> exit code``:
  replaced so each step's process writes to its own log and dies with the run
  (:func:`replaced_subprocess_runner`).
* ``docker_task_handler.run_docker_container(client, image, command, volumes, **run_args)
  -> exit code``: replaced because 2.17 starts task containers with ``auto_remove=True`` and
  reports a fast-failing container as exit code 0 (:func:`run_docker_tasks_with`);
  ``add_latest_tag_if_not_present`` names the image as kfp does.
* ``executor_input_utils.get_local_task_resource_name``: the task folder's name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from kfp.local import (
    docker_task_handler,
    executor_input_utils,
    status,
    subprocess_task_handler,
    task_dispatcher,
)

from stroke_mlops.compat import require_tested

TESTED = ("2.17",)
VERSION = require_tested("kfp", TESTED, __name__)

TaskRunner = Callable[..., tuple[dict[str, Any], Any]]
SubprocessRunner = Callable[[list[str], "dict[str, str] | None"], int]


@contextlib.contextmanager
def _replaced(module: Any, name: str, replacement: Callable[..., Any]) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)


@contextlib.contextmanager
def observed_task_runs(wrap: Callable[[TaskRunner], TaskRunner]) -> Iterator[None]:
    """Run every container task through ``wrap(kfp's task runner)`` while the block runs; the
    runner takes kfp's keyword arguments (``component_name`` among them) and returns
    ``(outputs, status)``."""
    observed = wrap(task_dispatcher.run_single_task_implementation)
    with _replaced(task_dispatcher, "run_single_task_implementation", observed):
        yield


@contextlib.contextmanager
def replaced_subprocess_runner(
    make: Callable[[SubprocessRunner], SubprocessRunner],
) -> Iterator[None]:
    """Start every SubprocessRunner task process with ``make(kfp's own starter)``."""
    replacement = make(subprocess_task_handler.run_local_subprocess)
    with _replaced(subprocess_task_handler, "run_local_subprocess", replacement):
        yield


def run_docker_tasks_with(run_container: Callable[..., int]) -> None:
    """Make DockerRunner start every task container with ``run_container`` (kfp's contract:
    ``(client, image, command, volumes, **container_run_args) -> exit code``)."""
    docker_task_handler.run_docker_container = run_container


def image_with_tag(image: str) -> str:
    """``image`` with ``:latest`` added when it has no tag, as kfp names it."""
    return str(docker_task_handler.add_latest_tag_if_not_present(image=image))


def task_name(component_name: str) -> str:
    """The task's resource name (its folder) for a component name of the pipeline spec."""
    return str(executor_input_utils.get_local_task_resource_name(component_name))


def succeeded(task_status: Any) -> bool:
    """Whether a task status returned by the task runner is SUCCESS."""
    return bool(task_status == status.Status.SUCCESS)
