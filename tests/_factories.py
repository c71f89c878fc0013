"""Build exchanges by hand, so each rule can be shown failing and passing without a server."""

from __future__ import annotations

import json
import time
from typing import Any

from conformance import Exchange, Principal
from conformance._exchange import CaseInsensitiveHeaders

SECRET = "ca_test_secret_key_value"


def problem(status: int, code: str, request_id: str = "rid-1", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:creatoraudit:error:{code.lower().replace('_', '-')}",
        "title": "Title",
        "status": status,
        "detail": "Detail.",
        "code": code,
        "instance": "/v2/creators/c/accounts/a",
        "request_id": request_id,
    }
    body.update(extra)
    return body


def rate_limit_headers() -> dict[str, str]:
    return {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "99",
        "X-RateLimit-Reset": str(int(time.time()) + 60),
    }


def exchange(
    status: int = 200,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    method: str = "PUT",
    path: str = "/v2/creators/c/accounts/a",
    principal: Principal = Principal.FULL,
    request_id: str | None = "rid-1",
    content_type: str | None = None,
) -> Exchange:
    """A conforming exchange by default; tests override one detail to break one rule."""
    if body is None and status >= 400:
        body = problem(status, {401: "UNAUTHORIZED", 404: "NOT_FOUND"}.get(status, "BAD_REQUEST"))
    if body is None and status < 300:
        body = {"data": {"id": "x"}}
    response_headers: dict[str, str] = {"X-Request-ID": request_id or "minted"}
    if principal.is_accepted:
        response_headers.update(rate_limit_headers())
    if content_type is None:
        content_type = "application/problem+json" if status >= 400 else "application/json"
    response_headers["Content-Type"] = content_type
    response_headers.update(_conforming_headers(status, body, method))
    response_headers.update(headers or {})
    request_headers = {"Authorization": f"Bearer {SECRET}"}
    if request_id:
        request_headers["X-Request-ID"] = request_id
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Exchange(
        method=method,
        url=f"http://127.0.0.1:1{path}",
        request_headers=CaseInsensitiveHeaders.of(request_headers),
        request_body=None,
        status=status,
        headers=CaseInsensitiveHeaders.of(response_headers),
        body=raw,
        principal=principal,
        secrets=[SECRET],
    )


def _conforming_headers(status: int, body: Any, method: str) -> dict[str, str]:
    """The headers the inherited HTTP rules and the caching/collection rules ask for."""
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="test"'
    if status == 405:
        headers["Allow"] = "PUT"
    if method == "GET" and status == 200:
        headers.update({"ETag": '"abc"', "Cache-Control": "private, no-cache"})
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            headers["Link"] = '</v2/x?limit=50>; rel="first"'
    return headers
