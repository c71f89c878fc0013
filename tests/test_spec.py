"""The published OpenAPI document travels unchanged and validates."""

from __future__ import annotations

import hashlib

import yaml
from openapi_spec_validator import validate

from conformance._resources import spec_path
from conformance._speccache import PUBLISHED_SPEC_SHA256


def test_published_spec_is_valid_openapi_3_1() -> None:
    document = yaml.safe_load(spec_path().read_text(encoding="utf-8"))
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert "/creators/{creator_id}/accounts/{account_id}" in document["paths"]
    # runs skip validating exactly this content (conformance._speccache): it is validated here
    assert hashlib.sha256(spec_path().read_bytes()).hexdigest() == PUBLISHED_SPEC_SHA256
