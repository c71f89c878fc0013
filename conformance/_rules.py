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
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

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


_DIGITS = re.compile(r"\s*\d+\s*")


def _as_int(value: str | None) -> int | None:
    if value is None or not _DIGITS.fullmatch(value):
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


# --- inherited HTTP rules (RFC 9110, RFC 8288) ------------------------------------------------


@rule
def unauthorized_carries_challenge(exchange: Exchange) -> Iterator[Violation]:
    if exchange.status == 401 and not exchange.headers.get_value("www-authenticate"):
        yield Violation("HTTP-401-WWW-AUTHENTICATE", "401 response has no WWW-Authenticate")


@rule
def method_not_allowed_lists_allow(exchange: Exchange) -> Iterator[Violation]:
    if exchange.status == 405 and not exchange.headers.get_value("allow"):
        yield Violation("HTTP-405-ALLOW", "405 response has no Allow header")


_LINK_PARAM = r'\s*;\s*[A-Za-z0-9!#$&+.^_`|~*-]+\s*(?:=\s*(?:"(?:[^"\\]|\\.)*"|[^\s;,"]+))?'
_LINK_VALUE = re.compile(rf"\s*<([^<>\s]*)>((?:{_LINK_PARAM})*)\s*(?:,|$)")
_LINK_REL = re.compile(r';\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))', re.IGNORECASE)


def parse_link_header(value: str) -> list[tuple[str, set[str]]] | None:
    """RFC 8288 links as (target, relation types); None when the header is not valid syntax."""
    links: list[tuple[str, set[str]]] = []
    position = 0
    while position < len(value):
        match = _LINK_VALUE.match(value, position)
        if match is None or match.end() == position:
            return None
        rels: set[str] = set()
        for rel in _LINK_REL.finditer(match.group(2)):
            rels.update((rel.group(1) or rel.group(2) or "").lower().split())
        links.append((match.group(1), rels))
        position = match.end()
    return links


@rule
def link_header_well_formed(exchange: Exchange) -> Iterator[Violation]:
    value = exchange.headers.get_value("link")
    if value is not None and not parse_link_header(value):
        yield Violation("HTTP-LINK-SYNTAX", f"Link header is not RFC 8288 syntax: {value!r}")


# --- caching ---------------------------------------------------------------------------------


def _is_successful_get(exchange: Exchange) -> bool:
    return exchange.method == "GET" and exchange.status == 200


@rule
def get_has_strong_etag(exchange: Exchange) -> Iterator[Violation]:
    if not _is_successful_get(exchange):
        return
    etag = exchange.headers.get_value("etag")
    if etag is None:
        yield Violation("CACHE-ETAG-STRONG", "GET response has no ETag")
    elif not re.fullmatch(r'"[\x21\x23-\x7e\x80-\xff]*"', etag.strip()):
        yield Violation("CACHE-ETAG-STRONG", f"ETag {etag!r} is not a strong entity tag")


@rule
def get_is_private_no_cache(exchange: Exchange) -> Iterator[Violation]:
    if not _is_successful_get(exchange):
        return
    value = exchange.headers.get_value("cache-control") or ""
    directives = {d.strip().lower().split("=", 1)[0] for d in value.split(",")}
    missing = [d for d in ("private", "no-cache") if d not in directives]
    if missing:
        yield Violation(
            "CACHE-CONTROL", f"Cache-Control {value!r} lacks {', '.join(missing)}"
        )


@rule
def not_modified_is_empty(exchange: Exchange) -> Iterator[Violation]:
    if exchange.status != 304:
        return
    if exchange.body:
        yield Violation("HTTP-304-NO-BODY", f"304 response has {len(exchange.body)} bytes")
    if exchange.headers.get_value("content-type"):
        yield Violation(
            "HTTP-304-NO-METADATA",
            f"304 response describes a body: Content-Type {exchange.headers['content-type']!r}",
        )


# --- public endpoints, rate limiting -----------------------------------------------------------


@rule
def public_endpoints_omit_rate_limit_headers(exchange: Exchange) -> Iterator[Violation]:
    if not is_public_endpoint(exchange):
        return
    present = [h for h in RATE_LIMIT_HEADERS if exchange.headers.get_value(h) is not None]
    if present:
        yield Violation("RL-PUBLIC-OMITTED", f"public endpoint sends {', '.join(present)}")


