"""Run the pipeline's containers on this machine with ``kfp.local.DockerRunner``.

What ``DockerRunner`` (kfp 2.17) does, and what this module adds:

* It bind-mounts the local pipeline root at the same absolute path (and kfp's temporary workspace
  at ``/kfp-workspace``) and passes any ``docker`` SDK ``containers.run`` argument through, so
  ``network_mode="host"`` is all host networking needs: components then reach services on the
  host's 127.0.0.1 (the S3 stand-in, a local MinIO).
* It runs the container as the image's user (uid 1000 in ours), which cannot write a pipeline root
  the host user created (mode 0755). :func:`host_network_docker_runner` runs tasks as the host's
  uid:gid instead, so outputs land owned by you, and points ``HOME`` at ``/tmp`` because that uid
  may have no home directory in the image.
* It pulls any image that is not in the local engine. The project image is built locally and
  exists in no registry here: :func:`require_local_image` says so plainly before a run.
* ``environment`` given to the runner is merged over each task's own env (the runner wins).

Local runs only: on a cluster the platform config (kfp-kubernetes) wires the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # kfp and docker stay lazy: the CLI imports this module at start-up
    from kfp.local import DockerRunner

CONTAINER_HOME = "/tmp"


class LocalImageMissingError(RuntimeError):
    """The image is not in the local Docker engine (kfp would try to pull it)."""


def host_user() -> str:
    """``uid:gid`` of this process, the identity local task containers should run as."""
    return f"{os.getuid()}:{os.getgid()}"


def host_network_docker_runner(
    environment: Mapping[str, str] | None = None,
    *,
    run_as_host_user: bool = True,
    **container_run_args: Any,
) -> DockerRunner:
    """A ``kfp.local.DockerRunner`` whose containers share the host's network.

    ``environment`` is added to every task's environment (e.g. ``AWS_ENDPOINT_URL`` and the
    credentials of a local S3 endpoint); ``run_as_host_user`` runs tasks as this process's
    uid:gid so they can write the pipeline root. Other keyword arguments go to
    ``docker.containers.run`` unchanged (kfp rejects the ones it does not support).
    """
    from kfp import local

    env = {"HOME": CONTAINER_HOME} if run_as_host_user else {}
    env.update(environment or {})
    run_args: dict[str, Any] = {"network_mode": "host", **container_run_args}
    if run_as_host_user:
        run_args.setdefault("user", host_user())
    if env:
        run_args["environment"] = env
    _report_real_exit_codes()
    return local.DockerRunner(**run_args)


def _report_real_exit_codes() -> None:
    """Make kfp.local read each task container's exit code before the container is removed.

    kfp 2.17 starts task containers with ``auto_remove=True`` (not overridable) and, when a
    container that failed quickly is already gone at ``wait()``, reports exit code 0: a failed
    step would pass (seen here with a component that raises at once). The replacement below
    keeps the container until its status is read, then removes it.
    """
    from stroke_mlops.compat.kfp_local import run_docker_tasks_with

    run_docker_tasks_with(run_task_container)


def run_task_container(
    client: Any, image: str, command: list[str], volumes: dict[str, Any], **container_run_args: Any
) -> int:
    """kfp's ``run_docker_container`` contract: stream the logs, return the exit status.

    Inside a local run (``step_processes.current_step()``) the logs go to the step's log file,
    ``TMPDIR`` is the step's scratch folder (under the mounted pipeline root), and a watchdog
    removes the container if the run dies before it ends.
    """
    from stroke_mlops.compat.kfp_local import image_with_tag
    from stroke_mlops.step_processes import StepWatchdog, current_step

    step = current_step()
    image = image_with_tag(image)
    require_local_image(image)
    if step is not None:
        environment = dict(container_run_args.get("environment") or {})
        container_run_args["environment"] = {**environment, "TMPDIR": str(step.scratch)}
    watchdog = StepWatchdog() if step is not None else None
    try:
        container = client.containers.run(
            image=image,
            command=command,
            detach=True,
            stdout=True,
            stderr=True,
            volumes=volumes,
            auto_remove=False,
            **container_run_args,
        )
        try:
            if watchdog is not None:
                watchdog.watch_container(container.id)
            for line in container.logs(stream=True):
                text = line.decode(errors="replace")
                if step is not None:
                    step.log.write(text)
                else:
                    print(text, end="")
            return int(container.wait()["StatusCode"])
        finally:
            container.remove(force=True)
    finally:
        if watchdog is not None:
            watchdog.release()


def require_local_image(image: str) -> None:
    """Raise :class:`LocalImageMissingError` unless ``image`` is in the local Docker engine.

    ``image`` without a tag means ``:latest``, as for kfp and docker.
    """
    import docker
    from docker.errors import DockerException, ImageNotFound

    reference = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
    try:
        client = docker.from_env()
    except DockerException as error:
        raise LocalImageMissingError(
            f"no Docker engine answers ({error}); start one (make docker-engine)"
        ) from error
    try:
        client.images.get(reference)
    except ImageNotFound as error:
        raise LocalImageMissingError(
            f"image {reference} is not in the local Docker engine and cannot be pulled here; "
            "build it with `make image`"
        ) from error
    finally:
        client.close()
