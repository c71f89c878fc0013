"""The instrumented HTTP client every producer sends through.

It tags each request with a run-scoped ``X-Request-ID``, records the exchange, and hands it to
the rules, so a response is judged the same way whichever test produced it.
"""

from __future__ import annotations

import copy
import itertools
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from conformance._config import Credentials, Principal, SuiteConfig
from conformance._exchange import CaseInsensitiveHeaders, Exchange
from conformance._limits import (
    BudgetExhausted,
    Pacer,
    ReadOnlyRefused,
    RequestBudget,
    ResponseTooLarge,
    RetryRecord,
    RunLimits,
    TransportFailure,
    Watchdog,
    may_change_state,
    retry_after_seconds,
)

Observer = Callable[[Exchange], None]

INVALID_KEY = "ca_conformance_invalid_key_0000000000"
#: longest wait for a connection to close (see :meth:`ApiClient.close`)
CLOSE_WAIT = 2.0
#: what httpx.Client sends unless told otherwise; scenarios override any of them per request
DEFAULT_HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": f"python-httpx/{httpx.__version__}",
}
MALFORMED_AUTHORIZATION = "Bearer"


class MissingCredential(Exception):
    """The test needs a key the configuration does not have; the message names the variable."""


class ApiClient:
    """Sends requests to the target as a given principal and records each exchange."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        run_id: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        limits: RunLimits | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.run_id = run_id
        self._counter = itertools.count(1)
        self._observers: list[Observer] = []
        self.log: list[Exchange] = []
        self.limits = limits if limits is not None else RunLimits(request_timeout=timeout)
        self.budget = RequestBudget(self.limits.max_requests)
        self.pacer = Pacer(clock)
        self.retries: list[RetryRecord] = []
        self._sleep, self._clock = sleep, clock
        # At most one kept-alive connection: requests are sequential, so the socket the watchdog
        # must shut is the one last seen connecting (a new connection reports its own). The
        # pool itself stays unbounded: a request cut off by Ctrl-C can leave its connection
        # marked busy, and the cleanup that follows must still get a connection.
        self._socket: socket.socket | None = None
        self._timeouts = httpx.Timeout(
            self.limits.read_timeout,
            connect=self.limits.connect_timeout,
            pool=self.limits.connect_timeout,
        ).as_dict()
        # Requests go straight to the transport, not through httpx.Client: the client's
        # redirect, auth and cookie machinery cost about 0.25 ms a request (measured on
        # loopback, a tenth of a round trip) for nothing the suite wants. Redirects are never
        # followed and no cookie is carried from one request to the next, so each request is
        # exactly what its scenario wrote.
        self._injected = transport
        self._transport: httpx.BaseTransport = transport or self._new_transport()
        self._owns_transport = True

    @classmethod
    def for_config(
        cls, config: SuiteConfig, base_url: str, limits: RunLimits | None = None
    ) -> ApiClient:
        return cls(
            base_url,
            config.credentials,
            run_id=config.run_id,
            timeout=config.request_timeout,
            limits=limits,
        )

    def _new_transport(self) -> httpx.BaseTransport:
        return httpx.HTTPTransport(
            limits=httpx.Limits(max_keepalive_connections=1),
            # a plain-http target never uses TLS: skip loading the CA bundle (~0.1-0.3 s per
            # session and per xdist worker, measured); https targets verify as before
            verify=not self.base_url.startswith("http://"),
        )

    def close(self) -> None:
        """Close the connection, waiting at most :data:`CLOSE_WAIT`. An interrupt (Ctrl-C,
        SIGTERM) that lands just after httpcore took its connection pool's lock leaves the
        lock held, and closing then waited forever: a hung teardown after the cleanup (seen in
        a lane). The close runs in a daemon thread; one that does not finish is left to the
        process's exit."""
        if not self._owns_transport:
            return
        closer = threading.Thread(
            target=self._transport.close, name="conformance-close", daemon=True
        )
        closer.start()
        closer.join(CLOSE_WAIT)

    def fork(self, sleep: Callable[[float], None] | None = None) -> ApiClient:
        """A client for another thread: its own connection, everything else shared with this
        one (request ids, budget, pacing, log, observers), so what it sends is counted, logged
        and judged as this client's own. The cleanup deletes over a few of them at once;
        ``sleep`` replaces how it waits (the cleanup's may stop waiting when told to)."""
        twin = copy.copy(self)
        twin._socket = None
        twin._sleep = sleep or self._sleep
        # an injected transport (a test's mock) is shared; closing the fork must not close it
        twin._transport = self._injected or self._new_transport()
        twin._owns_transport = self._injected is None
        return twin

    def observe(self, observer: Observer) -> None:
        """Call ``observer`` with every exchange (the rules, the result collector)."""
        self._observers.append(observer)

    def url(self, path: str) -> str:
        return self.base_url + path

    def next_request_id(self) -> str:
        return f"conformance-{self.run_id}-{next(self._counter)}"

    def has_key(self, principal: Principal) -> bool:
        return principal.env_var is None or self.credentials.key_for(principal) is not None

    def authorization_for(self, principal: Principal) -> str | None:
        if principal is Principal.NONE:
            return None
        if principal is Principal.INVALID:
            return f"Bearer {INVALID_KEY}"
        if principal is Principal.MALFORMED:
            return MALFORMED_AUTHORIZATION
        key = self.credentials.key_for(principal)
        if key is None:
            raise MissingCredential(
                f"needs {principal.env_var}, which is not set (pass it as an environment "
                f"variable or --{principal.value.replace('_', '-')})"
            )
        return f"Bearer {key}"

    def request(
        self,
        method: str,
        path: str,
        *,
        principal: Principal = Principal.FULL,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        request_id: str | bool | None = True,
        authorization: str | None = None,
        cleanup: bool = False,
        pace: bool = True,
        retry_on_429: bool = True,
    ) -> Exchange:
        """Send one request; ``request_id=False`` sends none, a string sends that value.

        ``cleanup=True`` marks the DELETE of a resource this run created: it spends the
        request reserved for it and ignores the time budget. Scenarios about rate limits pass
        ``pace=False, retry_on_429=False`` to see the target's limits unsoftened."""
        if self.limits.read_only and may_change_state(method, principal):
            raise ReadOnlyRefused(
                f"--read-only: {method} with the {principal.name} key could change state, "
                "so this check was not run"
            )
        sent = httpx.Headers(DEFAULT_HEADERS)  # later values replace, whatever their case
        auth = authorization if authorization is not None else self.authorization_for(principal)
        if auth is not None:
            sent["Authorization"] = auth
        if request_id is True:
            sent["X-Request-ID"] = self.next_request_id()
        elif isinstance(request_id, str):
            sent["X-Request-ID"] = request_id
        sent.update(headers or {})
        request = httpx.Request(
            method, self.url(path), headers=sent, json=json, content=content,
            extensions={"timeout": self._timeouts},
        )
        if pace:
            self._pace(auth)
        exchange = self._send(request, principal, cleanup)
        if exchange.status == 429 and retry_on_429:
            exchange = self._retry_after_429(request, exchange, cleanup)
        self._notify(exchange)
        return exchange

    def _notify(self, exchange: Exchange) -> None:
        for observer in self._observers:
            observer(exchange)

    def pace(self, principal: Principal = Principal.FULL) -> None:
        """Wait as a request with ``principal``'s key would (see :meth:`_pace`), without
        sending it: for a caller that must not be interrupted while it sends."""
        self._pace(self.authorization_for(principal))

    def _pace(self, key: str | None) -> None:
        """Wait for the window to reset when the target said it has no request left."""
        wait = self.pacer.wait_before(key)
        if wait > 0:
            self._sleep(self.limits.bounded_wait(wait, self.limits.pacing_cap))

    def _retry_after_429(
        self, request: httpx.Request, first: Exchange, cleanup: bool
    ) -> Exchange:
        """An unexpected 429: judge it, wait ``Retry-After`` (bounded) and try once more."""
        self._notify(first)
        asked = retry_after_seconds(first.headers.get_value("retry-after"), self._clock)
        if asked > self.limits.retry_after_cap:
            self.retries.append(RetryRecord(first.describe(), 0.0, retried=False))
            return first
        wait = self.limits.bounded_wait(asked, self.limits.retry_after_cap)
        self.retries.append(RetryRecord(first.describe(), wait, retried=True))
        self._sleep(wait)
        second = self._send(request, first.principal, cleanup)
        second.retried_after = wait
        return second

    def _unless_budget_spent(self, cleanup: bool) -> None:
        """A request cut short because the run's time budget ran out meanwhile (its time bound
        was what was left of it) is the budget's doing, not the target's: the check is skipped
        like one that starts after the budget, instead of failing on a time-out."""
        if not cleanup and self.limits.time_exhausted():
            raise BudgetExhausted(self.limits.time_budget_reason())

    def _send(self, request: httpx.Request, principal: Principal, cleanup: bool) -> Exchange:
        """One HTTP round trip within the budgets; no usable answer is a TransportFailure."""
        bound = self.limits.request_timeout
        left = self.limits.time_left()
        if left is not None and not cleanup:
            if left <= 0:
                raise BudgetExhausted(self.limits.time_budget_reason())
            bound = min(bound, left)
        self.budget.take(reserved=cleanup)
        watchdog = Watchdog(bound, known_socket=self._socket)
        request.extensions["trace"] = watchdog.trace
        started = time.monotonic()
        try:
            with watchdog:
                response = self._transport.handle_request(request)
                try:
                    body, truncated = self._read_capped(response)
                finally:
                    response.close()
        except httpx.HTTPError as exc:
            self._unless_budget_spent(cleanup)
            reason = self._failure_reason(exc, watchdog)
            raise TransportFailure(request.method, str(request.url), reason) from None
        finally:
            self._socket = watchdog.socket
        if watchdog.fired:
            self._unless_budget_spent(cleanup)
            reason = f"no complete response within {bound:g} s (the request's time bound)"
            raise TransportFailure(request.method, str(request.url), reason)
        exchange = Exchange(
            method=request.method,
            url=str(request.url),
            request_headers=CaseInsensitiveHeaders.of(request.headers.multi_items()),
            request_body=request.content or None,
            status=response.status_code,
            headers=CaseInsensitiveHeaders.of(response.headers.multi_items()),
            body=body,
            principal=principal,
            elapsed=time.monotonic() - started,
            secrets=self.credentials.secrets(),
            truncated=truncated,
        )
        self.log.append(exchange)
        self.pacer.update(request.headers.get("authorization"), exchange.headers)
        if truncated:
            raise ResponseTooLarge(
                request.method,
                str(request.url),
                f"response body exceeds the {self.limits.max_body_bytes}-byte cap "
                f"(--max-body-bytes); reading stopped there\n{exchange.evidence()}",
            )
        return exchange

    def _read_capped(self, response: httpx.Response) -> tuple[bytes, bool]:
        """The body up to the cap, and whether there was more."""
        cap, size = self.limits.max_body_bytes, 0
        chunks: list[bytes] = []
        for chunk in response.iter_bytes():
            room = cap - size
            if len(chunk) > room:
                chunks.append(chunk[:room])
                return b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks), False

    def _failure_reason(self, exc: httpx.HTTPError, watchdog: Watchdog) -> str:
        if watchdog.fired:
            return f"no complete response within {watchdog.seconds:g} s (the request's time bound)"
        if isinstance(exc, httpx.ConnectTimeout):
            return f"connect timeout: no connection within {self.limits.connect_timeout:g} s"
        if isinstance(exc, httpx.ReadTimeout):
            return f"read timeout: nothing received for {self.limits.read_timeout:g} s"
        if isinstance(exc, httpx.TimeoutException):
            return f"timeout ({type(exc).__name__})"
        if isinstance(exc, httpx.ConnectError):
            return f"cannot connect: {exc}"
        if isinstance(exc, httpx.ReadError | httpx.WriteError):
            return f"connection reset or broken: {exc or type(exc).__name__}"
        if isinstance(exc, httpx.RemoteProtocolError):
            if "without sending a response" in str(exc):
                return "connection closed or reset before any answer"
            return f"the server broke the HTTP exchange: {exc}"
        return f"{type(exc).__name__}: {exc}"

    def record(self, exchange: Exchange) -> None:
        """Log and judge an exchange another transport sent (the fuzzer's), like our own."""
        self.log.append(exchange)
        self._notify(exchange)

    def get(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("DELETE", path, **kwargs)
