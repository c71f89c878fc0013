"""The benchmark's targets: the embedded reference server, wrapped to count what it serves.

Requests are counted on the server side, so every client (the suite, schemathesis, a plain
httpx loop) is measured the same way whatever it reports about itself. The wrapper sits in
front of the unchanged reference app; ``EmbeddedServer`` serves whatever ``.app`` holds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from conformance._reference import EmbeddedServer, ReferenceKeys, ReferenceSettings

ASGIApp = Any
#: The suite's client tags every request it sends with an ``X-Request-ID`` of this prefix.
SUITE_REQUEST_ID_PREFIX = b"conformance-"
BENCH_RATE_LIMIT = 10_000_000


class CountingApp:
    """ASGI wrapper: counts HTTP requests, the time the server spends on them, their status
    codes, and the window in which the suite's own (tagged) requests arrived."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.busy_s = 0.0
        self.statuses: Counter[int] = Counter()
        self.tagged = 0
        self.tagged_first: float | None = None
        self.tagged_last: float | None = None

    def __getattr__(self, name: str) -> Any:
        # EmbeddedServer reaches through .app for .state (to close the store on stop)
        return getattr(self.app, name)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def recording_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            end = time.perf_counter()
            self.count += 1
            self.busy_s += end - start
            self.statuses[status] += 1
            if _is_suite_request(scope):
                self.tagged += 1
                self.tagged_first = start if self.tagged_first is None else self.tagged_first
                self.tagged_last = end

    @property
    def tagged_window_s(self) -> float:
        if self.tagged_first is None or self.tagged_last is None:
            return 0.0
        return self.tagged_last - self.tagged_first


def _is_suite_request(scope: dict[str, Any]) -> bool:
    return any(
        name == b"x-request-id" and value.startswith(SUITE_REQUEST_ID_PREFIX)
        for name, value in scope.get("headers", ())
    )


@dataclass
class CountedServer:
    server: EmbeddedServer
    counter: CountingApp

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def keys(self) -> ReferenceKeys:
        return self.server.keys

    def key_env(self) -> dict[str, str]:
        """The four keys as the CREATORAUDIT_* variables the suite reads."""
        keys = self.keys
        return {
            "CREATORAUDIT_API_KEY": keys.api_key,
            "CREATORAUDIT_READONLY_API_KEY": keys.readonly_api_key,
            "CREATORAUDIT_INACTIVE_API_KEY": keys.inactive_api_key,
            "CREATORAUDIT_OTHER_ORG_API_KEY": keys.other_org_api_key,
        }


@contextmanager
def counted_reference(
    faults: set[str] | None = None, wrap: Any = None
) -> Iterator[CountedServer]:
    """A fresh reference server on a loopback port, counted; ``wrap`` may put another app
    (e.g. the generated scale app) between the counter and the reference app."""
    # the rate limit is a behaviour under test elsewhere; here it would throttle the full
    # profile (over 10 000 requests a minute) and time the limiter instead of the suite
    settings = ReferenceSettings(faults=set(faults or ()), rate_limit=BENCH_RATE_LIMIT)
    server = EmbeddedServer(settings)
    inner = wrap(server.app) if wrap is not None else server.app
    counter = CountingApp(inner)
    server.app = counter
    with server:
        yield CountedServer(server, counter)
