"""Path ids that are not UUIDs: 422 VALIDATION_ERROR naming the offending field."""

from __future__ import annotations

import pytest

from conformance import ApiClient, expect_error_for_field, expect_problem, expect_status, link_path

NOT_A_UUID = "not-a-uuid"


@pytest.mark.requirement("LINK-PATH-UUID-422", "ERR-422-ERRORS", "CODE-422")
@pytest.mark.parametrize("bad", ["creator_id", "account_id", "both"])
def test_non_uuid_path_id_is_422_naming_field(api: ApiClient, data, bad: str) -> None:
    creator = NOT_A_UUID if bad in {"creator_id", "both"} else data.owner()
    account = NOT_A_UUID if bad in {"account_id", "both"} else data.account()
    exchange = api.put(f"/creators/{creator}/accounts/{account}")
    expect_problem(exchange, 422, "VALIDATION_ERROR", "LINK-PATH-UUID-422")
    for field in ("creator_id", "account_id") if bad == "both" else (bad,):
        expect_error_for_field(exchange, field, "ERR-422-ERRORS")


@pytest.mark.requirement("LINK-PATH-UUID-CASE")
def test_uppercase_uuids_are_valid_path_ids(api: ApiClient, data, observe) -> None:
    """RFC 9562: hex digits are case-insensitive on input. Normalising (201) is the natural
    reading; a strict validator's 422 is accepted and recorded. Never a 5xx."""
    path = link_path(data.owner().upper(), data.account().upper())
    exchange = api.put(path)
    expect_status(exchange, {201, 422}, "LINK-PATH-UUID-CASE")
    if exchange.status == 422:
        observe("uppercase UUID path ids -> 422 (not normalised)")
