"""KServe's InferenceGraph router (``cmd/router`` of KServe v0.20.0, built unmodified by
``make platform-tools`` as tools/platform/bin/kserve-router) as a local process.

What the router does, read from its source at v0.20.0 (``cmd/router/main.go``):

* It takes the graph only as ``--graph-json`` (the InferenceGraph's ``spec`` as JSON, with each
  step's ``serviceUrl`` filled in by KServe's controller) and the request headers to forward
  only from ``$PROPAGATE_HEADERS`` (comma-separated regular expressions; KServe's shipped
  ``inferenceservice-config`` sets none, so nothing but ``Content-Type: application/json`` is
  sent on).
* It listens on ``:8080``, fixed (``constants.RouterPort``; no flag or variable changes it), and
  answers ``GET /readyz``. Every other path and method is routed from the ``root`` node: the
  request body is POSTed to the chosen step's ``serviceUrl`` as is (the client's path is not
  used).
* A ``Splitter`` draws ``crypto/rand`` in [0, 100) per request and takes the first step whose
  running weight sum exceeds it.
* The answer is the step's status code and body; ``Content-Type: application/json`` is set when
  the body is JSON. **No response header of the predictor is passed back** (so the version and
  the prediction id must travel in the body).
* On SIGTERM it fails readiness and sleeps 30 s before shutting down (for Kubernetes to take the
  pod out of its endpoints); locally it is stopped with SIGKILL, it holds no state.

Because the port is fixed, each router runs in its own network namespace, as it would in its pod:
a veth pair joins it to this host, the router at ``router_ip``:8080 and the host (where the
predictors listen) at ``host_ip``. That needs root (CAP_NET_ADMIN), ``unshare``, ``nsenter`` and
``ip`` (iproute2); :func:`unavailable_reason` says what is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
ROUTER_BIN = REPO_ROOT / "tools" / "platform" / "bin" / "kserve-router"
ROUTER_PORT = 8080  # KServe v0.20.0 constants.RouterPort: not configurable
PROPAGATE_HEADERS_ENV = "PROPAGATE_HEADERS"  # constants.RouterHeadersPropagateEnvVar
_PR_SET_PDEATHSIG = 1


class RouterError(RuntimeError):
    """The router or its network could not be set up; the message says why."""


def unavailable_reason() -> str | None:
    """Why a router cannot run here, or None."""
    if not ROUTER_BIN.is_file():
        return f"{ROUTER_BIN.relative_to(REPO_ROOT)} is not built: run 'make platform-tools'"
    missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (util-linux, iproute2)"
    if os.geteuid() != 0:
        return (
            "KServe's router listens on the fixed port 8080, so it runs in its own network "
            "namespace, which needs root (CAP_NET_ADMIN)"
        )
    return None


def _die_with_parent() -> None:
    """In the child: be killed when the process that started us dies (no orphan namespaces)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RouterError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout}")


def _used_addresses() -> str:
    return subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout


class RouterNetwork:
    """A network namespace joined to this host by a veth pair (a pod's network, locally).

    The pair gets a random /30 from 100.64.0.0/10 (shared address space, not routed here):
    ``host_ip`` on this side, ``router_ip`` inside. Closing it deletes the pair and ends the
    namespace's holder process.
    """

    def __init__(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise RouterError(reason)
        used = _used_addresses()
        for _ in range(100):
            block = random.randrange(1 << 20) * 4  # /30 blocks of 100.64.0.0/10 (22 bits)
            base = (100 << 24) | (64 << 16) | block
            host, inside = base + 1, base + 2
            self.host_ip, self.router_ip = (_dotted(host), _dotted(inside))
            if f" {self.host_ip}/" not in used and f" {self.router_ip}/" not in used:
                break
        suffix = f"{os.getpid() % 100000}{random.randrange(1000):03d}"
        self.host_link, self.inside_link = f"smh{suffix}", f"smr{suffix}"
        self._holder = subprocess.Popen(
            ["unshare", "--net", "sleep", "infinity"],
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        self.namespace = f"/proc/{self._holder.pid}/ns/net"
        try:
            self._wait_for_namespace()
            _run("ip", "link", "add", self.host_link, "type", "veth", "peer", "name",
                 self.inside_link, "netns", str(self._holder.pid))  # fmt: skip
            _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_link)
            _run("ip", "link", "set", self.host_link, "up")
            for command in (
                ("ip", "addr", "add", f"{self.router_ip}/30", "dev", self.inside_link),
                ("ip", "link", "set", self.inside_link, "up"),
                ("ip", "link", "set", "lo", "up"),
                # Any address of this host is reachable from inside (the weak host model).
                ("ip", "route", "add", "default", "via", self.host_ip),
            ):
                _run("nsenter", f"--net={self.namespace}", *command)
        except BaseException:
            self.close()
            raise

    def _wait_for_namespace(self) -> None:
        own = Path("/proc/self/ns/net").readlink()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if Path(self.namespace).readlink() != own:
                    return
            time.sleep(0.01)
        raise RouterError("unshare --net did not create a network namespace")

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True, timeout=30)
        if self._holder.poll() is None:
            self._holder.kill()
        self._holder.wait()

    def __enter__(self) -> RouterNetwork:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _dotted(address: int) -> str:
    return ".".join(str((address >> shift) & 255) for shift in (24, 16, 8, 0))


class RouterProcess:
    """KServe's router on ``network`` with ``graph_spec`` (what ``--graph-json`` gets); its log
    (zap JSON lines, a few per request) goes to ``log_path``."""

    def __init__(
        self,
        network: RouterNetwork,
        graph_spec: Mapping[str, Any],
        log_path: Path,
        *,
        propagate_headers: tuple[str, ...] = (),
    ) -> None:
        self.network = network
        self.log_path = log_path
        self.url = f"http://{network.router_ip}:{ROUTER_PORT}"
        env = {key: value for key, value in os.environ.items() if key != PROPAGATE_HEADERS_ENV}
        if propagate_headers:
            env[PROPAGATE_HEADERS_ENV] = ",".join(propagate_headers)
        command = ["nsenter", f"--net={network.namespace}", str(ROUTER_BIN),
                   "--graph-json", json.dumps(graph_spec)]  # fmt: skip
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                preexec_fn=_die_with_parent,
            )  # fmt: skip

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RouterError(f"the router exited with {self.process.returncode}: "
                                  f"{self.log_tail()}")  # fmt: skip
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response,
            ):
                if response.status == 200:
                    return
            time.sleep(0.05)
        raise RouterError(f"the router was not ready within {timeout_s:g} s: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # SIGTERM would wait KServe's 30 s drain first
        self.process.wait()


@contextlib.contextmanager
def running_router(
    network: RouterNetwork, graph_spec: Mapping[str, Any], log_path: Path
) -> Iterator[RouterProcess]:
    router = RouterProcess(network, graph_spec, log_path)
    try:
        router.wait_ready()
        yield router
    finally:
        router.stop()
