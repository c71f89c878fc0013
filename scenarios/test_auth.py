"""Authentication and scopes on the link operation."""

from __future__ import annotations

import pytest

from conformance import ApiClient, Principal, expect_problem, expect_status, link_path


@pytest.mark.requirement("AUTH-MISSING-401", "CODE-401", "HTTP-401-WWW-AUTHENTICATE")
def test_no_authorization_header_is_401(api: ApiClient, data) -> None:
    path = link_path(data.owner(), data.account())
    expect_problem(api.put(path, principal=Principal.NONE), 401, "UNAUTHORIZED", "AUTH-MISSING-401")


@pytest.mark.requirement("AUTH-INVALID-401", "CODE-401", "HTTP-401-WWW-AUTHENTICATE")
def test_unknown_key_is_401(api: ApiClient, data) -> None:
    path = link_path(data.owner(), data.account())
    expect_problem(
        api.put(path, principal=Principal.INVALID), 401, "UNAUTHORIZED", "AUTH-INVALID-401"
    )


@pytest.mark.requirement("AUTH-INVALID-401")
@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer abc def", "Basic dXNlcjpwYXNz", "Token abc", "bearer-without-space"],
    ids=["scheme-only", "two-tokens", "basic-scheme", "token-scheme", "garbled"],
)
def test_malformed_authorization_header_is_401(api: ApiClient, data, header: str) -> None:
    path = link_path(data.owner(), data.account())
    exchange = api.put(path, principal=Principal.MALFORMED, authorization=header)
    expect_problem(exchange, 401, "UNAUTHORIZED", "AUTH-INVALID-401")


@pytest.mark.requirement("AUTH-INACTIVE-403", "CODE-403-FORBIDDEN")
def test_inactive_key_is_403_forbidden(api: ApiClient, data) -> None:
    path = link_path(data.owner(), data.account())
    expect_problem(
        api.put(path, principal=Principal.INACTIVE), 403, "FORBIDDEN", "AUTH-INACTIVE-403"
    )


@pytest.mark.requirement("AUTH-SCOPE-403", "AUTH-SCOPE-WRITE", "CODE-403-SCOPE")
def test_read_only_key_cannot_link(api: ApiClient, data) -> None:
    path = link_path(data.owner(), data.account())
    expect_problem(
        api.put(path, principal=Principal.READONLY), 403, "INSUFFICIENT_SCOPE", "AUTH-SCOPE-403"
    )
    # The refused write had no effect: the first real link is still a first link.
    expect_status(api.put(path), 201, "AUTH-SCOPE-403")


@pytest.mark.requirement("HTTP-AUTH-SCHEME-CASE", "AUTH-BEARER")
@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_bearer_scheme_name_is_case_insensitive(api: ApiClient, data, scheme: str) -> None:
    key = api.credentials.key_for(Principal.FULL)
    path = link_path(data.owner(), data.account())
    exchange = api.put(path, authorization=f"{scheme} {key}")
    expect_status(exchange, 201, "HTTP-AUTH-SCHEME-CASE")
