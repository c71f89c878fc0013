"""Resources that do not exist in the caller's organization: 404, whatever else is true."""

from __future__ import annotations

import pytest

from conformance import ApiClient, expect_problem, expect_status, link_path, nowhere_id


@pytest.mark.requirement("LINK-NOT-FOUND-404", "CODE-404")
@pytest.mark.parametrize("missing", ["creator", "account", "both"])
def test_missing_resource_is_404(api: ApiClient, data, missing: str) -> None:
    creator = nowhere_id() if missing in {"creator", "both"} else data.owner()
    account = nowhere_id() if missing in {"account", "both"} else data.account()
    expect_problem(api.put(link_path(creator, account)), 404, "NOT_FOUND", "LINK-NOT-FOUND-404")


@pytest.mark.requirement("LINK-OTHER-ORG-404")
@pytest.mark.parametrize("foreign", ["creator", "account"])
def test_other_organization_resource_is_404(api: ApiClient, data, foreign: str) -> None:
    creator = data.owner("other" if foreign == "creator" else "own")
    account = data.account("other" if foreign == "account" else "own")
    expect_problem(api.put(link_path(creator, account)), 404, "NOT_FOUND", "LINK-OTHER-ORG-404")


@pytest.mark.requirement("LINK-OTHER-ORG-404")
def test_failed_foreign_link_leaves_account_unlinked(api: ApiClient, data) -> None:
    """A 404 must not hide a write: the own account is still free for a first link."""
    creator_elsewhere, account = data.owner("other"), data.account()
    expect_problem(
        api.put(link_path(creator_elsewhere, account)), 404, "NOT_FOUND", "LINK-OTHER-ORG-404"
    )
    expect_status(api.put(link_path(data.owner(), account)), 201, "LINK-OTHER-ORG-404")
