"""Catalogue of deliberate deviations the reference server can be switched into.

Each fault is a single, realistic way an implementation of the CreatorAudit v2
API could drift from its published document.  The conformance suite is run
against the reference server with one fault switched on to prove that some
check notices it; a fault that no check notices marks a gap in the suite.

Adding a fault is one entry here plus one ``if "<name>" in settings.faults``
at the exact place in ``_app.py``/``_store.py`` where the correct behaviour
lives, so the deviation stays local and readable.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["FAULTS", "validate_faults"]

FAULTS: dict[str, str] = {
    "relink-returns-201": "a re-link to the creator that already owns the account answers 201 "
    "instead of 200",
    "conflict-returns-200": "linking an account owned by another creator answers 200 and moves "
    "the account instead of 409",
    "conflict-moves-account": "linking an account owned by another creator answers the proper "
    "409 but moves the account to the new creator anyway",
    "relink-after-conflict-201": "after a 409 on an account, the next re-link to its owner "
    "answers 201 instead of 200",
    "created-without-location": "the 201 of a first link carries no Location header",
    "problem-without-code": "problem-details bodies lack the `code` member",
    "request-id-not-echoed": "a client-sent X-Request-ID is replaced by a newly minted one",
    "foreign-account-linkable": "an account owned by another organization can be linked (201) "
    "instead of answering 404",
    "uppercase-uuid-500": "a path UUID written with uppercase hex digits makes the link "
    "operation answer 500 instead of being normalised",
    "validation-without-errors": "422 problems lack the `errors` array",
    "problem-plain-json-content-type": "problems are sent as application/json instead of "
    "application/problem+json",
    "weak-etag": 'ETags are weak (W/"...") instead of strong',
    "not-modified-with-body": "the 304 describes the full representation (Content-Type and its "
    "non-zero Content-Length) instead of being empty",
    "ratelimit-reset-in-millis": "X-RateLimit-Reset is a Unix time in milliseconds instead of "
    "seconds",
    "no-www-authenticate": "401 responses lack the WWW-Authenticate challenge",
    "readonly-key-can-write": "a key with only the read scope passes the write-scope check",
    "link-body-not-json": "the link operation's answers declare application/json but the body "
    "is an HTML page",
    "idempotency-key-ignored": "a repeated POST with the same Idempotency-Key creates a new "
    "resource instead of replaying the first result",
    # -- link operation
    "first-link-returns-200": "a first link answers 200 instead of 201 Created",
    "link-record-unwrapped": 'a first link returns the bare record instead of {"data": ...}',
    "missing-creator-422": "a link to a creator that does not exist answers 422 instead of 404",
    "non-uuid-path-404": "a path id that is not a UUID answers 404 instead of 422",
    "link-location-points-to-account": "the 201 of a first link points Location at the "
    "account instead of the link",
    # -- authentication and scopes
    "api-key-header-only": "the key is read from X-API-Key only; a bearer token is refused",
    "foreign-creator-readable": "GET /creators/{id} shows another organization's creator",
    "missing-key-403": "a request without credentials answers 403 instead of 401",
    "invalid-key-403": "an unknown key answers 403 instead of 401",
    "inactive-key-accepted": "an inactive key is treated as active",
    "readonly-key-cannot-read": "a read-only key gets 403 INSUFFICIENT_SCOPE on GETs",
    "bearer-scheme-case-sensitive": "only the exact spelling `Bearer` is accepted as scheme",
    # -- collections
    "list-without-filters": "list responses lack the `filters` member",
    "pagination-without-has-next": "pagination lacks `has_next`",
    "filters-not-echoed": "`filters` is always empty, whatever filter produced the page",
    "cursor-ignored": "the cursor is ignored: every page is the first page",
    "limit-unbounded": "limits above 200 are accepted and used",
    "has-next-always-true": "has_next is true (with a cursor) even on the final page",
    "cursor-not-bound-to-filters": "a cursor is accepted under a different filter",
    "total-count-missing": "include_total=true does not add total_count",
    "list-without-link": "list responses carry no Link header",
    "link-without-next": 'the Link header never has rel="next"',
    "link-header-malformed": "Link targets are not enclosed in <...> (not RFC 8288 syntax)",
    # -- caching
    "cache-control-public": "GET responses say Cache-Control: public, max-age=60",
    "if-none-match-ignored": "If-None-Match is ignored: always the full 200",
    "if-none-match-always-304": "any If-None-Match, even another ETag, answers 304",
    # -- rate limits and public endpoints
    "rate-limit-shared-across-keys": "all keys count against one shared window",
    "ratelimit-headers-missing": "authenticated responses lack X-RateLimit-*",
    "ratelimit-limit-not-integer": "X-RateLimit-Limit reads like `10000/60s`",
    "ratelimit-remaining-constant": "X-RateLimit-Remaining never goes down",
    "health-requires-key": "GET /health requires credentials",
    "public-endpoints-rate-limited": "GET /health and /meta are rate limited (one anonymous "
    "window) and carry X-RateLimit-*",
    "rate-limit-exceeded-503": "an exhausted window answers 503 SERVICE_UNAVAILABLE, not 429",
    "retry-after-missing": "429 responses carry no Retry-After",
    # -- content negotiation
    "health-text-plain": "GET /health answers text/plain `ok`",
    "accept-ignored": "an Accept that excludes JSON is ignored (no 406)",
    "accept-wildcard-rejected": "Accept: application/* is refused with 406",
    "non-json-body-400": "a text/plain write body answers 400 instead of 415",
    # -- problem details
    "problem-status-mismatch": "422 problems say status 400",
    "problem-type-url": "problem type is an https URL instead of a urn:creatoraudit:error URN",
    "unknown-error-code": "404 problems use the undocumented code RESOURCE_NOT_FOUND",
    "not-found-code-bad-request": "404 problems use the code BAD_REQUEST",
    "problem-instance-template": "problem instance is the literal template /v2/accounts/{id}",
    "problem-without-request-id": "problem bodies lack `request_id`",
    "malformed-json-500": "a write body that is not valid JSON crashes the server (500)",
    # -- creates, headers
    "create-without-location": "the 201 of POST /creators and /accounts has no Location",
    "no-request-id-on-public": "GET /health and /meta carry no X-Request-ID",
    "method-not-allowed-without-allow": "405 responses lack the Allow header",
    "echo-credentials": "every response echoes the presented Authorization value back, in an "
    "X-Debug-Authorization header and in a `debug` member of JSON bodies",
}


def validate_faults(names: Iterable[str]) -> None:
    """Reject unknown fault names early: a typo would otherwise silently test nothing."""
    unknown = sorted(set(names) - FAULTS.keys())
    if unknown:
        known = ", ".join(sorted(FAULTS))
        raise ValueError(f"unknown fault(s): {', '.join(unknown)}; known faults: {known}")
