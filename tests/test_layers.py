"""The layer rules of ARCHITECTURE.md, checked on the import statements themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "conformance"

#: modules allowed to start or import the reference server (a target, not checking machinery)
MAY_IMPORT_REFERENCE = {"conformance.plugin", "conformance.cli", "conformance.faultmatrix"}
#: the judging core: rules see exchanges and nothing else
CORE = {
    "conformance._rules": {"conformance._exchange", "conformance._config"},
    "conformance._exchange": {"conformance._config"},
    "conformance._config": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name.split(".")[0] == "conformance"}


SOURCES = sorted([*PACKAGE.rglob("*.py"), *(ROOT / "scenarios").glob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_runners_import_the_reference_server(path: Path) -> None:
    name = module_name(path)
    if name.startswith("conformance._reference"):
        outside = {m for m in imported_modules(path) if not m.startswith("conformance._reference")}
        assert not outside, f"the reference server must stand alone, but imports {outside}"
        return
    uses_reference = {m for m in imported_modules(path) if m.startswith("conformance._reference")}
    assert not uses_reference or name in MAY_IMPORT_REFERENCE, (
        f"{name} imports the reference server ({uses_reference}); only "
        f"{sorted(MAY_IMPORT_REFERENCE)} may"
    )


@pytest.mark.parametrize("name", sorted(CORE))
def test_judging_core_depends_on_nothing_above_it(name: str) -> None:
    path = ROOT / (name.replace(".", "/") + ".py")
    assert imported_modules(path) <= CORE[name], imported_modules(path) - CORE[name]
