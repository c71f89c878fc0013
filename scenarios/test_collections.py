"""Collections: envelope, limit bounds, cursor walking, cursor binding, totals, Link header.

The published spec has no list operation; these run against GET /creators and GET /accounts
where the target has them (the reference server does) and are skipped, saying so, where it does
not. The collection rules (pagination members, limit range, Link first/next, RFC 8288 syntax)
judge every list response any scenario receives."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from conformance import ApiClient, Exchange, expect_problem, expect_status
from conformance._expect import ExpectationFailed
from conformance._reach import require_operation

#: list -> a filter it is asked with (name, value)
LISTS = {"creators": ("name_prefix", "conformance-"), "accounts": ("platform", "instagram")}
MAX_PAGES = 50


def _list(api: ApiClient, kind: str, **query: Any) -> Exchange:
    path = f"/{kind}" + (f"?{urlencode(query)}" if query else "")
    return require_operation(api.get(path), f"GET /{kind}")


def _page(exchange: Exchange) -> tuple[list[Any], dict[str, Any]]:
    body = exchange.json()
    return body["data"], body["pagination"]


def _filtered(api: ApiClient, kind: str, name: str, value: str, **query: Any) -> Exchange:
    exchange = _list(api, kind, **{name: value}, **query)
    if exchange.status == 422:
        pytest.skip(f"the target does not filter GET /{kind} by {name!r}")
    return exchange


@pytest.mark.requirement(
    "ENV-COLLECTION", "ENV-PAGINATION-MEMBERS", "PAGE-LINK-FIRST", "HTTP-LINK-SYNTAX"
)
@pytest.mark.parametrize("kind", list(LISTS))
def test_list_is_enveloped_with_pagination_filters_and_link(api: ApiClient, kind: str) -> None:
    exchange = _list(api, kind, limit=5)
    expect_status(exchange, 200, "ENV-COLLECTION")
    body = exchange.json()
    assert isinstance(body.get("pagination"), dict), "[ENV-COLLECTION] no pagination object"


@pytest.mark.requirement("ENV-FILTERS-ECHO")
@pytest.mark.parametrize("kind", list(LISTS))
def test_filters_echo_the_filter_used(api: ApiClient, kind: str) -> None:
    name, value = LISTS[kind]
    exchange = _filtered(api, kind, name, value)
    expect_status(exchange, 200, "ENV-FILTERS-ECHO")
    filters = exchange.json().get("filters")
    if not isinstance(filters, dict) or str(filters.get(name)) != value:
        raise ExpectationFailed(
            "ENV-FILTERS-ECHO", f"filters {filters!r} do not echo {name}={value}", exchange
        )


@pytest.mark.requirement("PAGE-LIMIT-BOUNDS")
@pytest.mark.parametrize("limit", [0, 201, 1, 200])
def test_limit_outside_1_to_200_is_refused_or_clamped(api: ApiClient, limit: int, observe) -> None:
    exchange = _list(api, "creators", limit=limit)
    if 1 <= limit <= 200:
        expect_status(exchange, 200, "PAGE-LIMIT-BOUNDS")
    elif exchange.status == 422:
        expect_problem(exchange, 422, "VALIDATION_ERROR", "PAGE-LIMIT-BOUNDS")
    else:
        expect_status(exchange, {200, 422}, "PAGE-LIMIT-BOUNDS")
        # the rules held pagination.limit within 1-200
        observe(f"limit={limit} -> 200, clamped to {_page(exchange)[1].get('limit')}")


@pytest.mark.requirement(
    "PAGE-CURSOR-WALK", "PAGE-HAS-NEXT-FINAL", "PAGE-LINK-NEXT", "ENV-PAGINATION-MEMBERS"
)
def test_cursor_walks_every_item_once(api: ApiClient, data) -> None:
    ours = {data.creator() for _ in range(3)}
    prefix = f"conformance-{api.run_id}-"
    exchange = _filtered(api, "creators", "name_prefix", prefix, limit=2)
    seen: list[str] = []
    for _ in range(MAX_PAGES):
        expect_status(exchange, 200, "PAGE-CURSOR-WALK")
        items, pagination = _page(exchange)
        ids = [item.get("id") for item in items if isinstance(item, dict)]
        repeated = set(ids) & set(seen)
        if repeated:
            raise ExpectationFailed(
                "PAGE-CURSOR-WALK", f"page repeats {sorted(repeated)}", exchange
            )
        seen.extend(ids)
        if not pagination.get("has_next"):
            break
        if not items:
            raise ExpectationFailed(
                "PAGE-HAS-NEXT-FINAL", "an empty page says has_next: true", exchange
            )
        cursor = pagination["next_cursor"]
        exchange = _list(api, "creators", name_prefix=prefix, limit=2, cursor=cursor)
    else:
        raise ExpectationFailed(
            "PAGE-HAS-NEXT-FINAL", f"has_next still true after {MAX_PAGES} pages", exchange
        )
    missing = ours - set(seen)
    if missing:
        raise ExpectationFailed("PAGE-CURSOR-WALK", f"the walk missed {sorted(missing)}", exchange)


@pytest.mark.requirement("PAGE-CURSOR-BOUND-422")
@pytest.mark.parametrize("reuse", ["other-filter", "no-filter"])
def test_cursor_under_another_filter_is_422(api: ApiClient, data, reuse: str) -> None:
    for _ in range(2):
        data.creator()
    prefix = f"conformance-{api.run_id}-"
    first = _filtered(api, "creators", "name_prefix", prefix, limit=1)
    _, pagination = _page(first)
    cursor = pagination.get("next_cursor")
    if not pagination.get("has_next") or not isinstance(cursor, str):
        raise ExpectationFailed(
            "PAGE-CURSOR-BOUND-422", "two matching creators but no next page", first
        )
    query: dict[str, Any] = {"limit": 1, "cursor": cursor}
    if reuse == "other-filter":
        query["name_prefix"] = prefix + "other"
    expect_problem(
        _list(api, "creators", **query), 422, "VALIDATION_ERROR", "PAGE-CURSOR-BOUND-422"
    )


@pytest.mark.requirement("PAGE-INCLUDE-TOTAL")
@pytest.mark.parametrize("kind", list(LISTS))
def test_include_total_adds_total_count(api: ApiClient, kind: str) -> None:
    exchange = _list(api, kind, include_total="true", limit=1)
    expect_status(exchange, 200, "PAGE-INCLUDE-TOTAL")
    _, pagination = _page(exchange)
    if not isinstance(pagination.get("total_count"), int):
        raise ExpectationFailed("PAGE-INCLUDE-TOTAL", "no integer total_count", exchange)
