"""The requirement catalogue (``spec/requirements.yaml``) as data the suite reports against."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from conformance import _yaml
from conformance._config import ConfigurationError
from conformance._resources import spec_dir

LEVELS = ("MUST", "SHOULD", "MAY")


@dataclass(frozen=True)
class Requirement:
    """One normative statement: a stable id, its level, and the document's own words."""

    id: str
    level: str
    section: str
    source: str
    applies_to: str = ""
    note: str = ""
    ambiguity: str = ""
    untestable: str = ""
    unprovable: str = ""  # verified, but no faulty server can break it (the reason why)

    @property
    def is_must(self) -> bool:
        return self.level == "MUST"


def catalogue_path() -> Path:
    return spec_dir() / "requirements.yaml"


@cache
def load_catalogue(path: Path | None = None) -> dict[str, Requirement]:
    """Read and check the catalogue; a malformed one is a configuration error."""
    path = path or catalogue_path()
    try:
        raw = _yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"requirement catalogue {path}: cannot be read ({exc})") from None
    catalogue: dict[str, Requirement] = {}
    for entry in raw.get("requirements", []):
        fields = {k: entry[k] for k in Requirement.__dataclass_fields__ if k in entry}
        requirement = Requirement(**fields)
        if requirement.level not in LEVELS:
            raise ConfigurationError(
                f"requirement {requirement.id}: unknown level {requirement.level!r}"
            )
        if requirement.id in catalogue:
            raise ConfigurationError(f"requirement {requirement.id} is listed twice")
        catalogue[requirement.id] = requirement
    return catalogue
