"""The reference implementation of the CreatorAudit v2 API as a Starlette app.

One catch-all ASGI endpoint runs an explicit request pipeline instead of
Starlette's router and middleware stack.  The document fixes an order of
checks (request id, 406, 401/403, 429, 415/400, 404/405, scope, 422, 404,
operation) that cuts across routing -- an unauthenticated request to an
unknown path must get 401, a known path with the wrong method 405 only after
authentication -- and a single linear pipeline states that order in one place.

Faults (see ``_faults.py``) are checked at the exact spot where the correct
behaviour is implemented, so each deviation is one visible ``if``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._faults import validate_faults
from ._store import ORG_A, ORG_B, Principal, Record, ReferenceKeys, Store, StoredResponse

__all__ = ["ReferenceSettings", "create_app"]

logger = logging.getLogger(__name__)

PREFIX = "/v2"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PLATFORMS = ("instagram", "tiktok")
MAX_LIMIT, DEFAULT_LIMIT, MAX_TEXT = 200, 50, 200

_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_VISIBLE_ASCII_RE = re.compile(r"[\x21-\x7e]{1,200}")
_TOKEN68_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
_DIGITS_RE = re.compile(r"[0-9]{1,6}")
_OPAQUE_TAG_RE = re.compile(r'\s*(W/)?("[^"]*")\s*')


@dataclass
class ReferenceSettings:
    """Runtime configuration of a reference server.

    `faults` is read on every request, so tests may add or remove fault names
    while the server runs.
    """

    keys: ReferenceKeys = field(default_factory=ReferenceKeys.generate)
    faults: set[str] = field(default_factory=set)
    rate_limit: int = 10000
    rate_window_seconds: int = 60
    account_quota: int | None = None
    db_path: str = ":memory:"

    def __post_init__(self) -> None:
        """Fail fast on settings that would make the server silently misbehave."""
        if not isinstance(self.faults, set):
            self.faults = set(self.faults)
        validate_faults(self.faults)
        if self.rate_limit < 1 or self.rate_window_seconds < 1:
            raise ValueError("rate_limit and rate_window_seconds must be >= 1")
        if self.account_quota is not None and self.account_quota < 0:
            raise ValueError("account_quota must be >= 0 or None")


class ApiError(Exception):
    """An error answer, raised anywhere in the pipeline and rendered as a problem."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.errors = errors
        self.headers = dict(headers or {})


def _validation_error(errors: list[dict[str, str]]) -> ApiError:
    """A 422 whose detail summarises the failing fields."""
    names = ", ".join(e["field"] for e in errors)
    return ApiError(422, "VALIDATION_ERROR", f"Request failed validation: {names}.", errors=errors)


def _field_error(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message}


@dataclass
class Result:
    """A successful answer before the pipeline adds caching and common headers."""

    status: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object, headers: dict[str, str] | None = None) -> Result:
        return cls(status, _dump(payload), dict(headers or {}))


def _dump(payload: object) -> bytes:
    """Compact, deterministic JSON so equal representations get equal ETags."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Exchange:
    """Per-request state threaded through the pipeline."""

    request: Request
    request_id: str
    path: str
    principal: Principal | None = None
    api_key: str = ""
    common_headers: dict[str, str] = field(default_factory=dict)
    body: object = None
    has_body: bool = False

    @property
    def org(self) -> str:
        assert self.principal is not None, "org used on a public endpoint"
        return self.principal.org


Handler = Callable[[Exchange, dict[str, str]], Result]


@dataclass(frozen=True)
class RouteSpec:
    """A path template (segments, `{name}` for parameters) and its method handlers."""

    segments: tuple[str, ...]
    methods: dict[str, Handler]
    public: bool = False

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """Path parameters (percent-decoded) if `parts` fit this template, else None."""
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for template, part in zip(self.segments, parts, strict=True):
            if template.startswith("{"):
                if not part:
                    return None
                params[template[1:-1]] = unquote(part)
            elif template != part:
                return None
        return params


@dataclass(frozen=True)
class RateDecision:
    """Outcome of counting one request against its key's window."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int
    retry_after: int


