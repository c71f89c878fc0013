"""Rate limits: per key, counting down, and (only when enabled) an exhausted window.

Exhausting a window is disruptive on shared staging: it runs only with --enable-disruptive and
only when X-RateLimit-Remaining is within --rate-limit-budget. It uses the read-only key, which
the scenarios after this file do not need."""

from __future__ import annotations

import itertools

import pytest

from conformance import ApiClient, Exchange, Principal, expect_problem, link_path, nowhere_id
from conformance._expect import ExpectationFailed
from conformance._guard import require_disruptive

#: See the target's limits as they are: no pacing before a spent window, no retry of a 429.
UNSOFTENED = {"pace": False, "retry_on_429": False}


def _probe(api: ApiClient, principal: Principal = Principal.FULL) -> Exchange:
    """A cheap authenticated request: a link between two ids that exist nowhere (404)."""
    if principal is Principal.READONLY:
        return api.get(f"/creators/{nowhere_id()}", principal=principal, **UNSOFTENED)
    return api.put(link_path(nowhere_id(), nowhere_id()), principal=principal, **UNSOFTENED)


def _remaining(exchange: Exchange) -> tuple[int, str]:
    remaining = exchange.headers.get_value("x-ratelimit-remaining")
    if remaining is None or not remaining.strip().isdigit():
        raise ExpectationFailed("RL-HEADERS", "no integer X-RateLimit-Remaining", exchange)
    return int(remaining), exchange.headers.get_value("x-ratelimit-reset") or ""


@pytest.mark.requirement("RL-REMAINING-DECREASES")
def test_remaining_goes_down_as_requests_are_made(api: ApiClient) -> None:
    readings = [_probe(api) for _ in range(3)]
    values = [_remaining(r) for r in readings]
    same_window = len({reset for _, reset in values}) == 1
    counts = [count for count, _ in values]
    if same_window and not all(b < a for a, b in itertools.pairwise(counts)):
        raise ExpectationFailed(
            "RL-REMAINING-DECREASES",
            f"X-RateLimit-Remaining over three requests in one window: {counts}",
            readings[-1],
        )


#: requests the other key makes per attempt, and how many attempts may look shared
OTHER_KEY_REQUESTS = 4
PER_KEY_ATTEMPTS = 3


@pytest.mark.requirement("RL-PER-KEY")
def test_one_keys_requests_do_not_use_up_anothers_window(api: ApiClient) -> None:
    """If the windows were shared, the write key's Remaining would fall by at least the other
    key's requests plus its own probe in *every* attempt. Someone else using the write key at
    the same time (another xdist worker, another CI job on staging) can only make it fall
    further, so one attempt with a smaller fall proves the windows apart; a conforming server
    is never failed for concurrent traffic, and a shared window fails every attempt."""
    falls: list[int] = []
    for _ in range(PER_KEY_ATTEMPTS):
        before, reset_before = _remaining(_probe(api))
        for _ in range(OTHER_KEY_REQUESTS):
            _probe(api, Principal.READONLY)
        after_exchange = _probe(api)
        after, reset_after = _remaining(after_exchange)
        if reset_before != reset_after:
            continue  # the window rolled over in between: this attempt tells nothing
        if before - after < OTHER_KEY_REQUESTS + 1:
            return
        falls.append(before - after)
    if not falls:
        pytest.skip(
            f"the rate-limit window rolled over during each of {PER_KEY_ATTEMPTS} attempts, "
            "so RL-PER-KEY could not be judged (it needs a window longer than a few requests)"
        )
    raise ExpectationFailed(
        "RL-PER-KEY",
        f"the write key's Remaining fell by {falls} in {len(falls)} attempts while another "
        f"key made {OTHER_KEY_REQUESTS} requests in each",
        after_exchange,
    )


def _disruptive_budget(
    request: pytest.FixtureRequest, requests_needed: int, header: str = "X-RateLimit-Remaining"
) -> None:
    require_disruptive(request.config)  # --enable-disruptive (and not a --read-only run)
    budget = request.config.getoption("creatoraudit_rate_limit_budget")
    if requests_needed > budget:
        pytest.skip(
            f"{header} is {requests_needed}, above the request budget {budget}; "
            "raise --rate-limit-budget to exhaust the window"
        )


@pytest.mark.requirement("RL-429", "RL-RETRY-AFTER", "CODE-429")
def test_exhausted_window_is_429_with_retry_after(
    api: ApiClient, request: pytest.FixtureRequest
) -> None:
    remaining, _ = _remaining(_probe(api, Principal.READONLY))
    _disruptive_budget(request, remaining)
    last = None
    for _ in range(remaining + 2):
        last = _probe(api, Principal.READONLY)
        if last.status == 429:
            break
    assert last is not None
    # The rules judge Retry-After (integer seconds) on the 429.
    expect_problem(last, 429, "RATE_LIMITED", "RL-429")


@pytest.mark.requirement("RL-PUBLIC-NOT-LIMITED")
def test_public_endpoints_are_not_limited(api: ApiClient, request: pytest.FixtureRequest) -> None:
    limit_header = _probe(api).headers.get_value("x-ratelimit-limit") or ""
    limit = int(limit_header) if limit_header.strip().isdigit() else 0
    _disruptive_budget(request, limit, "X-RateLimit-Limit")
    for path in ("/health", "/meta"):
        for _ in range(limit + 2):
            exchange = api.get(path, principal=Principal.NONE, **UNSOFTENED)
            if exchange.status != 200:
                raise ExpectationFailed(
                    "RL-PUBLIC-NOT-LIMITED",
                    f"{path} answered {exchange.status} within {limit + 2} requests",
                    exchange,
                )
