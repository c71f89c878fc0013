"""Problem details across the kinds of error the suite can provoke; the rules judge each one
(media type, members, status, URN type, request id, instance = request path as a SHOULD)."""

from __future__ import annotations

import pytest

from conformance import (
    ApiClient,
    Exchange,
    Principal,
    expect_problem,
    expect_status,
    link_path,
    nowhere_id,
)


def _not_found(api: ApiClient) -> Exchange:
    return api.put(link_path(nowhere_id(), nowhere_id()))


def _unauthorized(api: ApiClient) -> Exchange:
    return api.put(link_path(nowhere_id(), nowhere_id()), principal=Principal.NONE)


def _not_acceptable(api: ApiClient) -> Exchange:
    return api.put(link_path(nowhere_id(), nowhere_id()), headers={"Accept": "text/html"})


def _invalid(api: ApiClient) -> Exchange:
    return api.put(link_path("not-a-uuid", nowhere_id()))


ERRORS = {
    "404": (_not_found, 404, "NOT_FOUND"),
    "401": (_unauthorized, 401, "UNAUTHORIZED"),
    "406": (_not_acceptable, 406, "NOT_ACCEPTABLE"),
    "422": (_invalid, 422, "VALIDATION_ERROR"),
}


@pytest.mark.requirement(
    "ERR-PROBLEM-MEDIA-TYPE",
    "ERR-PROBLEM-MEMBERS",
    "ERR-PROBLEM-STATUS",
    "ERR-TYPE-URN",
    "ERR-REQUEST-ID",
    "ERR-INSTANCE-PATH",
    "ERR-CODE-KNOWN",
    "ERR-CODE-STATUS",
    "CODE-404",
    "CODE-422",
    "ERR-422-ERRORS",
)
@pytest.mark.parametrize("kind", list(ERRORS))
def test_error_is_a_problem_document(api: ApiClient, kind: str) -> None:
    produce, status, code = ERRORS[kind]
    exchange = produce(api)
    expect_problem(exchange, status, code, "ERR-CODE-STATUS")


@pytest.mark.requirement("HTTP-405-ALLOW")
def test_method_not_allowed_lists_allow(api: ApiClient) -> None:
    """The path has PUT only in the spec; PATCH is 405, with Allow (any problem code: the table
    has no row for 405)."""
    exchange = api.request("PATCH", link_path(nowhere_id(), nowhere_id()), json={})
    expect_status(exchange, 405, "HTTP-405-ALLOW")
    assert exchange.headers.get_value("allow"), "[HTTP-405-ALLOW] 405 without Allow"
