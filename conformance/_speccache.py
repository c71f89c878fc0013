"""Remember which OpenAPI documents already validated, by content digest.

Importing openapi-spec-validator and validating cost 1-2 s of every run (profiled with
pyinstrument), while the document it checks is almost always the bundled one, unchanged since
the last run. A document is validated once per content and validator version; an invalid one
is never remembered, so it fails every run with the same one-line error.
"""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path

CACHE_ENV_VAR = "CREATORAUDIT_CACHE_DIR"
#: SHA-256 of the published document the suite ships (spec/openapi.yaml). The suite's own
#: tests validate it and hold this digest to it (tests/test_spec.py), so a run on a machine
#: with an empty cache (a fresh CI job) need not validate it again: 0.2-0.3 s of such a run.
#: Any other content, an edited copy included, is validated as before.
PUBLISHED_SPEC_SHA256 = "71cc78d045709ef0233afe986f440fc72440afc73fb6229f7d13617b4fe17ebd"


def cache_dir() -> Path:
    """``$CREATORAUDIT_CACHE_DIR``, else the user cache folder (XDG)."""
    explicit = os.environ.get(CACHE_ENV_VAR)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "creatoraudit-conformance"


def _marker(document: bytes) -> Path:
    try:
        validator = metadata.version("openapi-spec-validator")
    except metadata.PackageNotFoundError:
        validator = "unknown"
    digest = hashlib.sha256(document + b"\0" + validator.encode()).hexdigest()
    return cache_dir() / f"valid-spec-{digest}"


def known_valid(document: bytes) -> bool:
    if hashlib.sha256(document).hexdigest() == PUBLISHED_SPEC_SHA256:
        return True
    return _marker(document).is_file()


def remember_valid(document: bytes) -> None:
    """Best effort: a read-only home only means validating again next time."""
    marker = _marker(document)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass
