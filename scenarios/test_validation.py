"""Path ids that are not UUIDs: 422 VALIDATION_ERROR naming the offending field."""

from __future__ import annotations

import pytest

from conformance import ApiClient, expect_error_for_field, expect_problem

NOT_A_UUID = "not-a-uuid"


@pytest.mark.requirement("LINK-PATH-UUID-422", "ERR-422-ERRORS")
@pytest.mark.parametrize("bad", ["creator_id", "account_id", "both"])
def test_non_uuid_path_id_is_422_naming_field(api: ApiClient, data, bad: str) -> None:
    creator = NOT_A_UUID if bad in {"creator_id", "both"} else data.creator()
    account = NOT_A_UUID if bad in {"account_id", "both"} else data.account()
    exchange = api.put(f"/creators/{creator}/accounts/{account}")
    expect_problem(exchange, 422, "VALIDATION_ERROR", "LINK-PATH-UUID-422")
    for field in ("creator_id", "account_id") if bad == "both" else (bad,):
        expect_error_for_field(exchange, field, "ERR-422-ERRORS")
