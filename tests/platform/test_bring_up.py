"""The control plane itself: upstream builds on 127.0.0.1, KServe's webhooks registered by URL,
a bounded bring-up that names what did not come up and leaves nothing running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.platform.conftest import LivePlatform
from tools.local_platform import control_plane, processes

pytestmark = pytest.mark.platform


def test_every_component_runs_from_tools_platform_bin(
    live_platform: LivePlatform, api: Any
) -> None:
    from kubernetes.client import VersionApi

    alive = processes.running(live_platform.layout.directory)
    assert sorted(entry.name for entry in alive) == sorted(control_plane.BINARIES)
    for entry in alive:
        assert Path(entry.binary).parent == control_plane.BIN_DIR
    assert VersionApi(api).get_code().git_version == "v1.34.4"


def test_kserve_webhooks_are_registered_by_url_on_loopback(
    live_platform: LivePlatform, api: Any
) -> None:
    from kubernetes.client import AdmissionregistrationV1Api

    admission = AdmissionregistrationV1Api(api)
    mutating = admission.read_mutating_webhook_configuration("inferenceservice.serving.kserve.io")
    names = {w.name: w for w in mutating.webhooks}
    pod_mutator = names["inferenceservice.kserve-webhook-server.pod-mutator"]
    assert pod_mutator.client_config.url.startswith("https://127.0.0.1:")
    assert pod_mutator.client_config.url.endswith("/mutate-pods")
    assert pod_mutator.client_config.service is None
    assert pod_mutator.reinvocation_policy == "IfNeeded"  # KServe's own settings kept


def test_a_bring_up_that_runs_out_of_time_names_the_component_and_stops_everything(
    tmp_path: Path,
) -> None:
    layout = control_plane.Layout(tmp_path / "platform")
    with pytest.raises(processes.ComponentNotReadyError) as failure:
        control_plane.up(layout, timeout=0.05, log=lambda _line: None)
    # etcd usually; on a fast start etcd is ready within the budget and the next one runs out
    message = str(failure.value)
    component = message.split(" did not become ready", 1)[0]
    assert component in control_plane.BINARIES, message
    assert f"{component}.log" in message
    assert processes.running(layout.directory) == []
