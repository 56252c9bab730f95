"""Upstream internals are used only in stroke_mlops.compat, one module per upstream, each refusing
to import on a version it was not tested with.

The scan reads the code statically (the AST): an attribute, ``getattr`` name or import whose last
part starts with one underscore and that our code does not define is an upstream's private name;
an import of an upstream module known to be internal, or an assignment to an attribute of an
imported upstream module (a monkeypatch), counts too.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import pytest

from stroke_mlops import compat

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO / "src" / "stroke_mlops"
COMPAT_DIR = PACKAGE_DIR / "compat"
SCANNED = ("src/stroke_mlops", "pipelines", "components", "tools", "benchmarks")
OURS = ("stroke_mlops", "pipelines", "components", "tools", "benchmarks", "tests")
# Upstream modules that are not their package's documented API; of kfp.local, only these names are.
INTERNAL_MODULES = ("kfp.local.", "uvicorn.protocols", "kserve.protocol.rest")
KFP_LOCAL_API = {"init", "SubprocessRunner", "DockerRunner"}
ALLOWED = {"os._exit"}  # documented, despite the underscore


def _files(root: Path) -> list[Path]:
    return sorted(
        path
        for folder in SCANNED
        for path in (root / folder).rglob("*.py")
        if "compat" not in path.relative_to(root).parts[:3]
    )


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_by_us(root: Path) -> set[str]:
    names: set[str] = set()
    for path in [*_files(root), *sorted((root / "tests").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


def upstream_internals(root: Path = REPO) -> list[str]:
    """Every use of an upstream internal outside the compat package, as ``file:line: what``."""
    ours = _defined_by_us(root)
    found: list[str] = []
    for path in _files(root):
        where = path.relative_to(root)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        upstream_modules: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if not alias.name.startswith(OURS):
                        upstream_modules.add(alias.asname or alias.name.split(".")[0])
            elif (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.level == 0
                and not node.module.startswith(OURS)
            ):
                upstream_modules.update(alias.asname or alias.name for alias in node.names)
        upstream_modules -= set(sys.stdlib_module_names)
        for node in ast.walk(tree):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                dotted = f"{getattr(node.value, 'id', '?')}.{node.attr}"
                if node.attr not in ours and dotted not in ALLOWED:
                    found.append(f"{where}:{line}: .{node.attr}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr")
                and node.args
            ):
                name = node.args[1] if len(node.args) > 1 else None
                if (
                    isinstance(name, ast.Constant)
                    and isinstance(name.value, str)
                    and _is_private(name.value)
                    and name.value not in ours
                ):
                    found.append(f"{where}:{line}: {node.func.id}(…, {name.value!r})")
                target = node.args[0]
                if (
                    node.func.id == "setattr"
                    and isinstance(target, ast.Name)
                    and target.id in upstream_modules
                ):
                    found.append(f"{where}:{line}: setattr on upstream {target.id}")
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                module = node.module
                if module.startswith(OURS):
                    continue
                internal = module.startswith(INTERNAL_MODULES) or (
                    f"{module}.".startswith(INTERNAL_MODULES) and module != "kfp.local"
                )
                if module == "kfp.local":
                    internal = any(alias.name not in KFP_LOCAL_API for alias in node.names)
                if internal or any(_is_private(part) for part in module.split(".")):
                    found.append(f"{where}:{line}: from {module} import …")
                found.extend(
                    f"{where}:{line}: from {module} import {alias.name}"
                    for alias in node.names
                    if _is_private(alias.name)
                )
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id in upstream_modules
                    ):
                        found.append(f"{where}:{line}: {target.value.id}.{target.attr} = …")
    return found


def test_no_upstream_internal_is_used_outside_the_compat_modules() -> None:
    assert upstream_internals() == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("def f(c):\n    return c._put_object\n", "._put_object"),
        ("def f(e):\n    return getattr(e, '_infrequent_enabled', False)\n", "_infrequent_enabled"),
        ("from kfp.local import task_dispatcher\n", "from kfp.local import"),
        ("from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol\n", "uvicorn"),
        ("import kserve\nkserve.Model = None\n", "kserve.Model = …"),
    ],
)
def test_the_scan_finds_an_upstream_internal(tmp_path: Path, code: str, expected: str) -> None:
    import shutil

    for folder in (*SCANNED, "tests"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    shutil.copytree(PACKAGE_DIR, tmp_path / "src" / "stroke_mlops", dirs_exist_ok=True)
    (tmp_path / "src" / "stroke_mlops" / "serving" / "bad.py").write_text(code)
    found = upstream_internals(tmp_path)
    assert len(found) == 1 and expected in found[0], found


def test_every_compatibility_module_is_listed_and_pinned_to_the_installed_version() -> None:
    modules = {f"stroke_mlops.compat.{p.stem}" for p in COMPAT_DIR.glob("*.py")}
    assert modules - {"stroke_mlops.compat.__init__"} == set(compat.UPSTREAMS)
    for name, distribution in compat.UPSTREAMS.items():
        module = importlib.import_module(name)
        installed = importlib.metadata.version(distribution)
        assert installed == module.VERSION
        assert ".".join(installed.split(".")[:2]) in module.TESTED


@pytest.mark.parametrize("name", sorted(compat.UPSTREAMS))
def test_an_untested_upstream_version_fails_at_import(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compat, "version", lambda distribution: "99.1.0")
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)  # a copy: the imported module stays as it is
    with pytest.raises(compat.UntestedUpstreamError, match=rf"{compat.UPSTREAMS[name]} 99\.1\.0"):
        spec.loader.exec_module(fresh)
