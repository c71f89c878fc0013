"""Each rule fails on the deviation it names and passes on a conforming exchange."""

from __future__ import annotations

import pytest

from conformance import Exchange, Principal, RuleViolation, judge
from tests._factories import SECRET, exchange, problem, rate_limit_headers

PAGE = {"next_cursor": None, "has_next": False, "limit": 50}


def requirements_broken(ex: Exchange) -> set[str]:
    return {v.requirement for v in judge(ex)}


@pytest.mark.parametrize(
    "ex",
    [
        exchange(201),
        exchange(200),
        exchange(404),
        exchange(401, principal=Principal.NONE),
        exchange(422, problem(422, "VALIDATION_ERROR", errors=[{"field": "x", "message": "m"}])),
        exchange(405, problem(405, "BAD_REQUEST")),
        exchange(200, {"status": "ok"}, method="GET", path="/v2/health", principal=Principal.NONE),
        exchange(200, {"data": [], "pagination": PAGE, "filters": {}}, method="GET", path="/v2/x"),
        exchange(204, b""),
        exchange(404, problem(404, "NOT_FOUND", retry_hint="later", links=[])),
        exchange(304, b"", method="GET", content_type=""),
    ],
    ids=[
        "201",
        "200",
        "404",
        "401",
        "422",
        "405-any-code",
        "health-unwrapped",
        "collection",
        "204-empty",
        "problem-extension-members",
        "304-empty",
    ],
)
def test_conforming_exchange_breaks_nothing(ex: Exchange) -> None:
    assert judge(ex) == []


BROKEN = {
    "no-request-id": (exchange(200, headers={"X-Request-ID": ""}), "HDR-REQUEST-ID"),
    "request-id-not-echoed": (
        exchange(200, headers={"X-Request-ID": "other"}),
        "HDR-REQUEST-ID-ECHO",
    ),
    "rate-limit-not-int": (
        exchange(200, headers={"X-RateLimit-Limit": "lots"}),
        "RL-HEADERS-FORMAT",
    ),
    "remaining-over-limit": (
        exchange(200, headers={"X-RateLimit-Remaining": "101"}),
        "RL-HEADERS-FORMAT",
    ),
    "reset-in-millis": (
        exchange(200, headers={"X-RateLimit-Reset": "1790000000000"}),
        "RL-RESET-UNIX",
    ),
    "problem-as-json": (exchange(404, content_type="application/json"), "ERR-PROBLEM-MEDIA-TYPE"),
    "problem-not-object": (exchange(404, b"oops"), "ERR-PROBLEM-MEMBERS"),
    "problem-without-code": (
        exchange(404, {k: v for k, v in problem(404, "NOT_FOUND").items() if k != "code"}),
        "ERR-PROBLEM-MEMBERS",
    ),
    "problem-status-string": (
        exchange(404, problem(404, "NOT_FOUND") | {"status": "404"}),
        "ERR-PROBLEM-MEMBERS",
    ),
    "problem-status-differs": (exchange(404, problem(400, "NOT_FOUND")), "ERR-PROBLEM-STATUS"),
    "code-unknown": (exchange(404, problem(404, "MISSING")), "ERR-CODE-KNOWN"),
    "code-wrong-status": (exchange(404, problem(404, "CONFLICT")), "ERR-CODE-STATUS"),
    "request-id-body-missing": (
        exchange(404, {k: v for k, v in problem(404, "NOT_FOUND").items() if k != "request_id"}),
        "ERR-REQUEST-ID",
    ),
    "request-id-body-differs": (
        exchange(404, problem(404, "NOT_FOUND", request_id="zz")),
        "ERR-REQUEST-ID",
    ),
    "type-not-urn": (
        exchange(404, problem(404, "NOT_FOUND") | {"type": "about:blank"}),
        "ERR-TYPE-URN",
    ),
    "422-without-errors": (exchange(422, problem(422, "VALIDATION_ERROR")), "ERR-422-ERRORS"),
    "422-errors-without-field": (
        exchange(422, problem(422, "VALIDATION_ERROR", errors=[{"message": "m"}])),
        "ERR-422-ERRORS",
    ),
    "success-not-enveloped": (exchange(201, {"id": "x"}), "ENV-DATA"),
    "json-declared-html-sent": (exchange(201, b"<html>hello</html>"), "HTTP-JSON-BODY"),
    "json-cut-short": (exchange(201, b'{"data": {"id": '), "HTTP-JSON-BODY"),
    "collection-without-pagination": (
        exchange(200, {"data": [], "filters": {}}, method="GET"),
        "ENV-COLLECTION",
    ),
    **{
        # the rules added with the catalogue: inherited HTTP, caching, collections, negotiation
        "401-without-challenge": (
            exchange(401, principal=Principal.NONE, headers={"WWW-Authenticate": ""}),
            "HTTP-401-WWW-AUTHENTICATE",
        ),
        "405-without-allow": (
            exchange(405, problem(405, "BAD_REQUEST"), headers={"Allow": ""}),
            "HTTP-405-ALLOW",
        ),
        "weak-etag": (exchange(200, method="GET", headers={"ETag": 'W/"x"'}), "CACHE-ETAG-STRONG"),
        "public-cache-control": (
            exchange(200, method="GET", headers={"Cache-Control": "public, max-age=60"}),
            "CACHE-CONTROL",
        ),
        "304-with-content-type": (exchange(304, b""), "HTTP-304-NO-METADATA"),
        "public-endpoint-rate-limited": (
            exchange(
                200,
                {"status": "ok"},
                method="GET",
                path="/v2/health",
                principal=Principal.NONE,
                headers=rate_limit_headers(),
            ),
            "RL-PUBLIC-OMITTED",
        ),
        "429-without-retry-after": (exchange(429, problem(429, "RATE_LIMITED")), "RL-RETRY-AFTER"),
        "retry-after-as-date": (
            exchange(
                429,
                problem(429, "RATE_LIMITED"),
                headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"},
            ),
            "RL-RETRY-AFTER",
        ),
        "text-plain-body": (exchange(200, b"ok", content_type="text/plain"), "NEG-JSON-ONLY"),
        "instance-template": (
            exchange(404, problem(404, "NOT_FOUND", instance="/v2/accounts/{id}")),
            "ERR-INSTANCE-PATH",
        ),
        "list-without-first-link": (
            exchange(
                200,
                {"data": [], "pagination": PAGE, "filters": {}},
                method="GET",
                headers={"Link": '</v2/x>; rel="prev"'},
            ),
            "PAGE-LINK-FIRST",
        ),
        "has-next-without-next-link": (
            exchange(
                200,
                {
                    "data": [],
                    "pagination": PAGE | {"has_next": True, "next_cursor": "c"},
                    "filters": {},
                },
                method="GET",
            ),
            "PAGE-LINK-NEXT",
        ),
        "link-without-angle-brackets": (
            exchange(200, method="GET", headers={"Link": "/v2/x?limit=1; rel=first"}),
            "HTTP-LINK-SYNTAX",
        ),
        "limit-out-of-range": (
            exchange(
                200, {"data": [], "pagination": PAGE | {"limit": 500}, "filters": {}}, method="GET"
            ),
            "PAGE-LIMIT-BOUNDS",
        ),
        "include-total-ignored": (
            exchange(
                200,
                {"data": [], "pagination": PAGE, "filters": {}},
                method="GET",
                path="/v2/x?include_total=true",
            ),
            "PAGE-INCLUDE-TOTAL",
        ),
        "pagination-without-has-next": (
            exchange(
                200,
                {"data": [], "pagination": {"next_cursor": None, "limit": 5}, "filters": {}},
                method="GET",
            ),
            "ENV-PAGINATION-MEMBERS",
        ),
    },
}


