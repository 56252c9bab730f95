"""The Go modules that build the local control plane pin what the rest of the project targets.

Read from the committed go.mod files alone (no Go toolchain, no module download): every
Kubernetes staging module follows the k8s.io/kubernetes release, and the KServe manager is built
at the KServe release mk/cluster.mk installs, with KServe's own replace/exclude block.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PLATFORM = REPO_ROOT / "tools" / "platform"


def directives(go_mod: Path, keyword: str) -> set[str]:
    """The ``replace`` or ``exclude`` lines of a go.mod, whitespace-normalised."""
    lines, inside = set(), False
    for raw in go_mod.read_text().splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if line == f"{keyword} (":
            inside = True
        elif inside and line == ")":
            inside = False
        elif inside:
            lines.add(" ".join(line.split()))
        elif line.startswith(f"{keyword} "):
            lines.add(" ".join(line.removeprefix(f"{keyword} ").split()))
    return lines


def required(go_mod: Path, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.M)
    assert match, f"{go_mod} does not require {module}"
    return match.group(1)


def make_variable(path: Path, name: str) -> str:
    match = re.search(rf"^{name}\s*[:?]?=\s*(\S+)", path.read_text(), re.M)
    assert match, f"{name} is not set in {path}"
    return match.group(1)


def test_every_kubernetes_staging_module_follows_the_kubernetes_release() -> None:
    go_mod = PLATFORM / "kube" / "go.mod"
    kubernetes = required(go_mod, "k8s.io/kubernetes")
    staging = "v0." + kubernetes.removeprefix("v1.")
    replaces = directives(go_mod, "replace")
    assert len(replaces) >= 30  # k8s.io/kubernetes v1.34 has 31 staging modules
    for line in replaces:
        module, arrow, target, version = line.split()
        assert (arrow, target, version) == ("=>", module, staging), line
    assert make_variable(REPO_ROOT / "mk" / "platform.mk", "KUBE_VERSION") == kubernetes


def test_the_kserve_manager_is_built_at_the_release_the_cluster_installs() -> None:
    go_mod = PLATFORM / "kserve-manager" / "go.mod"
    assert required(go_mod, "github.com/kserve/kserve") == make_variable(
        REPO_ROOT / "mk" / "cluster.mk", "KSERVE_VERSION"
    )
    replaces = directives(go_mod, "replace")
    # KServe v0.20.0's pins: without them controller-runtime and k8s.io resolve too new.
    assert "sigs.k8s.io/controller-runtime => sigs.k8s.io/controller-runtime v0.22.5" in replaces
    assert "k8s.io/client-go => k8s.io/client-go v0.34.5" in replaces
    assert "google.golang.org/grpc => google.golang.org/grpc v1.79.3" in replaces
    assert directives(go_mod, "exclude") == {
        "google.golang.org/grpc/stats/opentelemetry v0.0.0-00010101000000-000000000000"
    }


def test_kserve_admit_and_the_kserve_manager_share_kserves_pins() -> None:
    admit = PLATFORM / "kserve" / "go.mod"
    if not admit.is_file():
        pytest.skip("tools/platform/kserve/go.mod (kserve-admit, issue 15) is not on this branch")
    manager = PLATFORM / "kserve-manager" / "go.mod"
    assert required(admit, "github.com/kserve/kserve") == required(
        manager, "github.com/kserve/kserve"
    )
    for keyword in ("replace", "exclude"):
        assert directives(admit, keyword) == directives(manager, keyword), keyword
