"""Every operation the suite can reach, as every principal: the documented answer each time.

none / invalid key -> 401 UNAUTHORIZED; inactive key -> 403 FORBIDDEN; read-only key -> success
on reads, 403 INSUFFICIENT_SCOPE on writes; another organization -> 404 for this
organization's resources (and none of them in its lists); the full key -> success.
Operations beyond the published spec are skipped, saying so, when the target lacks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from conformance import (
    ApiClient,
    Exchange,
    Principal,
    expect_problem,
    expect_status,
    link_path,
)
from conformance._expect import ExpectationFailed
from conformance._reach import require_operation


@dataclass(frozen=True)
class Operation:
    method: str
    path: Callable[[Any], str]  # data -> path, creating what the operation needs
    write: bool
    by_id: bool  # names one of this organization's resources
    published: bool = False  # in the published spec (never skipped as absent)
    #: the request body, from the run's id (what it creates is named for `cleanup` to find)
    body: Callable[[str], dict[str, str]] | None = None


OPERATIONS: dict[str, Operation] = {
    "link": Operation(
        "PUT",
        lambda d: link_path(d.owner(), d.account()),
        write=True,
        by_id=True,
        published=True,
    ),
    "list-creators": Operation("GET", lambda d: "/creators?limit=200", write=False, by_id=False),
    "get-creator": Operation("GET", lambda d: f"/creators/{d.creator()}", write=False, by_id=True),
    "create-creator": Operation(
        "POST",
        lambda d: "/creators",
        write=True,
        by_id=False,
        body=lambda run_id: {"name": f"conformance-{run_id}-matrix"},
    ),
    "delete-creator": Operation(
        "DELETE", lambda d: f"/creators/{d.creator()}", write=True, by_id=True
    ),
}

PRINCIPALS = {
    "none": Principal.NONE,
    "invalid-key": Principal.INVALID,
    "inactive-key": Principal.INACTIVE,
    "read-only-key": Principal.READONLY,
    "other-org-key": Principal.OTHER_ORG,
    "full-key": Principal.FULL,
}


def _requirements(operation: Operation, who: str) -> tuple[str, ...]:
    if who in {"none", "invalid-key"}:
        missing = "AUTH-MISSING-401" if who == "none" else "AUTH-INVALID-401"
        return (missing, "CODE-401", "HTTP-401-WWW-AUTHENTICATE")
    if who == "inactive-key":
        return ("AUTH-INACTIVE-403", "CODE-403-FORBIDDEN")
    if who == "read-only-key":
        if operation.write:
            return ("AUTH-SCOPE-WRITE", "AUTH-SCOPE-403", "CODE-403-SCOPE")
        return ("AUTH-SCOPE-READ",)
    if who == "other-org-key":
        return ("AUTH-ORG-ISOLATION",)
    return ("AUTH-BEARER",)


CASES = [
    pytest.param(op, who, id=f"{op}-{who}", marks=pytest.mark.requirement(*_requirements(o, who)))
    for op, o in OPERATIONS.items()
    for who in PRINCIPALS
]


def _send(
    api: ApiClient, data: Any, operation: Operation, path: str, principal: Principal
) -> Exchange:
    body = operation.body(api.run_id) if operation.body else None

    def send() -> Exchange:
        return api.request(operation.method, path, principal=principal, json=body)

    if operation.method == "POST":  # recorded as test data: deleted also if the test stops short
        return data.checked_create("creator", send, principal)
    return send()


def _created_id(exchange: Exchange) -> str | None:
    body = exchange.json()
    data = body.get("data") if isinstance(body, dict) and exchange.status == 201 else None
    return data.get("id") if isinstance(data, dict) else None


@pytest.mark.parametrize(("op", "who"), CASES)
def test_principal_gets_documented_answer(api: ApiClient, data, op: str, who: str) -> None:
    operation, principal = OPERATIONS[op], PRINCIPALS[who]
    path = operation.path(data)
    if operation.method == "GET" and not operation.published and principal is not Principal.FULL:
        require_operation(api.get(path), f"GET {op}")  # present at all, for the own key?
    exchange = _send(api, data, operation, path, principal)
    created = _created_id(exchange)
    try:
        _judge(api, operation, op, who, exchange)
    finally:
        if created:
            data.delete_checked("creator", created)


def _judge(api: ApiClient, operation: Operation, op: str, who: str, exchange: Exchange) -> None:
    """The one place that states the matrix's expected answers."""
    rid = _requirements(operation, who)[0]
    if who in {"none", "invalid-key"}:
        expect_problem(exchange, 401, "UNAUTHORIZED", rid)
    elif who == "inactive-key":
        expect_problem(exchange, 403, "FORBIDDEN", rid)
    elif who == "read-only-key" and operation.write:
        expect_problem(exchange, 403, "INSUFFICIENT_SCOPE", rid)
    elif who == "other-org-key" and operation.by_id:
        expect_problem(exchange, 404, "NOT_FOUND", rid)
    else:
        if not operation.published:
            require_operation(exchange, f"{operation.method} {op}")
        expect_status(exchange, {200, 201, 204}, rid)
        if who == "other-org-key" and op == "list-creators":
            _expect_no_foreign_items(api, exchange)


def _expect_no_foreign_items(api: ApiClient, listing: Exchange) -> None:
    """The other organization's list shows none of this organization's creators."""
    own = api.get("/creators?limit=200").json()
    own_ids = {item.get("id") for item in own.get("data", []) if isinstance(item, dict)}
    body = listing.json()
    seen = {item.get("id") for item in body.get("data", []) if isinstance(item, dict)}
    leaked = (own_ids & seen) - {None}
    if leaked:
        raise ExpectationFailed(
            "AUTH-ORG-ISOLATION", f"another organization lists {len(leaked)} of ours", listing
        )