@pytest.mark.parametrize(("ex", "requirement"), list(BROKEN.values()), ids=list(BROKEN))
def test_deviation_breaks_its_requirement(ex: Exchange, requirement: str) -> None:
    assert requirement in requirements_broken(ex)


@pytest.mark.parametrize("principal", [Principal.FULL, Principal.READONLY, Principal.OTHER_ORG])
def test_rate_limit_headers_required_for_accepted_keys(principal: Principal) -> None:
    ex = exchange(200, principal=principal)
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        del ex.headers[name]
    assert "RL-HEADERS" in requirements_broken(ex)


@pytest.mark.parametrize(
    ("status", "code", "principal"),
    [
        (401, "UNAUTHORIZED", Principal.FULL),
        (403, "FORBIDDEN", Principal.INACTIVE),
        (422, "VALIDATION_ERROR", Principal.FULL),
        (406, "NOT_ACCEPTABLE", Principal.FULL),
    ],
    ids=["401", "inactive-403", "422-maybe-before-auth", "406-maybe-before-auth"],
)
def test_rate_limit_headers_optional_where_document_is_silent(
    status: int, code: str, principal: Principal
) -> None:
    body = problem(status, code, errors=[{"field": "f", "message": "m"}])
    ex = exchange(status, body, principal=principal)
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        ex.headers.pop(name, None)
    assert judge(ex) == []


def test_violation_message_names_rule_and_request_but_no_secret() -> None:
    ex = exchange(404, problem(404, "CONFLICT"), headers={"X-Echo": SECRET})
    message = str(RuleViolation(ex, judge(ex)))
    assert "[ERR-CODE-STATUS]" in message
    assert "PUT http://127.0.0.1:1/v2/creators/c/accounts/a" in message
    assert SECRET not in message
    assert "$CREATORAUDIT_API_KEY" in message