@rule
def retry_after_in_seconds(exchange: Exchange) -> Iterator[Violation]:
    """429 and 503 carry Retry-After as a number of seconds (the document says seconds, so the
    HTTP-date form is not accepted)."""
    requirement = {429: "RL-RETRY-AFTER", 503: "RL-RETRY-AFTER-503"}.get(exchange.status)
    if requirement is None:
        return
    value = exchange.headers.get_value("retry-after")
    if value is None:
        yield Violation(requirement, f"{exchange.status} response has no Retry-After")
    elif _as_int(value) is None:
        yield Violation(requirement, f"Retry-After {value!r} is not an integer number of seconds")


# --- content negotiation ----------------------------------------------------------------------

JSON_MEDIA_TYPES = frozenset({"application/json", PROBLEM_MEDIA_TYPE})


@rule
def responses_are_json(exchange: Exchange) -> Iterator[Violation]:
    if exchange.body and exchange.media_type not in JSON_MEDIA_TYPES:
        yield Violation(
            "NEG-JSON-ONLY", f"response body has Content-Type {exchange.media_type or 'none'!r}"
        )


# --- problem instance (SHOULD) -----------------------------------------------------------------


@rule
def problem_instance_is_request_path(exchange: Exchange) -> Iterator[Violation]:
    """The example's instance is a template; the request path is the natural value (SHOULD)."""
    body = _problem(exchange)
    instance = body.get("instance") if body else None
    if not isinstance(instance, str):
        return
    resolved = urlsplit(urljoin(exchange.url, instance)).path
    if unquote(resolved).rstrip("/") != unquote(exchange.path).rstrip("/"):
        yield Violation(
            "ERR-INSTANCE-PATH",
            f"problem instance {instance!r} is not the request path {exchange.path!r}",
        )


# --- collections -------------------------------------------------------------------------------

MIN_LIMIT, MAX_LIMIT = 1, 200


def collection_body(exchange: Exchange) -> dict[str, object] | None:
    """The body of a successful list response (``data`` is an array, no ``meta``)."""
    if not _is_successful_get(exchange):
        return None
    body = exchange.json()
    if isinstance(body, dict) and isinstance(body.get("data"), list) and "meta" not in body:
        return body
    return None


def _query(exchange: Exchange) -> dict[str, list[str]]:
    return parse_qs(urlsplit(exchange.url).query, keep_blank_values=True)


@rule
def collection_pagination_well_formed(exchange: Exchange) -> Iterator[Violation]:
    body = collection_body(exchange)
    pagination = body.get("pagination") if body else None
    if not isinstance(pagination, dict):
        return
    for member in ("next_cursor", "has_next", "limit"):
        if member not in pagination:
            yield Violation("ENV-PAGINATION-MEMBERS", f"pagination lacks {member!r}")
    has_next, cursor = pagination.get("has_next"), pagination.get("next_cursor")
    if "has_next" in pagination and not isinstance(has_next, bool):
        yield Violation("ENV-PAGINATION-MEMBERS", f"has_next is not a boolean: {has_next!r}")
    if has_next is True and not (isinstance(cursor, str) and cursor):
        yield Violation("ENV-PAGINATION-MEMBERS", "has_next is true, next_cursor is no string")
    limit = pagination.get("limit")
    if "limit" in pagination and not (
        isinstance(limit, int) and not isinstance(limit, bool) and MIN_LIMIT <= limit <= MAX_LIMIT
    ):
        yield Violation("PAGE-LIMIT-BOUNDS", f"pagination.limit {limit!r} is outside 1-200")
    wants_total = [v.lower() for v in _query(exchange).get("include_total", [])] == ["true"]
    total = pagination.get("total_count")
    if wants_total and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
        yield Violation(
            "PAGE-INCLUDE-TOTAL", f"include_total=true but pagination.total_count is {total!r}"
        )


@rule
def collection_links_first_and_next(exchange: Exchange) -> Iterator[Violation]:
    body = collection_body(exchange)
    if body is None:
        return
    value = exchange.headers.get_value("link")
    links = parse_link_header(value) if value is not None else []
    rels = set().union(*(r for _, r in links)) if links else set()
    if value is None or (links and "first" not in rels):
        yield Violation("PAGE-LINK-FIRST", 'list response has no Link with rel="first"')
    pagination = body.get("pagination")
    has_next = isinstance(pagination, dict) and pagination.get("has_next") is True
    if has_next and links is not None and "next" not in rels:
        yield Violation("PAGE-LINK-NEXT", 'has_next is true but no Link with rel="next"')
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
    if exchange.json() is not None:  # parsed (and kept) already: valid
        return
    try:
        json.loads(exchange.body)
    except (ValueError, UnicodeDecodeError) as exc:
        yield Violation(
            "HTTP-JSON-BODY",
            f"body declared as {exchange.media_type} is not valid JSON ({exc})",
        )
