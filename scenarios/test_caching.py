"""Caching on every GET the suite can make: strong ETag, private/no-cache, 304 revalidation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance import ApiClient, Exchange, Principal, expect_status
from conformance._expect import ExpectationFailed
from conformance._reach import require_operation

#: name -> (how to get a path to GET, principal, what the operation is called in skip reasons)
GETS: dict[str, tuple[Callable[..., str], Principal, str]] = {
    "health": (lambda data: "/health", Principal.NONE, "GET /health"),
    "meta": (lambda data: "/meta", Principal.NONE, "GET /meta"),
    "creator-list": (lambda data: "/creators", Principal.FULL, "GET /creators"),
    "creator": (lambda data: f"/creators/{data.creator()}", Principal.FULL, "GET /creators/{id}"),
}


def _get(api: ApiClient, data, name: str, **kwargs) -> tuple[str, Principal, Exchange]:  # type: ignore[no-untyped-def]
    path_of, principal, operation = GETS[name]
    path = path_of(data)
    exchange = require_operation(api.get(path, principal=principal, **kwargs), operation)
    expect_status(exchange, 200, "CACHE-ETAG-STRONG")
    return path, principal, exchange


@pytest.mark.requirement("CACHE-ETAG-STRONG", "CACHE-CONTROL")
@pytest.mark.parametrize("name", list(GETS))
def test_get_has_strong_etag_and_private_no_cache(api: ApiClient, data, name: str) -> None:
    _, _, exchange = _get(api, data, name)
    # The caching rules judged the response; say so explicitly for the report.
    assert exchange.headers.get_value("etag"), "[CACHE-ETAG-STRONG] no ETag"


@pytest.mark.requirement("CACHE-304", "HTTP-304-NO-BODY", "HTTP-304-NO-METADATA")
@pytest.mark.parametrize("name", list(GETS))
def test_current_etag_revalidates_to_empty_304(api: ApiClient, data, name: str, observe) -> None:
    path, principal, first = _get(api, data, name)
    second = api.get(path, principal=principal)
    etag = first.headers.get_value("etag") or ""
    if second.headers.get_value("etag") != etag:
        observe(f"{path}: the representation changed between two GETs; 304 cannot be expected")
        etag = second.headers.get_value("etag") or ""
    revalidated = api.get(path, principal=principal, headers={"If-None-Match": etag})
    if revalidated.status == 200 and revalidated.headers.get_value("etag") != etag:
        observe(f"{path}: changed again before revalidation (200 with a new ETag)")
        return
    if revalidated.status != 304:
        raise ExpectationFailed(
            "CACHE-304",
            f"If-None-Match with the current ETag {etag} got {revalidated.status}, not 304",
            revalidated,
        )
    assert not revalidated.body, "[HTTP-304-NO-BODY] 304 with content"


@pytest.mark.requirement("CACHE-INM-MISMATCH-200")
@pytest.mark.parametrize("name", list(GETS))
def test_other_etag_gets_the_full_response(api: ApiClient, data, name: str) -> None:
    path, principal, _ = _get(api, data, name)
    other = api.get(path, principal=principal, headers={"If-None-Match": '"conformance-other"'})
    if other.status != 200 or not other.body:
        raise ExpectationFailed(
            "CACHE-INM-MISMATCH-200",
            f"If-None-Match with a foreign ETag got {other.status} with {len(other.body)} bytes",
            other,
        )
