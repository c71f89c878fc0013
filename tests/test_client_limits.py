"""The client's limits without a server: request budget, pacing, one bounded retry after 429,
the read-only guard. httpx's MockTransport answers; sleeping is recorded, not done."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from conformance import ApiClient, Credentials, Principal
from conformance._limits import BudgetExhausted, ReadOnlyRefused, RunLimits

Handler = Callable[[httpx.Request], httpx.Response]


def answer(status: int = 200, **headers: str) -> httpx.Response:
    body = {"data": {"id": "x"}} if status < 400 else None
    return httpx.Response(status, headers=headers, json=body)


def make_client(handler: Handler, slept: list[float] | None = None, **limits: object) -> ApiClient:
    naps = slept if slept is not None else []
    return ApiClient(
        "http://target.test/v2",
        Credentials(api_key="ca_key"),
        run_id="r",
        transport=httpx.MockTransport(handler),
        limits=RunLimits(**limits),  # type: ignore[arg-type]
        sleep=naps.append,
    )


def test_request_budget_is_never_exceeded() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer()

    client = make_client(handler, max_requests=3)
    for _ in range(3):
        client.get("/creators")
    with pytest.raises(BudgetExhausted, match=r"budget of 3 \(--max-requests\)"):
        client.get("/creators")
    assert len(sent) == 3


def test_reserved_cleanup_request_fits_in_the_budget() -> None:
    client = make_client(lambda request: answer(), max_requests=2)
    client.post("/creators", json={})
    client.budget.reserve()  # what the provisioner does for each resource it creates
    with pytest.raises(BudgetExhausted):
        client.get("/creators")
    client.delete("/creators/x", cleanup=True)
    assert client.budget.sent == 2


def test_time_budget_stops_requests() -> None:
    client = make_client(lambda request: answer(), time_budget=0.01)
    time.sleep(0.02)
    with pytest.raises(BudgetExhausted, match="time budget"):
        client.get("/creators")


def test_a_request_the_time_budget_cuts_short_is_skipped_not_failed() -> None:
    """Its time bound was what was left of the budget: the budget ran out, not the target."""

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.3)
        return answer()

    client = make_client(slow, time_budget=0.1)
    with pytest.raises(BudgetExhausted, match="time budget"):
        client.get("/creators")


def test_waits_for_the_window_to_reset_when_none_is_left() -> None:
    reset = int(time.time()) + 5
    slept: list[float] = []
    client = make_client(
        lambda request: answer(**{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}),
        slept,
    )
    client.get("/creators")
    assert slept == []
    client.get("/creators")
    assert len(slept) == 1 and 3 < slept[0] <= 5


def test_every_connection_waits_for_an_empty_window() -> None:
    """The cleanup's connections share one pacer: once a window is known to be empty, each of
    them waits for its reset, not only the first to ask."""
    reset = int(time.time()) + 5
    slept: list[float] = []
    empty = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}
    # the DELETEs' answers say nothing of the window: as if both were sent before either came
    client = make_client(lambda r: answer(**empty) if r.method == "GET" else answer(204), slept)
    client.get("/creators")
    first, second = client.fork(), client.fork()
    first.delete("/creators/a", pace=True)
    second.delete("/creators/b", pace=True)
    assert len(slept) == 2 and all(3 < nap <= 5 for nap in slept)


def test_no_wait_while_the_window_has_room() -> None:
    slept: list[float] = []
    headers = {"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": str(int(time.time()) + 60)}
    client = make_client(lambda request: answer(**headers), slept)
    for _ in range(3):
        client.get("/creators")
    assert slept == []


def test_unexpected_429_is_waited_out_and_retried_once() -> None:
    answers = iter([answer(429, **{"Retry-After": "2"}), answer(200)])
    slept: list[float] = []
    client = make_client(lambda request: next(answers), slept)
    exchange = client.get("/creators")
    assert exchange.status == 200
    assert exchange.retried_after == 2
    assert slept == [2]
    assert [r.retried for r in client.retries] == [True]
    assert client.budget.sent == 2


def test_429_asking_longer_than_the_cap_is_not_retried() -> None:
    slept: list[float] = []
    client = make_client(
        lambda request: answer(429, **{"Retry-After": "3600"}), slept, retry_after_cap=5
    )
    assert client.get("/creators").status == 429
    assert slept == []
    assert [r.retried for r in client.retries] == [False]


def test_retry_can_be_turned_off_for_rate_limit_scenarios() -> None:
    client = make_client(lambda request: answer(429, **{"Retry-After": "1"}))
    assert client.get("/creators", retry_on_429=False).status == 429
    assert client.retries == []


@pytest.mark.parametrize(
    ("method", "principal", "allowed"),
    [
        ("GET", Principal.FULL, True),
        ("PUT", Principal.NONE, True),
        ("PUT", Principal.INVALID, True),
        ("PUT", Principal.FULL, False),
        ("POST", Principal.READONLY, False),
        ("DELETE", Principal.FULL, False),
    ],
    ids=["get", "put-anonymous", "put-invalid-key", "put", "post-read-key", "delete"],
)
def test_read_only_sends_only_requests_that_cannot_change_state(
    method: str, principal: Principal, allowed: bool
) -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        return answer()

    client = make_client(handler, read_only=True)
    client.credentials = Credentials(api_key="k", readonly_api_key="r")
    if allowed:
        client.request(method, "/creators/x", principal=principal)
        assert sent == [method]
    else:
        with pytest.raises(ReadOnlyRefused, match="--read-only"):
            client.request(method, "/creators/x", principal=principal)
        assert sent == []


def test_an_earlier_deadline_fires_while_a_later_one_is_pending() -> None:
    """The watchdog thread sleeps until the earliest deadline and is woken only for an
    earlier one: a short bound set after a long one must still fire on time."""
    import threading

    from conformance._limits import _AlarmClock

    clock = _AlarmClock()
    fired = threading.Event()
    clock.set(30.0, lambda: None)
    started = time.monotonic()
    clock.set(0.05, fired.set)
    assert fired.wait(5.0)
    assert time.monotonic() - started < 2.0


def test_cancelled_alarms_do_not_fire() -> None:
    import threading

    from conformance._limits import _AlarmClock

    clock = _AlarmClock()
    fired = threading.Event()
    alarm = clock.set(0.05, fired.set)
    alarm.cancelled = True
    later = threading.Event()
    clock.set(0.1, later.set)
    assert later.wait(5.0)
    assert not fired.is_set()


def test_closing_does_not_hang_on_a_connection_pool_an_interrupt_left_locked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An interrupt right after httpcore took its pool's lock leaves the lock held; the
    session's teardown then closed the client and waited forever."""
    import threading

    from conformance import _client

    released = threading.Event()

    class StuckTransport(httpx.BaseTransport):
        def close(self) -> None:
            released.wait(30)  # as a lock nobody will release

    monkeypatch.setattr(_client, "CLOSE_WAIT", 0.2)
    monkeypatch.setattr(ApiClient, "_new_transport", lambda self: StuckTransport())
    client = ApiClient("http://target.test/v2", Credentials(api_key="ca_key"), run_id="r")
    started = time.monotonic()
    client.close()
    released.set()
    assert time.monotonic() - started < 2
