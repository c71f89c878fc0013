"""How far the suite may go with a target: timeouts, body cap, request and time budgets,
rate-limit pacing, the read-only profile.

A conformance suite is pointed at servers that are broken by definition and at environments
other teams share. These limits keep every run finite and polite: each request has a
wall-clock bound, bodies are read up to a cap, the number of requests and the run time are
budgeted, and the suite slows down when the target says its window is nearly spent.
"""

from __future__ import annotations

import contextlib
import email.utils
import heapq
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from conformance._config import Principal

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_RETRY_AFTER_CAP = 30.0
DEFAULT_PACING_CAP = 60.0

#: Methods that cannot change state, and principals the server cannot attribute to any
#: organization (so a request carrying them cannot change any organization's state).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ANONYMOUS_PRINCIPALS = frozenset({Principal.NONE, Principal.INVALID, Principal.MALFORMED})


class TransportFailure(AssertionError):
    """The target gave no usable HTTP answer (timeout, reset, broken body, oversized body).

    An AssertionError on purpose: the affected check fails with this reason; the run goes on."""

    def __init__(self, method: str, url: str, reason: str) -> None:
        self.method, self.url, self.reason = method, url, reason
        super().__init__(f"transport failure: {method} {url}: {reason}")


class ResponseTooLarge(TransportFailure):
    """The body exceeded the cap; reading stopped there, so memory stays bounded."""


class BudgetExhausted(Exception):
    """The request or time budget is spent; the test is skipped with this reason."""


class ReadOnlyRefused(Exception):
    """``--read-only`` forbids this request; the test is skipped with this reason."""


def may_change_state(method: str, principal: Principal) -> bool:
    """False only for requests that cannot change state: safe methods, or no usable key."""
    return method.upper() not in SAFE_METHODS and principal not in ANONYMOUS_PRINCIPALS


@dataclass
class RunLimits:
    """Everything that bounds one run; resolved from options once per session."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_requests: int | None = None
    time_budget: float | None = None
    retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP
    pacing_cap: float = DEFAULT_PACING_CAP
    read_only: bool = False
    enable_disruptive: bool = False
    started: float = field(default_factory=time.monotonic)

    def time_left(self) -> float | None:
        """Seconds left of the run's time budget; None when the run has none."""
        if self.time_budget is None:
            return None
        return self.time_budget - (time.monotonic() - self.started)

    def time_exhausted(self) -> bool:
        left = self.time_left()
        return left is not None and left <= 0

    def time_budget_reason(self) -> str:
        return f"the run's time budget of {self.time_budget:g} s (--time-budget) is spent"

    def bounded_wait(self, seconds: float, cap: float) -> float:
        """A wait no longer than ``cap`` nor than what is left of the time budget."""
        left = self.time_left()
        return max(0.0, min(seconds, cap, left if left is not None else seconds))


class RequestBudget:
    """Counts requests against ``--max-requests``; never lets one more through.

    Every resource the suite creates reserves the one DELETE that removes it, so the cleanup
    at the end of a run always fits in the budget."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.sent = 0
        self.reserved = 0
        # the cleanup's connections (ApiClient.fork) spend from this one budget at once
        self._lock = threading.Lock()

    def take(self, *, reserved: bool = False) -> None:
        with self._lock:
            if reserved and self.reserved > 0:
                self.reserved -= 1
            elif self.limit is not None and self.sent + self.reserved >= self.limit:
                raise BudgetExhausted(
                    f"the request budget of {self.limit} (--max-requests) is spent: "
                    f"{self.sent} sent, {self.reserved} kept for cleanup"
                )
            self.sent += 1

    def reserve(self) -> None:
        with self._lock:
            self.reserved += 1

    def can_reserve(self, needed: int) -> bool:
        """Room for ``needed`` more requests plus the reservation that follows them."""
        return self.limit is None or self.sent + self.reserved + needed + 1 <= self.limit


def _as_number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Pacer:
    """Remembers each key's ``X-RateLimit-Remaining``/``Reset`` and waits for the window to
    reset before a request that would surely be refused with 429."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str | None, tuple[float, float]] = {}

    def update(self, key: str | None, headers: Any) -> None:
        remaining = _as_number(headers.get_value("x-ratelimit-remaining"))
        reset = _as_number(headers.get_value("x-ratelimit-reset"))
        if remaining is not None and reset is not None:
            self._windows[key] = (remaining, reset)

    def wait_before(self, key: str | None) -> float:
        """Seconds to wait before the next request with ``key``; 0 while the window has room.

        An empty window stays known until its reset time, so every request sent meanwhile
        waits for it, also one a cleanup connection sends alongside (ApiClient.fork)."""
        remaining, reset = self._windows.get(key, (1.0, 0.0))
        if remaining > 0:
            return 0.0
        wait = reset - self._clock()
        if wait <= 0:
            self._windows.pop(key, None)
            return 0.0
        return wait


