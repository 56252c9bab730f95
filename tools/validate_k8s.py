"""Strict offline validation of Kubernetes manifests: no cluster, unknown fields are errors.

Built-in kinds are checked against the strict JSON schemas that ``kubernetes-validate`` ships for
``KUBERNETES_VERSION``; KServe kinds against the openAPIV3Schema of their CustomResourceDefinition
(``tools/crds/kserve``, vendored from KServe v0.20.0, or ``$KSERVE_CRD_DIR``), prometheus-operator's
ServiceMonitor, PodMonitor and PrometheusRule against theirs (``tools/crds/prometheus-operator``,
vendored from v0.93.0), tightened the way a
strict API server treats them: every object schema that does not preserve unknown fields rejects
them. CEL rules (``x-kubernetes-validations``) and admission webhooks are not evaluated.

CLI:
``python -m tools.validate_k8s manifests/overlays/kind [more overlays or files]``

Test tooling, not part of the runtime package: the image does not install ``jsonschema`` or
``kubernetes-validate``.
(or ``python -m tools.validate_k8s ...`` from the repository root) prints every schema problem and
every KServe admission problem (``tools/kserve_admission.py``) and exits non-zero when there is one.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

# The Kubernetes minor version of the kind node image in manifests/kind/cluster.yaml.
KUBERNETES_VERSION = "1.34"
CRD_DIR_ENV = "KSERVE_CRD_DIR"
_REPO_ROOT = Path(__file__).resolve().parents[1]
_DEFAULT_CRD_DIR = _REPO_ROOT / "tools" / "crds" / "kserve"
# prometheus-operator's ServiceMonitor, PodMonitor and PrometheusRule (manifests/monitoring)
_MONITORING_CRD_DIR = _REPO_ROOT / "tools" / "crds" / "prometheus-operator"
_K8S_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
_OBJECT_META_REF = f"{_K8S_DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_MAX_MESSAGE = 300
# libyaml's loader parses the 2 MB InferenceService CRD ~6x faster than the pure-Python one.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class ValidationProblem:
    """One reason an object would be rejected (or could not be checked)."""

    kind: str
    name: str
    path: str  # dotted field path inside the object, "" for the object as a whole
    message: str

    def __str__(self) -> str:
        where = f"{self.kind}/{self.name}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class KustomizeError(RuntimeError):
    """``kubectl kustomize`` could not render an overlay (or no renderer is installed)."""


def default_crd_dir() -> Path:
    """``$KSERVE_CRD_DIR`` if set, else the vendored ``tools/crds/kserve``."""
    return Path(os.environ.get(CRD_DIR_ENV) or _DEFAULT_CRD_DIR)


# --- schemas ---------------------------------------------------------------------------------


@cache
def _kubernetes_schema_dir(version: str) -> Any:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    strict = folder / f"v{version}.0-local-strict"
    if not strict.is_dir():
        shipped = sorted(
            p.name.removeprefix("v").removesuffix(".0-local-strict")
            for p in folder.iterdir()
            if p.name.endswith("-local-strict")
        )
        raise ValueError(
            f"kubernetes-validate has no schemas for Kubernetes {version}; it ships {shipped}"
        )
    return strict


@cache
def _registry(version: str) -> Any:
    from referencing import Registry, Resource

    definitions = json.loads((_kubernetes_schema_dir(version) / "_definitions.json").read_text())
    return Registry().with_resource(_K8S_DEFINITIONS_ID, Resource.from_contents(definitions))


@cache
def _builtin_schema(api_version: str, kind: str, version: str) -> dict[str, Any] | None:
    # kubernetes-validate's file names: rbac.authorization.k8s.io/v1 Role -> role-rbac-v1.json
    group, _, api = api_version.rpartition("/")
    stem = f"{kind.lower()}-{group.split('.')[0]}-{api}" if group else f"{kind.lower()}-{api}"
    path = _kubernetes_schema_dir(version) / f"{stem}.json"
    if not path.is_file():
        return None
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def _is_builtin_group(group: str) -> bool:
    return group == "" or "." not in group or group.endswith(".k8s.io")


def strict_crd_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A CRD openAPIV3Schema where unknown fields are errors instead of being pruned.

    Every ``type: object`` schema without ``x-kubernetes-preserve-unknown-fields: true`` and
    without its own ``additionalProperties`` gets ``additionalProperties: false``. The top-level
    ``metadata`` (just ``type: object`` in a CRD) is checked as a strict ObjectMeta.
    """

    def tighten(node: Any) -> Any:
        if isinstance(node, list):
            return [tighten(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: tighten(value) for key, value in node.items()}
        if (
            out.get("type") == "object"
            and not out.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in out
        ):
            out["additionalProperties"] = False
        return out

    strict: dict[str, Any] = tighten(copy.deepcopy(dict(schema)))
    strict.setdefault("properties", {})["metadata"] = {"$ref": _OBJECT_META_REF}
    return strict


@dataclass(frozen=True)
class _CrdVersions:
    plural: str
    served: dict[str, dict[str, Any]]  # version -> strict schema


@cache
def _load_crds(crd_dir: Path) -> dict[tuple[str, str], _CrdVersions]:
    crds: dict[tuple[str, str], _CrdVersions] = {}
    for path in sorted(crd_dir.glob("*.y*ml")):
        for doc in yaml.load_all(path.read_text(), Loader=_YAML_LOADER):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            served = {
                v["name"]: strict_crd_schema(v["schema"]["openAPIV3Schema"])
                for v in spec["versions"]
                if v.get("served", True)
            }
            crds[(spec["group"], spec["names"]["kind"])] = _CrdVersions(
                spec["names"]["plural"], served
            )
    return crds


# --- validation ------------------------------------------------------------------------------


def _field_path(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _schema_problems(
    obj: Mapping[str, Any], schema: Mapping[str, Any], version: str, kind: str, name: str
) -> Iterator[ValidationProblem]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema, registry=_registry(version))
    errors = sorted(validator.iter_errors(obj), key=lambda e: _field_path(e.absolute_path))
    for error in errors:
        message = error.message
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        yield ValidationProblem(kind, name, _field_path(error.absolute_path), message)


def validate_object(
    obj: Any, *, kubernetes_version: str = KUBERNETES_VERSION, crd_dir: Path | None = None
) -> list[ValidationProblem]:
    """Every problem with one manifest (a dict as parsed from YAML)."""
    if not isinstance(obj, Mapping):
        return [ValidationProblem("?", "?", "", f"not a mapping but {type(obj).__name__}")]
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    label_kind, label_name = str(kind or "?"), str(name or "?")
    if not isinstance(kind, str) or not kind or not isinstance(api_version, str) or not api_version:
        return [ValidationProblem(label_kind, label_name, "", "apiVersion and kind are required")]
    problems = []
    if not isinstance(name, str) or not name:
        problems.append(ValidationProblem(label_kind, label_name, "metadata.name", "is required"))

    group, _, version = api_version.rpartition("/")
    crd_dir = crd_dir or default_crd_dir()
    crds = _load_crds(crd_dir) if crd_dir.is_dir() else {}
    crd = crds.get((group, kind)) or _load_crds(_MONITORING_CRD_DIR).get((group, kind))
    if crd is not None:
        schema = crd.served.get(version)
        if schema is None:
            served = ", ".join(f"{group}/{v}" for v in sorted(crd.served))
            problems.append(
                ValidationProblem(
                    kind, label_name, "apiVersion", f"{api_version} is not served; use {served}"
                )
            )
            return problems
    elif _is_builtin_group(group):
        schema = _builtin_schema(api_version, kind, kubernetes_version)
        if schema is None:
            problems.append(
                ValidationProblem(
                    kind,
                    label_name,
                    "",
                    f"no schema: {api_version} {kind} does not exist in Kubernetes "
                    f"{kubernetes_version}",
                )
            )
            return problems
    else:
        where = f"in {crd_dir}" if crd_dir.is_dir() else f"({crd_dir} not found; set {CRD_DIR_ENV})"
        problems.append(
            ValidationProblem(
                kind,
                label_name,
                "",
                f"no schema: no CustomResourceDefinition for {kind} ({api_version}) {where}",
            )
        )
        return problems
    problems.extend(_schema_problems(obj, schema, kubernetes_version, kind, label_name))
    return problems


def validate_objects(
    objects: Sequence[Any],
    *,
    kubernetes_version: str = KUBERNETES_VERSION,
    crd_dir: Path | None = None,
) -> list[ValidationProblem]:
    """Every problem with every object; an empty list means all of them would be accepted."""
    return [
        problem
        for obj in objects
        for problem in validate_object(obj, kubernetes_version=kubernetes_version, crd_dir=crd_dir)
    ]


# --- kustomize -------------------------------------------------------------------------------


def _kustomization_file(folder: Path) -> Path | None:
    return next((folder / f for f in _KUSTOMIZATION_FILES if (folder / f).is_file()), None)


def _is_remote(ref: str) -> bool:
    return "://" in ref or ref.startswith(("github.com/", "git@"))


def _walk_kustomizations(folder: Path, seen: set[Path]) -> None:
    """Collect ``folder`` and every local kustomization it includes."""
    folder = folder.resolve()
    if folder in seen:
        return
    seen.add(folder)
    file = _kustomization_file(folder)
    if file is None:
        return
    spec = yaml.safe_load(file.read_text()) or {}
    for key in ("resources", "bases", "components"):
        for ref in spec.get(key) or []:
            if isinstance(ref, str) and not _is_remote(ref) and (folder / ref).is_dir():
                _walk_kustomizations(folder / ref, seen)


EnvExamples = Literal["missing", "always", "never"]


def env_file_substitutes(
    path: str | Path, *, env_examples: EnvExamples = "missing"
) -> list[tuple[Path, Path]]:
    """``(env file, its .example)`` pairs where the example stands in when rendering ``path``.

    Overlays generate Secrets from a local, gitignored ``credentials.env``; a fresh clone only has
    ``credentials.env.example``. ``"missing"`` substitutes absent env files, ``"always"`` every
    env file that has an example (renders exactly what is committed), ``"never"`` none.
    """
    if env_examples == "never":
        return []
    folders: set[Path] = set()
    _walk_kustomizations(Path(path), folders)
    pairs = []
    seen: set[Path] = set()
    for folder in sorted(folders):
        file = _kustomization_file(folder)
        spec = (yaml.safe_load(file.read_text()) or {}) if file else {}
        generators = (spec.get("secretGenerator") or []) + (spec.get("configMapGenerator") or [])
        for generator in generators:
            envs = list(generator.get("envs") or [])
            if generator.get("env"):
                envs.append(generator["env"])
            for env in envs:
                env_path = folder / env
                example = env_path.with_name(env_path.name + ".example")
                wanted = env_examples == "always" or not env_path.exists()
                if wanted and example.is_file() and env_path not in seen:
                    seen.add(env_path)
                    pairs.append((env_path, example))
    return pairs


def _kustomize_command(path: Path) -> list[str]:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(path)]
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(path)]
    raise KustomizeError("neither kubectl nor kustomize is on PATH: install kubectl (>= 1.27)")


