"""The link operation's own semantics: first link, idempotent re-link, conflicting link."""

from __future__ import annotations

import pytest

from conformance import (
    ApiClient,
    expect_data_object,
    expect_location,
    expect_problem,
    expect_status,
    link_path,
)


@pytest.mark.requirement(
    "LINK-FIRST-201", "LINK-FIRST-LOCATION", "LINK-RECORD-ENVELOPE", "ENV-DATA",
    "HTTP-PUT-201-LOCATION", "HTTP-JSON-BODY",
)
def test_first_link_is_created_with_location(api: ApiClient, data) -> None:
    path = link_path(data.owner(), data.account())
    first = api.put(path)
    expect_status(first, 201, "LINK-FIRST-201")
    expect_location(first, api.url(path), "LINK-FIRST-LOCATION")
    expect_data_object(first, "LINK-RECORD-ENVELOPE")


@pytest.mark.requirement("LINK-RELINK-200")
def test_relink_to_same_creator_is_idempotent_200(api: ApiClient, data) -> None:
    path = link_path(data.owner(), data.account())
    expect_status(api.put(path), 201, "LINK-FIRST-201")
    answers = [api.put(path) for _ in range(3)]
    for relink in answers:
        expect_status(relink, 200, "LINK-RELINK-200")
        expect_data_object(relink, "LINK-RECORD-ENVELOPE")
    records = [relink.json()["data"] for relink in answers]
    assert all(r == records[0] for r in records), (
        f"[LINK-RELINK-200] repeated re-links returned different records: {records}"
    )


@pytest.mark.requirement("LINK-CONFLICT-409", "LINK-CONFLICT-UNCHANGED", "CODE-409")
def test_link_to_other_creator_conflicts_and_keeps_owner(api: ApiClient, data) -> None:
    owner, rival, account = data.owner(), data.owner(slot=1), data.account()
    expect_status(api.put(link_path(owner, account)), 201, "LINK-FIRST-201")
    expect_problem(api.put(link_path(rival, account)), 409, "CONFLICT", "LINK-CONFLICT-409")
    # Nothing moved: the owner still re-links with 200, the rival still conflicts.
    expect_status(api.put(link_path(owner, account)), 200, "LINK-CONFLICT-UNCHANGED")
    expect_problem(api.put(link_path(rival, account)), 409, "CONFLICT", "LINK-CONFLICT-UNCHANGED")
