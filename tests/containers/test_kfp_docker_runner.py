"""A lightweight component over the project image, run by kfp.local.DockerRunner on host networking.

No ``from __future__ import annotations`` here: KFP reads the components' annotations at runtime.
"""

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kfp import dsl, local
from kfp.dsl import Artifact, Output

from stroke_mlops.image import project_image
from stroke_mlops.local_docker import (
    LocalImageMissingError,
    host_network_docker_runner,
    require_local_image,
)

pytestmark = pytest.mark.containers

HOST_REPLY = b"reached the host's 127.0.0.1"


@dsl.component(base_image=project_image(), install_kfp_package=False)
def fetch_from_host(url: str, body: Output[Artifact]) -> str:
    """Fetch ``url`` into ``body``; return the uid, $PROBE and the installed library version."""
    import os
    import urllib.request
    from pathlib import Path

    import stroke_mlops

    with urllib.request.urlopen(url, timeout=10) as response:
        Path(body.path).write_bytes(response.read())
    return f"{os.getuid()} {os.environ.get('PROBE')} {stroke_mlops.__version__}"


@dsl.component(base_image=project_image(), install_kfp_package=False)
def fail_loudly() -> str:
    raise ValueError("deliberate failure")


class _Reply(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(HOST_REPLY)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def host_url() -> Iterator[str]:
    """An HTTP server on the host's 127.0.0.1 only."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Reply)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def docker_session(image: str, tmp_path: Path) -> Path:
    """kfp.local on the host-network runner; returns the pipeline root."""
    require_local_image(image)
    pipeline_root = tmp_path / "pipeline-root"
    pipeline_root.mkdir()
    local.init(
        runner=host_network_docker_runner({"PROBE": "from-runner"}),
        pipeline_root=str(pipeline_root),
    )
    return pipeline_root


def test_component_reaches_the_host_and_writes_outputs_as_the_host_user(
    docker_session: Path, host_url: str
) -> None:
    from stroke_mlops import __version__

    task = fetch_from_host(url=host_url)

    uid, probe, version = task.outputs["Output"].split()
    assert (int(uid), probe, version) == (os.getuid(), "from-runner", __version__)
    body_path = Path(task.outputs["body"].path)
    assert body_path.is_relative_to(docker_session)
    assert body_path.read_bytes() == HOST_REPLY
    assert body_path.stat().st_uid == os.getuid()


def test_a_failing_component_fails_the_local_run(docker_session: Path) -> None:
    with pytest.raises(RuntimeError, match="FAILURE"):
        fail_loudly()


def test_a_missing_image_is_named_before_kfp_tries_to_pull_it(image: str) -> None:
    with pytest.raises(LocalImageMissingError, match="make image"):
        require_local_image("stroke-mlops:no-such-version")
