"""Rules every response obeys, exercised on purpose: correlation ids, rate-limit headers and
problem details. The same rules also judge every other response of every scenario."""

from __future__ import annotations

import uuid

import pytest

from conformance import (
    ApiClient,
    Principal,
    expect_problem,
    expect_status,
    judge,
    link_path,
    nowhere_id,
)


def assert_rules_hold(exchange) -> None:  # type: ignore[no-untyped-def]
    violations = judge(exchange)
    assert not violations, "\n".join(f"[{v.requirement}] {v.message}" for v in violations)


@pytest.mark.requirement("HDR-REQUEST-ID-ECHO", "HDR-REQUEST-ID")
@pytest.mark.parametrize("outcome", ["success", "error"])
def test_sent_request_id_is_echoed(api: ApiClient, data, outcome: str) -> None:
    request_id = f"conformance-echo-{uuid.uuid4().hex}"
    account = data.account() if outcome == "success" else nowhere_id()
    exchange = api.put(link_path(data.owner(), account), request_id=request_id)
    expect_status(exchange, 201 if outcome == "success" else 404, "HDR-REQUEST-ID-ECHO")
    echoed = exchange.headers.get_value("x-request-id")
    assert echoed == request_id, f"[HDR-REQUEST-ID-ECHO] sent {request_id!r}, got {echoed!r}"


@pytest.mark.requirement("HDR-REQUEST-ID")
def test_request_id_is_minted_when_none_is_sent(api: ApiClient, data) -> None:
    exchange = api.put(link_path(data.owner(), nowhere_id()), request_id=False)
    assert exchange.headers.get_value("x-request-id"), "[HDR-REQUEST-ID] no X-Request-ID minted"
    assert_rules_hold(exchange)


@pytest.mark.requirement("RL-HEADERS", "RL-HEADERS-FORMAT", "RL-RESET-UNIX")
@pytest.mark.parametrize(
    "principal", [Principal.FULL, Principal.READONLY], ids=["write-key", "read-only-key"]
)
def test_authenticated_responses_carry_rate_limit_headers(
    api: ApiClient, data, principal: Principal
) -> None:
    exchange = api.put(link_path(data.owner(), data.account()), principal=principal)
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert exchange.headers.get_value(name) is not None, f"[RL-HEADERS] {name} missing"
    assert_rules_hold(exchange)


@pytest.mark.requirement(
    "ERR-PROBLEM-MEDIA-TYPE",
    "ERR-PROBLEM-MEMBERS",
    "ERR-PROBLEM-STATUS",
    "ERR-CODE-KNOWN",
    "ERR-CODE-STATUS",
    "ERR-REQUEST-ID",
    "ERR-TYPE-URN",
)
@pytest.mark.parametrize(
    ("principal", "status", "code"),
    [
        (Principal.NONE, 401, "UNAUTHORIZED"),
        (Principal.FULL, 404, "NOT_FOUND"),
        (Principal.READONLY, 403, "INSUFFICIENT_SCOPE"),
    ],
    ids=["401", "404", "403-scope"],
)
def test_errors_are_problem_details(
    api: ApiClient, data, principal: Principal, status: int, code: str
) -> None:
    # Existing resources for the scope case, so 404 cannot pre-empt the scope check.
    exists = principal is Principal.READONLY
    creator = data.owner() if exists else nowhere_id()
    account = data.account() if exists else nowhere_id()
    exchange = api.put(link_path(creator, account), principal=principal)
    expect_problem(exchange, status, code, "ERR-CODE-STATUS")
    assert_rules_hold(exchange)
