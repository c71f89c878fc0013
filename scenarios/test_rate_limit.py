"""Rate limits: per key, counting down, and (only when enabled) an exhausted window.

Exhausting a window is disruptive on shared staging: it runs only with --enable-disruptive and
only when X-RateLimit-Remaining is within --rate-limit-budget. It uses the read-only key, which
the scenarios after this file do not need."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable

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
#: when every attempt looked shared: the burst compared with an equal one that no key pays
#: for, this many times, and the median difference decides
COMPARED_BURST = 10
COMPARED_ATTEMPTS = 5


def _fall_of_write_key(api: ApiClient, burst: Callable[[], object]) -> int | None:
    """How far the write key's Remaining fell around ``burst`` (its own probe included);
    None when the window rolled over in between, which tells nothing."""
    before, reset_before = _remaining(_probe(api))
    burst()
    after, reset_after = _remaining(_probe(api))
    return before - after if reset_before == reset_after else None


def _other_key_burst(api: ApiClient, count: int) -> Callable[[], object]:
    return lambda: [_probe(api, Principal.READONLY) for _ in range(count)]


def _uncounted_burst(api: ApiClient, count: int) -> Callable[[], object]:
    """As many requests, as long, that count against no key: the public health endpoint."""
    return lambda: [
        api.get("/health", principal=Principal.NONE, **UNSOFTENED) for _ in range(count)
    ]


@pytest.mark.requirement("RL-PER-KEY")
def test_one_keys_requests_do_not_use_up_anothers_window(api: ApiClient, observe) -> None:
    """If the windows were shared, the write key's Remaining would fall by at least the other
    key's requests plus its own probe. Alone on the write key, the first attempt shows it.

    Someone else using the write key at the same time (another xdist worker's state machine,
    another CI job on staging) makes it fall further, possibly in every attempt. Then the
    other key's burst is compared with an equal burst that counts against no key, sent right
    after it: with shared windows the first falls by the burst's size more, whatever the
    concurrent traffic adds to both; the median of several comparisons decides."""
    falls: list[int] = []
    for _ in range(PER_KEY_ATTEMPTS):
        fall = _fall_of_write_key(api, _other_key_burst(api, OTHER_KEY_REQUESTS))
        if fall is None:
            continue
        if fall < OTHER_KEY_REQUESTS + 1:
            return
        falls.append(fall)
    if not falls:
        pytest.skip(
            f"the rate-limit window rolled over during each of {PER_KEY_ATTEMPTS} attempts, "
            "so RL-PER-KEY could not be judged (it needs a window longer than a few requests)"
        )
    differences: list[int] = []
    for _ in range(COMPARED_ATTEMPTS):
        with_other = _fall_of_write_key(api, _other_key_burst(api, COMPARED_BURST))
        uncounted = _fall_of_write_key(api, _uncounted_burst(api, COMPARED_BURST))
        if with_other is not None and uncounted is not None:
            differences.append(with_other - uncounted)
    if not differences:
        pytest.skip(
            "the write key was in use by someone else and the window rolled over during each "
            "comparison, so RL-PER-KEY could not be judged"
        )
    if statistics.median(differences) < COMPARED_BURST / 2:
        observe(
            f"the write key's Remaining fell by {falls} around {OTHER_KEY_REQUESTS} requests of "
            "another key: someone else used it meanwhile; compared with requests no key pays "
            f"for, the other key's {COMPARED_BURST} cost it {sorted(differences)} (separate "
            "windows)"
        )
        return
    raise ExpectationFailed(
        "RL-PER-KEY",
        f"the write key's Remaining fell by {falls} in {len(falls)} attempts while another "
        f"key made {OTHER_KEY_REQUESTS} requests in each, and {COMPARED_BURST} requests of "
        f"the other key cost it {sorted(differences)} more than as many that count against no "
        "key",
        api.log[-1],
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
@pytest.mark.disruptive  # skipped before its first request unless enabled
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
@pytest.mark.disruptive
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
