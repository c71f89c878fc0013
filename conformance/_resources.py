"""Where the files that travel with the suite live, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    """Installed wheels carry ``conformance/<name>``; a checkout has ``<repo>/<name>``."""
    inside = _PACKAGE / name
    return inside if inside.is_dir() else _PACKAGE.parent / name


def spec_dir() -> Path:
    return _bundled("spec")


def spec_path() -> Path:
    return spec_dir() / "openapi.yaml"


def scenarios_dir() -> Path:
    return _bundled("scenarios")


def run_ini_path() -> Path:
    """The pytest settings of ``creatoraudit-conformance run``, independent of any project's."""
    return _PACKAGE / "run.ini"