def _run_kustomize(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        _kustomize_command(path), capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise KustomizeError(f"kustomize failed for {path}:\n{result.stderr.strip()}")
    return [doc for doc in yaml.load_all(result.stdout, Loader=_YAML_LOADER) if doc]


def render_kustomize(
    path: str | Path, *, env_examples: EnvExamples = "missing"
) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize path`` renders.

    Where ``env_file_substitutes`` finds an ``.env.example`` to stand in for a generator's env
    file, the overlay is rendered from a temporary copy holding the example in its place: a fresh
    clone (and CI) renders without credentials, and the working tree is never written to.
    """
    path = Path(path)
    if not path.is_dir() or _kustomization_file(path) is None:
        raise KustomizeError(f"{path} is not a folder with a kustomization.yaml")
    substitutes = env_file_substitutes(path, env_examples=env_examples)
    if not substitutes:
        return _run_kustomize(path)
    folders: set[Path] = set()
    _walk_kustomizations(path, folders)
    root = Path(os.path.commonpath([str(f) for f in folders]))
    with tempfile.TemporaryDirectory(prefix="kustomize-") as tmp:
        copy_root = Path(tmp) / root.name
        shutil.copytree(root, copy_root)
        for env_path, example in substitutes:
            shutil.copyfile(example, copy_root / env_path.relative_to(root))
        return _run_kustomize(copy_root / path.resolve().relative_to(root))


# --- admission -------------------------------------------------------------------------------


def admission_problems(objects: Sequence[Any]) -> list[ValidationProblem]:
    """KServe v0.20's admission rules (tools/kserve_admission.py) as validation problems."""
    from tools.kserve_admission import check_objects

    return [
        ValidationProblem(p.kind, p.name, "", f"admission [{p.rule}]: {p.message}")
        for p in check_objects([o for o in objects if isinstance(o, Mapping)])
    ]


# --- CLI -------------------------------------------------------------------------------------


def _load_target(target: Path) -> list[Any]:
    if target.is_dir():
        for env_path, example in env_file_substitutes(target):
            print(f"note: {env_path} is missing; rendering with {example.name}", file=sys.stderr)
        return render_kustomize(target)
    return [
        doc for doc in yaml.load_all(target.read_text(), Loader=_YAML_LOADER) if doc is not None
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Validate kustomize overlays and/or YAML files; 0 = all valid, 1 = problems, 2 = errors."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tools.validate_k8s",
        description="Strict offline validation of Kubernetes manifests (overlays or YAML files).",
    )
    parser.add_argument("targets", nargs="+", type=Path, help="kustomize folder or YAML file")
    parser.add_argument("--kubernetes-version", default=KUBERNETES_VERSION)
    args = parser.parse_args(argv)
    status = 0
    for target in args.targets:
        try:
            objects = _load_target(target)
            problems = validate_objects(objects, kubernetes_version=args.kubernetes_version)
            problems += admission_problems(objects)
        except (KustomizeError, OSError, ValueError, yaml.YAMLError) as e:
            print(f"{target}: error: {e}", file=sys.stderr)
            status = 2
            continue
        for problem in problems:
            print(f"{target}: {problem}")
        print(f"{target}: {len(objects)} objects, {len(problems)} problems")
        if problems and status == 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