class RateLimiter:
    """Fixed-window request counter per API key."""

    def __init__(self, settings: ReferenceSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._window_start = 0
        self._counts: dict[str, int] = {}

    def hit(self, key: str) -> RateDecision:
        """Count a request; windows are aligned to multiples of the window length."""
        limit, window = self._settings.rate_limit, self._settings.rate_window_seconds
        now = time.time()
        start = int(now // window) * window
        with self._lock:
            if start != self._window_start:
                self._window_start, self._counts = start, {}
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        reset_at = start + window
        retry_after = max(1, math.ceil(reset_at - now))
        return RateDecision(count <= limit, limit, max(0, limit - count), reset_at, retry_after)


# -- header parsing helpers ------------------------------------------------------------


def _parse_q(params: list[str]) -> float | None:
    """The q-value of a media range (1.0 by default), None when it is malformed."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None
            return q if 0.0 <= q <= 1.0 else None
    return 1.0


def _specificity(media_range: str) -> int:
    """How precisely a media range names application/json (-1: it does not match)."""
    kind, _, sub = media_range.strip().lower().partition("/")
    if (kind, sub) == ("application", "json"):
        return 3
    if (kind, sub) == ("application", "*"):
        return 2
    if (kind, sub) == ("*", "*"):
        return 1
    return -1


def accepts_json(header: str | None) -> bool:
    """RFC 9110 content negotiation: the most specific range matching JSON decides, q>0."""
    if header is None or not header.strip():
        return True
    best_rank, best_q = -1, 0.0
    for item in header.split(","):
        media_range, *params = item.split(";")
        rank, q = _specificity(media_range), _parse_q(params)
        if rank < 0 or q is None:
            continue
        if rank > best_rank or (rank == best_rank and q > best_q):
            best_rank, best_q = rank, q
    return best_rank >= 0 and best_q > 0


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _if_none_match_hits(header: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 13.1.2): `*`, or any listed tag with the same opaque part."""
    if header.strip() == "*":
        return True
    ours = etag.removeprefix("W/")
    for candidate in header.split(","):
        match = _OPAQUE_TAG_RE.fullmatch(candidate)
        if match is not None and match.group(2) == ours:
            return True
    return False


def _bad_json_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


# -- the application -------------------------------------------------------------------


class ReferenceApi:
    """ASGI callable holding the store, the rate limiter and the route table."""

    def __init__(self, settings: ReferenceSettings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.principals = settings.keys.principals()
        self.limiter = RateLimiter(settings)
        self.cursor_secret = secrets.token_bytes(32)
        self.routes = self._route_table()

    @property
    def faults(self) -> set[str]:
        return self.settings.faults

    def _route_table(self) -> list[RouteSpec]:
        return [
            RouteSpec(("health",), {"GET": self.health}, public=True),
            RouteSpec(("meta",), {"GET": self.meta}, public=True),
            RouteSpec(("creators",), {"GET": self.list_creators, "POST": self.create_creator}),
            RouteSpec(
                ("creators", "{creator_id}"),
                {"GET": self.get_creator, "DELETE": self.delete_creator},
            ),
            RouteSpec(("accounts",), {"GET": self.list_accounts, "POST": self.create_account}),
            RouteSpec(
                ("accounts", "{account_id}"),
                {"GET": self.get_account, "DELETE": self.delete_account},
            ),
            RouteSpec(
                ("creators", "{creator_id}", "accounts", "{account_id}"),
                {"GET": self.get_link, "PUT": self.put_link, "DELETE": self.delete_link},
            ),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    # -- pipeline ------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """Run the pipeline; every outcome, even a crash, becomes a decorated response."""
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        ex = Exchange(request, self._request_id(request), raw_path.decode("latin-1"))
        try:
            response = await self._pipeline(ex)
        except ApiError as err:
            response = self._problem(ex, err)
        except Exception:
            logger.info("reference server: unexpected error on %s", ex.path, exc_info=True)
            detail = "An unexpected error occurred."
            response = self._problem(ex, ApiError(500, "INTERNAL_ERROR", detail))
        public_path = ex.path in (f"{PREFIX}/health", f"{PREFIX}/meta")
        if not ("no-request-id-on-public" in self.faults and public_path):
            response.headers["X-Request-ID"] = ex.request_id
        response.headers.update(ex.common_headers)
        if "echo-credentials" in self.faults:
            response = _echo_credentials(response, request.headers.get("authorization"))
        return response

    def _request_id(self, request: Request) -> str:
        """Echo a sane client id so callers can correlate; otherwise mint one."""
        sent = request.headers.get("x-request-id")
        if "request-id-not-echoed" in self.faults:
            sent = None
        if sent is not None and _VISIBLE_ASCII_RE.fullmatch(sent):
            return sent
        return uuid.uuid4().hex

    async def _pipeline(self, ex: Exchange) -> Response:
        """The documented order of checks, one step per line."""
        path = ex.path
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            raise ApiError(404, "NOT_FOUND", "No such endpoint; the API lives under /v2.")
        self._negotiate(ex)
        route, params = self._match(path)
        health_needs_key = "health-requires-key" in self.faults and path == f"{PREFIX}/health"
        if route is None or not route.public or health_needs_key:
            self._authenticate(ex)
            self._rate_limit(ex)
        elif "public-endpoints-rate-limited" in self.faults:
            ex.api_key = "anonymous"
            self._rate_limit(ex)
        await self._read_body(ex)
        handler = self._dispatch(ex, route)
        self._check_scope(ex)
        result = handler(ex, params)
        return self._render(ex, result)

    def _negotiate(self, ex: Exchange) -> None:
        accept = ex.request.headers.get("accept")
        if "accept-ignored" in self.faults:
            accept = None
        if "accept-wildcard-rejected" in self.faults and "application/*" in (accept or ""):
            accept = "text/html"
        if not accepts_json(accept):
            detail = "This API only produces application/json."
            raise ApiError(406, "NOT_ACCEPTABLE", detail)

    def _match(self, path: str) -> tuple[RouteSpec | None, dict[str, str]]:
        parts = path[len(PREFIX) + 1 :].split("/")
        for route in self.routes:
            params = route.match(parts)
            if params is not None:
                return route, params
        return None, {}

    def _authenticate(self, ex: Exchange) -> None:
        """Bearer auth: 401 for missing/malformed/unknown keys, 403 for inactive ones."""
        value = ex.request.headers.get("authorization")
        if "api-key-header-only" in self.faults:
            header_key = ex.request.headers.get("x-api-key")
            value = None if header_key is None else f"Bearer {header_key}"
        if value is None and "missing-key-403" in self.faults:
            raise ApiError(403, "FORBIDDEN", "No API key.")
        if value is None:
            raise self._unauthorized("Missing Authorization header.")
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if "bearer-scheme-case-sensitive" in self.faults:
            scheme = scheme if scheme == "Bearer" else "Other"
        if scheme.lower() != "bearer":
            raise self._unauthorized("The Authorization scheme must be Bearer.")
        if not _TOKEN68_RE.fullmatch(token):
            raise self._unauthorized("Malformed bearer token.")
        principal = self._lookup_key(token)
        if principal is None and "invalid-key-403" in self.faults:
            raise ApiError(403, "FORBIDDEN", "Unknown API key.")
        if principal is None:
            raise self._unauthorized("Invalid API key.")
        if not principal.active and "inactive-key-accepted" not in self.faults:
            raise ApiError(403, "FORBIDDEN", "This API key or its subscription is inactive.")
        ex.principal, ex.api_key = principal, token

    def _lookup_key(self, token: str) -> Principal | None:
        """Constant-time comparison against every key, so timing reveals nothing."""
        found: Principal | None = None
        for key, principal in self.principals.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                found = principal
        return found

    def _unauthorized(self, detail: str) -> ApiError:
        headers = {"WWW-Authenticate": 'Bearer realm="creatoraudit"'}
        if "no-www-authenticate" in self.faults:
            headers = {}
        return ApiError(401, "UNAUTHORIZED", detail, headers=headers)

    def _rate_limit(self, ex: Exchange) -> None:
        """Count the request and attach X-RateLimit-* to whatever answer follows."""
        bucket = ex.api_key
        if "rate-limit-shared-across-keys" in self.faults:
            bucket = "shared"
        decision = self.limiter.hit(bucket)
        reset = decision.reset_at
        if "ratelimit-reset-in-millis" in self.faults:
            reset *= 1000
        limit, remaining = str(decision.limit), str(decision.remaining)
        if "ratelimit-limit-not-integer" in self.faults:
            limit = f"{decision.limit}/{self.settings.rate_window_seconds}s"
        if "ratelimit-remaining-constant" in self.faults:
            remaining = str(decision.limit)
        if "ratelimit-headers-missing" not in self.faults:
            ex.common_headers.update(
                {
                    "X-RateLimit-Limit": limit,
                    "X-RateLimit-Remaining": remaining,
                    "X-RateLimit-Reset": str(reset),
                }
            )
        if not decision.allowed:
            retry = {"Retry-After": str(decision.retry_after)}
            if "retry-after-missing" in self.faults:
                retry = {}
            detail = f"Rate limit exceeded; retry in {decision.retry_after} s."
            if "rate-limit-exceeded-503" in self.faults:
                raise ApiError(503, "SERVICE_UNAVAILABLE", detail, headers=retry)
            raise ApiError(429, "RATE_LIMITED", detail, headers=retry)

    async def _read_body(self, ex: Exchange) -> None:
        """415 for a non-JSON write body, 400 for JSON that does not parse."""
        if ex.request.method not in WRITE_METHODS:
            return
        raw = await ex.request.body()
        if not raw:
            return
        is_json = _media_type(ex.request.headers.get("content-type")) == JSON
        if not is_json and "non-json-body-400" not in self.faults:
            raise ApiError(
                415, "UNSUPPORTED_MEDIA_TYPE", "Request bodies must be application/json."
            )
        try:
            ex.body = json.loads(raw, parse_constant=_bad_json_constant)
        except (ValueError, UnicodeDecodeError) as err:
            if "malformed-json-500" in self.faults:
                raise RuntimeError("body parser crashed") from err
            raise ApiError(
                400, "BAD_REQUEST", f"The request body is not valid JSON: {err}"
            ) from err
        ex.has_body = True

    def _dispatch(self, ex: Exchange, route: RouteSpec | None) -> Handler:
        if route is None:
            raise ApiError(404, "NOT_FOUND", "No such endpoint.")
        handler = route.methods.get(ex.request.method)
        if handler is None:
            allow = ", ".join(route.methods)
            detail = f"Method {ex.request.method} is not allowed here; use {allow}."
            headers = {"Allow": allow}
            if "method-not-allowed-without-allow" in self.faults:
                headers = {}
            raise ApiError(405, "BAD_REQUEST", detail, headers=headers)
        return handler

    def _check_scope(self, ex: Exchange) -> None:
        """Mutations need `write` (or `admin`, which implies it)."""
        if ex.principal is None:
            return
        if "readonly-key-cannot-read" in self.faults and not ex.principal.can_write():
            raise ApiError(403, "INSUFFICIENT_SCOPE", "This operation needs the write scope.")
        if ex.request.method not in MUTATING_METHODS:
            return
        allowed = ex.principal.can_write()
        if "readonly-key-can-write" in self.faults:
            allowed = True
        if not allowed:
            raise ApiError(403, "INSUFFICIENT_SCOPE", "This operation needs the write scope.")

    # -- rendering -------------------------------------------------------------------

    def _render(self, ex: Exchange, result: Result) -> Response:
        """Turn a Result into a response, applying ETag/304 semantics to GET 200s."""
        headers = dict(result.headers)
        if ex.request.method == "GET" and result.status == 200:
            headers["ETag"] = self._etag(result.content)
            headers["Cache-Control"] = "private, no-cache"
            if "cache-control-public" in self.faults:
                headers["Cache-Control"] = "public, max-age=60"
            condition = ex.request.headers.get("if-none-match")
            if "if-none-match-ignored" in self.faults:
                condition = None
            if condition is not None and "if-none-match-always-304" in self.faults:
                condition = "*"
            if condition is not None and _if_none_match_hits(condition, headers["ETag"]):
                return self._not_modified(result, headers)
        media_type = JSON if result.content else None
        if "link-body-not-json" in self.faults and ex.request.method == "PUT" and result.content:
            return Response(b"<html><body>linked</body></html>", result.status, headers, JSON)
        return Response(result.content, result.status, headers, media_type)

    def _etag(self, content: bytes) -> str:
        tag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        if "weak-etag" in self.faults:
            tag = "W/" + tag
        return tag

    def _not_modified(self, result: Result, headers: dict[str, str]) -> Response:
        """304 with validators only; HTTP/1.1 framing forbids bytes after a 304 anyway."""
        keep = {k: v for k, v in headers.items() if k in ("ETag", "Cache-Control")}
        if "not-modified-with-body" in self.faults:
            keep.update({"Content-Type": JSON, "Content-Length": str(len(result.content))})
        return Response(b"", 304, keep)

    def _problem(self, ex: Exchange, err: ApiError) -> Response:
        """RFC 9457 problem details with the stable `code` and the request id."""
        body: dict[str, object] = {
            "type": "urn:creatoraudit:error:" + err.code.lower().replace("_", "-"),
            "title": HTTPStatus(err.status).phrase,
            "status": err.status,
            "detail": err.detail,
            "code": err.code,
            "instance": ex.path,
            "request_id": ex.request_id,
        }
        if "problem-status-mismatch" in self.faults and err.status == 422:
            body["status"] = 400
        if "problem-type-url" in self.faults:
            body["type"] = "https://creatoraudit.com/errors/" + err.code.lower()
        if "unknown-error-code" in self.faults and err.code == "NOT_FOUND":
            body["code"] = "RESOURCE_NOT_FOUND"
        if "not-found-code-bad-request" in self.faults and err.code == "NOT_FOUND":
            body["code"] = "BAD_REQUEST"
        if "problem-instance-template" in self.faults:
            body["instance"] = "/v2/accounts/{id}"
        if "problem-without-request-id" in self.faults:
            del body["request_id"]
        if "problem-without-code" in self.faults:
            del body["code"]
        if err.errors is not None and "validation-without-errors" not in self.faults:
            body["errors"] = err.errors
        media_type = PROBLEM_JSON
        if "problem-plain-json-content-type" in self.faults:
            media_type = JSON
        return Response(_dump(body), err.status, err.headers, media_type)

    # -- validation helpers ------------------------------------------------------------

    @staticmethod
    def _uuid_params(params: dict[str, str]) -> dict[str, str]:
        """Validate every path id as a UUID and lowercase it; 422 names each bad one."""
        errors = [
            _field_error(name, "must be a UUID")
            for name, value in params.items()
            if not _UUID_RE.fullmatch(value)
        ]
        if errors:
            raise _validation_error(errors)
        return {name: value.lower() for name, value in params.items()}

    def _checked_uuid_params(self, params: dict[str, str]) -> dict[str, str]:
        """Path ids as UUIDs; the `non-uuid-path-404` build answers 404 for malformed ids."""
        if "non-uuid-path-404" in self.faults and not all(
            _UUID_RE.fullmatch(v) for v in params.values()
        ):
            raise self._not_found("Resource")
        return self._uuid_params(params)

    @staticmethod
    def _text_field(body: dict[str, object], name: str, errors: list[dict[str, str]]) -> str:
        value = body.get(name)
        if not isinstance(value, str):
            errors.append(_field_error(name, "is required and must be a string"))
            return ""
        if not 1 <= len(value) <= MAX_TEXT:
            errors.append(_field_error(name, f"must be 1 to {MAX_TEXT} characters long"))
        return value

    @staticmethod
    def _object_body(ex: Exchange) -> dict[str, object]:
        if not ex.has_body or not isinstance(ex.body, dict):
            raise _validation_error([_field_error("body", "must be a JSON object")])
        return ex.body

    @staticmethod
    def _idempotency_key(ex: Exchange) -> str | None:
        key = ex.request.headers.get("idempotency-key")
        if key is not None and not _IDEMPOTENCY_KEY_RE.fullmatch(key):
            message = "must be 1 to 255 visible ASCII characters"
            raise _validation_error([_field_error("Idempotency-Key", message)])
        return key

    def _not_found(self, what: str) -> ApiError:
        return ApiError(404, "NOT_FOUND", f"{what} not found.")

    # -- public endpoints --------------------------------------------------------------

    def health(self, ex: Exchange, params: dict[str, str]) -> Result:
        """Liveness: needs no credentials so probes work without a key."""
        if "health-text-plain" in self.faults:
            return Result(200, b"ok", {"Content-Type": "text/plain"})
        return Result.json(200, {"data": {"status": "ok"}})

    def meta(self, ex: Exchange, params: dict[str, str]) -> Result:
        """Service identity and version."""
        return Result.json(200, {"data": {"name": "CreatorAudit API", "version": "2.0.0"}})

    # -- creators and accounts ---------------------------------------------------------

    def create_creator(self, ex: Exchange, params: dict[str, str]) -> Result:
        """POST /creators: validate, then create (idempotently when keyed)."""
        body = self._object_body(ex)
        errors: list[dict[str, str]] = []
        name = self._text_field(body, "name", errors)
        if errors:
            raise _validation_error(errors)
        key = self._idempotency_key(ex)

        def create() -> Result:
            record = self.store.create_creator(ex.org, name)
            return self._created(record, f"{PREFIX}/creators/{record['id']}")

        return self._idempotent(ex, key, create)

    def create_account(self, ex: Exchange, params: dict[str, str]) -> Result:
        """POST /accounts: validate, then create within the org's quota."""
        body = self._object_body(ex)
        errors: list[dict[str, str]] = []
        platform = body.get("platform")
        if platform not in PLATFORMS:
            errors.append(_field_error("platform", "must be one of: " + ", ".join(PLATFORMS)))
        handle = self._text_field(body, "handle", errors)
        if errors:
            raise _validation_error(errors)
        key = self._idempotency_key(ex)

        def create() -> Result:
            quota = self.settings.account_quota
            if quota is not None and self.store.count_accounts(ex.org) >= quota:
                detail = f"Account quota of {quota} reached for this organization."
                raise ApiError(403, "QUOTA_EXCEEDED", detail)
            record = self.store.create_account(ex.org, str(platform), handle)
            return self._created(record, f"{PREFIX}/accounts/{record['id']}")

        return self._idempotent(ex, key, create)

    def _created(self, record: Record, location: str) -> Result:
        if "create-without-location" in self.faults:
            return Result.json(201, {"data": record})
        return Result.json(201, {"data": record}, {"Location": location})

    def _idempotent(self, ex: Exchange, key: str | None, create: Callable[[], Result]) -> Result:
        """Replay the first success for (org, route, key); a reused key with another body is 409."""
        if key is None:
            return create()
        route = f"POST {ex.path}"
        fingerprint = hashlib.sha256(_canonical(ex.body)).hexdigest()
        with self.store.transaction():
            stored = self.store.get_idempotent(ex.org, route, key)
            if "idempotency-key-ignored" in self.faults:
                stored = None
            if stored is not None:
                return self._replay(stored, fingerprint)
            result = create()
            location = result.headers.get("Location")
            saved = StoredResponse(fingerprint, result.status, result.content, location)
            self.store.save_idempotent(ex.org, route, key, saved)
            return result

    @staticmethod
    def _replay(stored: StoredResponse, fingerprint: str) -> Result:
        if stored.fingerprint != fingerprint:
            detail = "This Idempotency-Key was already used with a different request body."
            raise ApiError(409, "CONFLICT", detail)
        headers = {} if stored.location is None else {"Location": stored.location}
        return Result(stored.status, stored.body, headers)

    def get_creator(self, ex: Exchange, params: dict[str, str]) -> Result:
        cid = self._uuid_params(params)["creator_id"]
        record = self.store.get_creator(ex.org, cid)
        if record is None and "foreign-creator-readable" in self.faults:
            record = self.store.get_creator(ORG_A, cid) or self.store.get_creator(ORG_B, cid)
        if record is None:
            raise self._not_found("Creator")
        return Result.json(200, {"data": record})

    def delete_creator(self, ex: Exchange, params: dict[str, str]) -> Result:
        cid = self._uuid_params(params)["creator_id"]
        if not self.store.delete_creator(ex.org, cid):
            raise self._not_found("Creator")
        return Result(204)

    def get_account(self, ex: Exchange, params: dict[str, str]) -> Result:
        aid = self._uuid_params(params)["account_id"]
        record = self.store.get_account(ex.org, aid)
        if record is None:
            raise self._not_found("Account")
        return Result.json(200, {"data": record})

    def delete_account(self, ex: Exchange, params: dict[str, str]) -> Result:
        aid = self._uuid_params(params)["account_id"]
        if not self.store.delete_account(ex.org, aid):
            raise self._not_found("Account")
        return Result(204)

    # -- lists -------------------------------------------------------------------------

    def list_creators(self, ex: Exchange, params: dict[str, str]) -> Result:
        """GET /creators, optionally filtered by `name_prefix`."""
        query = ex.request.query_params
        errors: list[dict[str, str]] = []
        filters: dict[str, str] = {}
        prefix = query.get("name_prefix")
        if prefix is not None:
            if 1 <= len(prefix) <= MAX_TEXT:
                filters["name_prefix"] = prefix
            else:
                errors.append(_field_error("name_prefix", f"must be 1 to {MAX_TEXT} characters"))
        page = self._page_request(ex, filters, errors)
        rows = self.store.list_creators(ex.org, prefix, page.after, page.limit + 1)
        total = self.store.count_creators(ex.org, prefix) if page.include_total else None
        return self._page_result(ex, page, rows, total)

    def list_accounts(self, ex: Exchange, params: dict[str, str]) -> Result:
        """GET /accounts, optionally filtered by `platform`."""
        query = ex.request.query_params
        errors: list[dict[str, str]] = []
        filters: dict[str, str] = {}
        platform = query.get("platform")
        if platform is not None:
            if platform in PLATFORMS:
                filters["platform"] = platform
            else:
                errors.append(_field_error("platform", "must be one of: " + ", ".join(PLATFORMS)))
        page = self._page_request(ex, filters, errors)
        rows = self.store.list_accounts(ex.org, platform, page.after, page.limit + 1)
        total = self.store.count_accounts(ex.org, platform) if page.include_total else None
        return self._page_result(ex, page, rows, total)

    def _page_request(
        self, ex: Exchange, filters: dict[str, str], errors: list[dict[str, str]]
    ) -> PageRequest:
        """Validate limit/cursor/include_total; a 422 lists every bad parameter at once."""
        query = ex.request.query_params
        max_limit = 1000 if "limit-unbounded" in self.faults else MAX_LIMIT
        limit = _parse_limit(query.get("limit"), errors, max_limit)
        include_total = _parse_bool("include_total", query.get("include_total"), errors)
        if "total-count-missing" in self.faults:
            include_total = False
        after = 0
        cursor = query.get("cursor")
        if cursor is not None and not errors:
            decoded = self._decode_cursor(ex.request.url.path, filters, cursor)
            if decoded is None:
                message = "is invalid or was issued for a different filter combination"
                errors.append(_field_error("cursor", message))
            elif "cursor-ignored" not in self.faults:
                after = decoded
        if errors:
            raise _validation_error(errors)
        return PageRequest(limit, after, include_total, filters)

    def _page_result(
        self, ex: Exchange, page: PageRequest, rows: list[tuple[int, Record]], total: int | None
    ) -> Result:
        """Envelope, pagination block and RFC 8288 Link header for one page."""
        has_next = len(rows) > page.limit
        rows = rows[: page.limit]
        path = ex.request.url.path
        if "has-next-always-true" in self.faults:
            has_next = True
        last = rows[-1][0] if rows else page.after
        next_cursor = self._encode_cursor(path, page.filters, last) if has_next else None
        pagination: dict[str, object] = {
            "next_cursor": next_cursor,
            "has_next": has_next,
            "limit": page.limit,
        }
        if "pagination-without-has-next" in self.faults:
            del pagination["has_next"]
        if total is not None:
            pagination["total_count"] = total
        filters = {} if "filters-not-echoed" in self.faults else page.filters
        payload = {"data": [r for _, r in rows], "pagination": pagination, "filters": filters}
        if "list-without-filters" in self.faults:
            del payload["filters"]
        link = _link_header(path, page, next_cursor)
        if "link-without-next" in self.faults:
            link = link.split(", ")[0]
        if "link-header-malformed" in self.faults:
            link = link.replace("<", "").replace(">", "").replace('"', "")
        headers = {} if "list-without-link" in self.faults else {"Link": link}
        return Result.json(200, payload, headers)

    def _cursor_mac(self, path: str, filters: dict[str, str], after: int) -> str:
        """Binds a cursor to its list and exact filters, so reuse elsewhere is detectable."""
        if "cursor-not-bound-to-filters" in self.faults:
            filters = {}
        message = _canonical({"path": path, "filters": filters, "after": after})
        return hmac.new(self.cursor_secret, message, hashlib.sha256).hexdigest()[:32]

    def _encode_cursor(self, path: str, filters: dict[str, str], after: int) -> str:
        token = _canonical({"after": after, "mac": self._cursor_mac(path, filters, after)})
        return base64.urlsafe_b64encode(token).decode("ascii").rstrip("=")

    def _decode_cursor(self, path: str, filters: dict[str, str], cursor: str) -> int | None:
        """The keyset position in a cursor, or None if it is garbage or foreign."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
        except (binascii.Error, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        after, mac = data.get("after"), data.get("mac")
        if not isinstance(after, int) or isinstance(after, bool) or not isinstance(mac, str):
            return None
        if not hmac.compare_digest(mac, self._cursor_mac(path, filters, after)):
            return None
        return after

    # -- links -------------------------------------------------------------------------

    def put_link(self, ex: Exchange, params: dict[str, str]) -> Result:
        """PUT-to-create: 201 first link, 200 re-link, 409 when another creator owns it."""
        ids = self._checked_uuid_params(params)
        if "uppercase-uuid-500" in self.faults and ids != params:
            # the faulty build looks rows up with the id exactly as sent and crashes on a miss
            raise LookupError(f"no row for non-normalised ids {params}")
        cid, aid = ids["creator_id"], ids["account_id"]
        if self.store.get_creator(ex.org, cid) is None and "missing-creator-422" in self.faults:
            raise _validation_error([_field_error("creator_id", "no such creator")])
        if self.store.get_creator(ex.org, cid) is None:
            raise self._not_found("Creator")
        account_org: str | None = ex.org
        if "foreign-account-linkable" in self.faults:
            account_org = None
        if self.store.get_account(account_org, aid) is None:
            raise self._not_found("Account")
        with self.store.transaction():
            outcome = self._link_outcome(cid, aid)
        if isinstance(outcome, ApiError):  # raised outside so the transaction commits
            raise outcome
        return outcome

    def _link_outcome(self, cid: str, aid: str) -> Result | ApiError:
        existing = self.store.get_link(aid)
        if existing is None:
            return self._first_link(cid, aid)
        if existing["creator_id"] == cid:
            return self._relink(existing)
        return self._conflicting_link(cid, aid)

    def _first_link(self, cid: str, aid: str) -> Result:
        record = self.store.put_link(cid, aid)
        headers = {"Location": _link_location(cid, aid)}
        if "created-without-location" in self.faults:
            headers = {}
        if "link-location-points-to-account" in self.faults:
            headers = {"Location": f"{PREFIX}/accounts/{aid}"}
        status = 200 if "first-link-returns-200" in self.faults else 201
        payload: object = {"data": record}
        if "link-record-unwrapped" in self.faults:
            payload = record
        return Result.json(status, payload, headers)

    def _relink(self, existing: Record) -> Result:
        """Idempotent re-link: nothing changes and the answer is 200."""
        aid, cid = str(existing["account_id"]), str(existing["creator_id"])
        status = 200
        if "relink-returns-201" in self.faults:
            status = 201
        if "relink-after-conflict-201" in self.faults and self.store.pop_conflicted(aid):
            status = 201
        headers = {"Location": _link_location(cid, aid)} if status == 201 else {}
        return Result.json(status, {"data": existing}, headers)

    def _conflicting_link(self, cid: str, aid: str) -> Result | ApiError:
        """The account belongs to another creator: 409 and nothing changes."""
        if "conflict-returns-200" in self.faults:
            return Result.json(200, {"data": self.store.put_link(cid, aid)})
        if "conflict-moves-account" in self.faults:
            self.store.put_link(cid, aid)
        if "relink-after-conflict-201" in self.faults:
            self.store.mark_conflicted(aid)
        detail = "The account is already linked to a different creator."
        return ApiError(409, "CONFLICT", detail)

    def get_link(self, ex: Exchange, params: dict[str, str]) -> Result:
        ids = self._uuid_params(params)
        record = self._owned_link(ex, ids["creator_id"], ids["account_id"])
        return Result.json(200, {"data": record})

    def delete_link(self, ex: Exchange, params: dict[str, str]) -> Result:
        ids = self._uuid_params(params)
        self._owned_link(ex, ids["creator_id"], ids["account_id"])
        self.store.delete_link(ids["creator_id"], ids["account_id"])
        return Result(204)

    def _owned_link(self, ex: Exchange, cid: str, aid: str) -> Record:
        """The link if the caller's creator owns that account, else 404."""
        if self.store.get_creator(ex.org, cid) is None:
            raise self._not_found("Creator")
        link = self.store.get_link(aid)
        if link is None or link["creator_id"] != cid:
            raise self._not_found("Link")
        return link


@dataclass(frozen=True)
class PageRequest:
    """Validated list parameters."""

    limit: int
    after: int
    include_total: bool
    filters: dict[str, str]


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _parse_limit(raw: str | None, errors: list[dict[str, str]], max_limit: int = MAX_LIMIT) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if _DIGITS_RE.fullmatch(raw) and 1 <= int(raw) <= max_limit:
        return int(raw)
    errors.append(_field_error("limit", f"must be an integer from 1 to {MAX_LIMIT}"))
    return DEFAULT_LIMIT


def _parse_bool(name: str, raw: str | None, errors: list[dict[str, str]]) -> bool:
    if raw is None:
        return False
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    errors.append(_field_error(name, "must be true or false"))
    return False


def _link_location(cid: str, aid: str) -> str:
    return f"{PREFIX}/creators/{cid}/accounts/{aid}"


def _link_header(path: str, page: PageRequest, next_cursor: str | None) -> str:
    """RFC 8288 links that keep the same filters and limit as the current page."""
    base: dict[str, str] = {"limit": str(page.limit), **page.filters}
    if page.include_total:
        base["include_total"] = "true"
    links = [f'<{path}?{urlencode(base)}>; rel="first"']
    if next_cursor is not None:
        links.append(f'<{path}?{urlencode({**base, "cursor": next_cursor})}>; rel="next"')
    return ", ".join(links)


def create_app(settings: ReferenceSettings) -> Starlette:
    """Build the ASGI app; one catch-all route hands every request to the pipeline."""
    validate_faults(settings.faults)
    api = ReferenceApi(settings)
    app = Starlette(routes=[Route("/{path:path}", endpoint=api)])
    # The catch-all's pattern stops at a newline, so a path with an encoded line break would
    # fall through to Starlette's plain-text 404; every request must reach the pipeline.
    app.router.default = api
    app.state.api = api
    return app


def _echo_credentials(response: Response, authorization: str | None) -> Response:
    """The ``echo-credentials`` fault: a debugging build that reflects the caller's key."""
    if authorization is None:
        return response
    body = bytes(response.body)
    try:
        document = json.loads(body) if body else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        document["debug"] = {"authorization": authorization}
        body = _dump(document)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    headers["X-Debug-Authorization"] = authorization
    return Response(body, response.status_code, headers)