def retry_after_seconds(value: str | None, clock: Callable[[], float] = time.time) -> float:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; 1 s when absent or garbled."""
    if value is None:
        return 1.0
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 1.0
    return max(0.0, when.timestamp() - clock())


class Watchdog:
    """Bounds one request in wall-clock time, headers and body included.

    httpx's read timeout bounds each read, so a server sending one byte a second never trips
    it. The watchdog learns the request's socket from httpx's connection trace (or, for a
    kept-alive connection, from the caller, who saw it connect) and shuts it down when the
    deadline passes, which wakes the blocked read."""

    def __init__(self, seconds: float, known_socket: socket.socket | None = None) -> None:
        self.seconds = seconds
        self.fired = False
        self._socket: socket.socket | None = known_socket
        self._lock = threading.Lock()
        self._alarm: _Alarm | None = None

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event in {"connection.connect_tcp.complete", "connection.start_tls.complete"}:
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._socket = sock
                    if self.fired:
                        self._shutdown()

    @property
    def socket(self) -> socket.socket | None:
        """The socket the request used, for the next request on the same connection."""
        return self._socket

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Watchdog:
        self._alarm = _ALARMS.set(self.seconds, self._fire)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._alarm is not None:
            self._alarm.cancelled = True


@dataclass(order=True)
class _Alarm:
    """One deadline and what to call when it passes, unless cancelled first."""

    deadline: float
    sequence: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class _AlarmClock:
    """One daemon thread for every request's watchdog.

    A ``threading.Timer`` per request started a thread per request (about 0.4 ms each, a
    sixth of a loopback round trip); here a request only pushes its deadline on a heap.
    Cancelled alarms are dropped when they come due; the thread sleeps until the earliest.
    It is woken only for a deadline earlier than the one it sleeps until: each request's
    deadline is later than the last one's, so sequential requests never wake it."""

    def __init__(self) -> None:
        self._alarms: list[_Alarm] = []
        self._wake = threading.Condition()
        self._sequence = 0
        self._thread: threading.Thread | None = None
        self._sleeping_until = math.inf

    def set(self, seconds: float, action: Callable[[], None]) -> _Alarm:
        with self._wake:
            while self._alarms and self._alarms[0].cancelled:
                heapq.heappop(self._alarms)
            self._sequence += 1
            alarm = _Alarm(time.monotonic() + seconds, self._sequence, action)
            heapq.heappush(self._alarms, alarm)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="conformance-watchdog", daemon=True
                )
                self._thread.start()
            elif alarm.deadline < self._sleeping_until:
                self._wake.notify()
        return alarm

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._alarms and self._alarms[0].cancelled:
                    heapq.heappop(self._alarms)
                if not self._alarms:
                    self._sleeping_until = math.inf
                    self._wake.wait()
                    continue
                due = self._alarms[0]
                left = due.deadline - time.monotonic()
                if left > 0:
                    self._sleeping_until = due.deadline
                    self._wake.wait(left)
                    continue
                self._sleeping_until = math.inf
                heapq.heappop(self._alarms)
            if not due.cancelled:
                due.action()


_ALARMS = _AlarmClock()


@dataclass(frozen=True)
class RetryRecord:
    """One unexpected 429 the client waited out and retried."""

    request: str
    waited: float
    retried: bool
