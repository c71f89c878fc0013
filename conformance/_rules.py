"""The rules every response is judged by, whoever produced the exchange.

A rule is a small pure function ``(exchange) -> iterator of Violation``, named as the fact it
asserts and registered with :func:`rule`. Each violation names the requirement id it breaks, so
a failure anywhere (scenario, fuzzer, state machine) is reported against the same requirement.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from conformance._exchange import Exchange

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:creatoraudit:error:"

#: The document's code table: HTTP status -> the codes it lists for that status.
CODES_BY_STATUS: dict[int, frozenset[str]] = {
    400: frozenset({"BAD_REQUEST"}),
    401: frozenset({"UNAUTHORIZED"}),
    403: frozenset({"FORBIDDEN", "INSUFFICIENT_SCOPE", "QUOTA_EXCEEDED"}),
    404: frozenset({"NOT_FOUND"}),
    406: frozenset({"NOT_ACCEPTABLE"}),
    409: frozenset({"CONFLICT"}),
    415: frozenset({"UNSUPPORTED_MEDIA_TYPE"}),
    422: frozenset({"VALIDATION_ERROR"}),
    429: frozenset({"RATE_LIMITED"}),
    500: frozenset({"INTERNAL_ERROR"}),
    502: frozenset({"UPSTREAM_ERROR"}),
    503: frozenset({"SERVICE_UNAVAILABLE"}),
}
DOCUMENTED_CODES: frozenset[str] = frozenset().union(*CODES_BY_STATUS.values())
RATE_LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
PUBLIC_PATH_SUFFIXES = ("/health", "/meta")

#: Unix-time plausibility window for X-RateLimit-Reset: tolerate clock skew, reject millis.
RESET_PAST_TOLERANCE = 300
RESET_FUTURE_LIMIT = 7 * 24 * 3600


@dataclass(frozen=True)
class Violation:
    """One broken requirement, with a message that says what came back."""

    requirement: str
    message: str


Rule = Callable[[Exchange], Iterator[Violation]]
RULES: list[Rule] = []


def rule(func: Rule) -> Rule:
    """Register ``func`` as a rule applied to every exchange."""
    RULES.append(func)
    return func


def judge(exchange: Exchange) -> list[Violation]:
    """Every violation any rule finds in ``exchange``."""
    return [violation for check in RULES for violation in check(exchange)]


class RuleViolation(AssertionError):
    """Raised by producers when a response breaks a rule; carries the evidence."""

    def __init__(self, exchange: Exchange, violations: list[Violation]) -> None:
        self.exchange = exchange
        self.violations = violations
        found = "\n".join(f"[{v.requirement}] {exchange.mask(v.message)}" for v in violations)
        super().__init__(
            f"{found}\nrequest: {exchange.describe()}\n{exchange.evidence()}\n"
            f"reproduce: {exchange.curl()}"
        )


def is_public_endpoint(exchange: Exchange) -> bool:
    """``GET /health`` and ``GET /meta``: unauthenticated, unlimited, shape not documented."""
    return exchange.method == "GET" and exchange.path.rstrip("/").endswith(PUBLIC_PATH_SUFFIXES)


def is_problem_status(status: int) -> bool:
    return status >= 400


# --- correlation ids -----------------------------------------------------------------------


@rule
def request_id_present(exchange: Exchange) -> Iterator[Violation]:
    if not exchange.headers.get_value("x-request-id"):
        yield Violation("HDR-REQUEST-ID", "response has no X-Request-ID header")


@rule
def request_id_echoed(exchange: Exchange) -> Iterator[Violation]:
    sent = exchange.sent_request_id
    got = exchange.headers.get_value("x-request-id")
    if sent and got and got != sent:
        yield Violation("HDR-REQUEST-ID-ECHO", f"sent X-Request-ID {sent!r}, got back {got!r}")


# --- rate-limit headers --------------------------------------------------------------------


def _rate_limit_headers_required(exchange: Exchange) -> bool:
    """Authenticated responses must carry them. The document does not settle whether a 401, an
    inactive-key 403, or an error raised before authentication (400, 405, 406, 415, 422) is
    "authenticated", so those may omit them."""
    if is_public_endpoint(exchange) or not exchange.principal.is_accepted:
        return False
    if exchange.status < 400:
        return True
    if exchange.status == 403:
        body = exchange.json()
        return isinstance(body, dict) and body.get("code") == "INSUFFICIENT_SCOPE"
    return exchange.status in {404, 409, 429}


@rule
def rate_limit_headers_present(exchange: Exchange) -> Iterator[Violation]:
    if not _rate_limit_headers_required(exchange):
        return
    missing = [h for h in RATE_LIMIT_HEADERS if exchange.headers.get_value(h) is None]
    if missing:
        yield Violation("RL-HEADERS", f"authenticated response lacks {', '.join(missing)}")


def _as_int(value: str | None) -> int | None:
    if value is None or not re.fullmatch(r"\s*\d+\s*", value):
        return None
    return int(value)


@rule
def rate_limit_headers_well_formed(exchange: Exchange) -> Iterator[Violation]:
    values = {h: exchange.headers.get_value(h) for h in RATE_LIMIT_HEADERS}
    for name, raw in values.items():
        if raw is not None and _as_int(raw) is None:
            yield Violation("RL-HEADERS-FORMAT", f"{name} is not a non-negative integer: {raw!r}")
    limit, remaining = (
        _as_int(values["x-ratelimit-limit"]),
        _as_int(values["x-ratelimit-remaining"]),
    )
    if limit is not None and remaining is not None and remaining > limit:
        yield Violation(
            "RL-HEADERS-FORMAT", f"X-RateLimit-Remaining {remaining} exceeds limit {limit}"
        )
    reset = _as_int(values["x-ratelimit-reset"])
    now = time.time()
    if reset is not None and not now - RESET_PAST_TOLERANCE <= reset <= now + RESET_FUTURE_LIMIT:
        yield Violation(
            "RL-RESET-UNIX",
            f"X-RateLimit-Reset {reset} is not a plausible Unix time in seconds (now {int(now)})",
        )


# --- problem details -----------------------------------------------------------------------

REQUIRED_PROBLEM_MEMBERS: dict[str, type] = {
    "type": str,
    "title": str,
    "status": int,
    "detail": str,
    "code": str,
}


@rule
def problem_media_type(exchange: Exchange) -> Iterator[Violation]:
    if is_problem_status(exchange.status) and exchange.media_type != PROBLEM_MEDIA_TYPE:
        yield Violation(
            "ERR-PROBLEM-MEDIA-TYPE",
            f"error response has Content-Type {exchange.media_type or 'none'!r}, "
            f"expected {PROBLEM_MEDIA_TYPE}",
        )


@rule
def problem_members_present(exchange: Exchange) -> Iterator[Violation]:
    if not is_problem_status(exchange.status):
        return
    body = exchange.json()
    if not isinstance(body, dict):
        yield Violation("ERR-PROBLEM-MEMBERS", "error response body is not a JSON object")
        return
    for member, kind in REQUIRED_PROBLEM_MEMBERS.items():
        value = body.get(member)
        if member not in body:
            yield Violation("ERR-PROBLEM-MEMBERS", f"problem body lacks {member!r}")
        elif not isinstance(value, kind) or isinstance(value, bool):
            yield Violation(
                "ERR-PROBLEM-MEMBERS", f"problem member {member!r} is not a {kind.__name__}"
            )


def _problem(exchange: Exchange) -> dict[str, object] | None:
    body = exchange.json()
    return body if is_problem_status(exchange.status) and isinstance(body, dict) else None


@rule
def problem_status_matches(exchange: Exchange) -> Iterator[Violation]:
    body = _problem(exchange)
    if (
        body is not None
        and isinstance(body.get("status"), int)
        and body["status"] != exchange.status
    ):
        yield Violation(
            "ERR-PROBLEM-STATUS",
            f"problem status {body['status']} differs from HTTP {exchange.status}",
        )


@rule
def problem_code_documented(exchange: Exchange) -> Iterator[Violation]:
    """For statuses the table lists, the code must be one listed for that status. The table has
    no row for other statuses (e.g. 405), so no particular code is required there."""
    body = _problem(exchange)
    code = body.get("code") if body else None
    if not isinstance(code, str) or exchange.status not in CODES_BY_STATUS:
        return
    if code not in DOCUMENTED_CODES:
        yield Violation("ERR-CODE-KNOWN", f"code {code!r} is not a documented code")
    elif code not in CODES_BY_STATUS[exchange.status]:
        expected = ", ".join(sorted(CODES_BY_STATUS[exchange.status]))
        yield Violation(
            "ERR-CODE-STATUS",
            f"code {code!r} does not belong to HTTP {exchange.status} ({expected})",
        )


@rule
def problem_request_id_matches(exchange: Exchange) -> Iterator[Violation]:
    body = _problem(exchange)
    if body is None:
        return
    header = exchange.headers.get_value("x-request-id")
    if "request_id" not in body:
        yield Violation("ERR-REQUEST-ID", "problem body lacks 'request_id'")
    elif header and body["request_id"] != header:
        yield Violation(
            "ERR-REQUEST-ID",
            f"problem request_id {body['request_id']!r} differs from X-Request-ID {header!r}",
        )


@rule
def problem_type_is_urn(exchange: Exchange) -> Iterator[Violation]:
    body = _problem(exchange)
    value = body.get("type") if body else None
    if isinstance(value, str) and not value.startswith(PROBLEM_TYPE_PREFIX):
        yield Violation(
            "ERR-TYPE-URN", f"problem type {value!r} is not a {PROBLEM_TYPE_PREFIX}… URN"
        )


@rule
def validation_problem_lists_errors(exchange: Exchange) -> Iterator[Violation]:
    body = _problem(exchange)
    if body is None or exchange.status != 422:
        return
    errors = body.get("errors")
    if not isinstance(errors, list) or not errors:
        yield Violation("ERR-422-ERRORS", "422 problem has no non-empty 'errors' array")
        return
    for entry in errors:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("field"), str)
            and isinstance(entry.get("message"), str)
        ):
            yield Violation(
                "ERR-422-ERRORS", f"'errors' entry is not {{field, message}}: {entry!r}"
            )
            return


# --- envelope ------------------------------------------------------------------------------


@rule
def success_body_enveloped(exchange: Exchange) -> Iterator[Violation]:
    """Successful JSON responses are ``{"data": ...}``; collections add pagination and filters.
    The System endpoints are exempt: the document gives no shape for liveness checks."""
    if not 200 <= exchange.status < 300 or not exchange.body or is_public_endpoint(exchange):
        return
    body = exchange.json()
    if not isinstance(body, dict) or "data" not in body:
        yield Violation("ENV-DATA", 'successful response is not wrapped in {"data": ...}')
        return
    if isinstance(body["data"], list) and "meta" not in body:
        for member in ("pagination", "filters"):
            if not isinstance(body.get(member), dict):
                yield Violation("ENV-COLLECTION", f"collection response lacks object {member!r}")


# --- media types ---------------------------------------------------------------------------


def declares_json(exchange: Exchange) -> bool:
    media = exchange.media_type
    return media == "application/json" or media.endswith("+json")


@rule
def declared_json_body_parses(exchange: Exchange) -> Iterator[Violation]:
    """A body sent as JSON must be JSON: a client would otherwise fail to read any answer.
    A body the suite truncated at its size cap is not judged here (the cap reports it)."""
    if not exchange.body or exchange.truncated or not declares_json(exchange):
        return
    try:
        json.loads(exchange.body)
    except (ValueError, UnicodeDecodeError) as exc:
        yield Violation(
            "HTTP-JSON-BODY",
            f"body declared as {exchange.media_type} is not valid JSON ({exc})",
        )
