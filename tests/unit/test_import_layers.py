"""The package's layout holds: no import cycles, and no stage imports from a later stage.

Read statically from the source (the AST), so every import counts, including those inside
functions; imports under ``if TYPE_CHECKING:`` count too, except for the cycle check, where
they never run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = "stroke_mlops"
SOURCE = Path(__file__).resolve().parents[2] / "src" / PACKAGE
# A stage may import only from stages before it. Modules outside the stage folders (cli, steps,
# image, logs, project, local_docker, ...) may import any stage; no stage imports them except
# the few shared helpers below, and the compatibility modules (stroke_mlops.compat), which import
# no stage.
STAGES = ("data", "training", "registry", "serving", "monitoring", "deploy", "app")
SHARED_TOP_LEVEL = {f"{PACKAGE}.logs", f"{PACKAGE}.image", f"{PACKAGE}.settings", PACKAGE}
COMPAT = f"{PACKAGE}.compat"


def _shared(name: str) -> bool:
    return name in SHARED_TOP_LEVEL or name == COMPAT or name.startswith(COMPAT + ".")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, only for type checking) for every import of our package in a file."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for inner in child.body:
                    visit_node(inner, True)
                for inner in child.orelse:
                    visit_node(inner, typing_only)
            else:
                visit_node(child, typing_only)

    def visit_node(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, typing_only) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # "from pkg import module" imports the submodule when there is one.
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.append((candidate if _exists(candidate) else target, typing_only))
        visit(node, typing_only)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), False)
    return [(name, typing_only) for name, typing_only in found if _is_ours(name)]


def _is_ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _exists(name: str) -> bool:
    relative = Path(*name.split("."))
    return (SOURCE.parent / relative).with_suffix(".py").is_file() or (
        SOURCE.parent / relative / "__init__.py"
    ).is_file()


def _stage(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def _graph() -> dict[str, list[tuple[str, bool]]]:
    return {_module_name(path): _imports(path) for path in sorted(SOURCE.rglob("*.py"))}


def test_the_source_is_found() -> None:
    graph = _graph()
    assert f"{PACKAGE}.data.contract" in graph and f"{PACKAGE}.cli" in graph
    assert (f"{PACKAGE}.data.dataset", False) in graph[f"{PACKAGE}.steps"]


def test_no_stage_imports_from_a_later_stage_or_from_the_adapters() -> None:
    wrong = []
    for module, imports in _graph().items():
        stage = _stage(module)
        if stage is None:
            continue
        for imported, _ in imports:
            imported_stage = _stage(imported)
            if imported_stage is None:
                if not _shared(imported):
                    wrong.append(f"{module} imports {imported} (not a stage)")
            elif STAGES.index(imported_stage) > STAGES.index(stage):
                wrong.append(f"{module} ({stage}) imports {imported} ({imported_stage})")
    assert wrong == []


def test_the_compatibility_modules_import_no_stage() -> None:
    wrong = [
        f"{module} imports {imported}"
        for module, imports in _graph().items()
        if _shared(module) and module.startswith(COMPAT)
        for imported, _ in imports
        if not (imported == PACKAGE or imported.startswith(COMPAT))
    ]
    assert wrong == []


def test_no_import_cycles() -> None:
    graph = {
        module: sorted({name for name, typing_only in imports if not typing_only} - {module})
        for module, imports in _graph().items()
    }
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def walk(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in graph.get(module, []):
            if state.get(imported) == "open":
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                walk(imported, [*path, imported])
        state[module] = "done"

    for module in graph:
        if module not in state:
            walk(module, [module])
    assert cycles == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from stroke_mlops.serving import predictor\n", "imports stroke_mlops.serving.predictor"),
        ("from stroke_mlops import steps\n", "imports stroke_mlops.steps (not a stage)"),
    ],
)
def test_a_stage_importing_a_later_stage_is_caught(
    source: str, expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The checks themselves can fail: a copy of the package with one bad import added.
    import shutil

    copy = tmp_path / PACKAGE
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    bad = copy / "data" / "schema.py"
    bad.write_text(bad.read_text() + "\n" + source)
    monkeypatch.setattr(f"{__name__}.SOURCE", copy)
    with pytest.raises(AssertionError, match=re.escape(expected)):
        test_no_stage_imports_from_a_later_stage_or_from_the_adapters()


def test_a_cycle_is_caught(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / PACKAGE
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    schema = copy / "data" / "schema.py"
    schema.write_text(schema.read_text() + "\ndef _late() -> None:\n    from . import dataset\n")
    monkeypatch.setattr(f"{__name__}.SOURCE", copy)
    with pytest.raises(AssertionError, match=r"stroke_mlops\.data\.schema"):
        test_no_import_cycles()
