"""GET /health and GET /meta: no credentials, no rate-limit headers, JSON, correlation id."""

from __future__ import annotations

import pytest

from conformance import ApiClient, Principal, expect_status

PUBLIC_PATHS = ["/health", "/meta"]


@pytest.mark.requirement(
    "PUBLIC-NO-CREDENTIALS", "RL-PUBLIC-OMITTED", "NEG-JSON-ONLY", "HDR-REQUEST-ID"
)
@pytest.mark.parametrize("path", PUBLIC_PATHS, ids=["health", "meta"])
def test_public_endpoint_answers_without_credentials(api: ApiClient, path: str) -> None:
    # The rules judge the answer: no X-RateLimit-*, a JSON body, an X-Request-ID.
    exchange = api.get(path, principal=Principal.NONE, request_id=False)
    expect_status(exchange, 200, "PUBLIC-NO-CREDENTIALS")


@pytest.mark.requirement("RL-PUBLIC-OMITTED", "HDR-REQUEST-ID-ECHO")
@pytest.mark.parametrize("path", PUBLIC_PATHS, ids=["health", "meta"])
def test_public_endpoint_ignores_a_key_sent_anyway(api: ApiClient, path: str) -> None:
    """The document calls them unauthenticated and unlimited: a key sent anyway changes nothing."""
    exchange = api.get(path)
    expect_status(exchange, 200, "PUBLIC-NO-CREDENTIALS")
