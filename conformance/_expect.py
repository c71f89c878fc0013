"""Assertions for scenarios, with failure messages that name the rule and show the evidence."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, NoReturn
from urllib.parse import urljoin, urlsplit

import pytest

from conformance._exchange import Exchange


def skip_test(reason: str) -> NoReturn:
    """Skip the running test, reported at the test's own location: a skip raised in the
    suite's helpers and hooks was reported at theirs (``.../conformance/_guard.py:132``),
    which says nothing of which check stepped aside. pytest's own skip marks do the same."""
    raise pytest.skip.Exception(reason, _use_item_location=True)


class ExpectationFailed(AssertionError):
    """A scenario's expectation about one exchange did not hold."""

    #: the statuses the scenario accepted, when the expectation was about the status
    expected_status: list[int] | None = None

    def __init__(self, requirement: str, message: str, exchange: Exchange) -> None:
        self.requirement = requirement
        self.exchange = exchange
        super().__init__(
            f"[{requirement}] {exchange.mask(message)}\nrequest: {exchange.describe()}\n"
            f"{exchange.evidence()}\nreproduce: {exchange.curl()}"
        )


def expect_status(exchange: Exchange, expected: int | Collection[int], requirement: str) -> None:
    allowed = {expected} if isinstance(expected, int) else set(expected)
    if exchange.status not in allowed:
        wanted = " or ".join(str(s) for s in sorted(allowed))
        failure = ExpectationFailed(
            requirement, f"expected HTTP {wanted}, got {exchange.status}", exchange
        )
        failure.expected_status = sorted(allowed)
        raise failure


def expect_problem(exchange: Exchange, status: int, code: str, requirement: str) -> None:
    """The status and the problem ``code``; the problem's shape is the rules' business."""
    expect_status(exchange, status, requirement)
    body = exchange.json()
    got = body.get("code") if isinstance(body, dict) else None
    if got != code:
        raise ExpectationFailed(
            requirement, f"expected problem code {code!r}, got {got!r}", exchange
        )


def expect_data_object(exchange: Exchange, requirement: str) -> dict[str, Any]:
    """A single-resource envelope; the record's fields are not specified, so none is required."""
    body = exchange.json()
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ExpectationFailed(requirement, 'body is not {"data": {...}}', exchange)
    data: dict[str, Any] = body["data"]
    return data


def same_resource(left: str, right: str) -> bool:
    parts_l, parts_r = urlsplit(left), urlsplit(right)
    return (parts_l.scheme.lower(), parts_l.netloc.lower(), parts_l.path.rstrip("/")) == (
        parts_r.scheme.lower(),
        parts_r.netloc.lower(),
        parts_r.path.rstrip("/"),
    )


def expect_location(exchange: Exchange, expected_url: str, requirement: str) -> None:
    """``Location`` may be absolute or relative: resolve it against the request URL."""
    location = exchange.headers.get_value("location")
    if not location:
        raise ExpectationFailed(requirement, "201 Created has no Location header", exchange)
    resolved = urljoin(exchange.url, location)
    if not same_resource(resolved, expected_url):
        raise ExpectationFailed(
            requirement,
            f"Location {location!r} resolves to {resolved}, expected {expected_url}",
            exchange,
        )


def expect_error_for_field(exchange: Exchange, field: str, requirement: str) -> None:
    """Some ``errors`` entry names ``field`` (bare, or qualified like ``path.field``)."""
    body = exchange.json()
    errors = body.get("errors") if isinstance(body, dict) else None
    names = (
        [e.get("field") for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    )
    if not any(isinstance(n, str) and (n == field or n.endswith(f".{field}")) for n in names):
        raise ExpectationFailed(
            requirement, f"no 'errors' entry names {field!r} (got {names})", exchange
        )
