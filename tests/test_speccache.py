"""A document is validated once per content; an invalid one fails every time."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance._config import ConfigurationError
from conformance._resources import spec_path
from conformance.cli import validate_spec


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CREATORAUDIT_CACHE_DIR", str(cache))
    return cache


def test_valid_spec_is_remembered_by_content(tmp_path: Path, own_cache: Path) -> None:
    copy = tmp_path / "vendor.yaml"  # valid, but not the published bytes
    copy.write_bytes(spec_path().read_bytes() + b"# a vendor's copy\n")
    validate_spec(copy)
    assert len(list(own_cache.glob("valid-spec-*"))) == 1
    validate_spec(copy)  # answered from the cache
    assert len(list(own_cache.glob("valid-spec-*"))) == 1


def test_published_spec_is_not_validated_again(
    own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite's own tests validate it (test_spec.py); a run takes it as valid, cache or no."""
    import openapi_spec_validator

    def refuse(document: object) -> None:
        raise AssertionError("the published spec was validated again")

    monkeypatch.setattr(openapi_spec_validator, "validate", refuse)
    validate_spec(spec_path())
    assert not list(own_cache.glob("valid-spec-*"))


def test_invalid_spec_is_never_remembered(tmp_path: Path, own_cache: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: 3.1.0\ninfo: {}\npaths: {}\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="not a valid OpenAPI document"):
            validate_spec(broken)
    assert not list(own_cache.glob("valid-spec-*"))
