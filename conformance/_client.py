"""The instrumented HTTP client every producer sends through.

It tags each request with a run-scoped ``X-Request-ID``, records the exchange, and hands it to
the rules, so a response is judged the same way whichever test produced it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from conformance._config import Credentials, Principal, SuiteConfig
from conformance._exchange import CaseInsensitiveHeaders, Exchange

Observer = Callable[[Exchange], None]

INVALID_KEY = "ca_conformance_invalid_key_0000000000"
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.run_id = run_id
        self._counter = itertools.count(1)
        self._observers: list[Observer] = []
        self.log: list[Exchange] = []
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            # a plain-http target never uses TLS: skip loading the CA bundle (~0.1-0.3 s per
            # session and per xdist worker, measured); https targets verify as before
            verify=not self.base_url.startswith("http://"),
        )

    @classmethod
    def for_config(cls, config: SuiteConfig, base_url: str) -> ApiClient:
        return cls(
            base_url, config.credentials, run_id=config.run_id, timeout=config.request_timeout
        )

    def close(self) -> None:
        self._http.close()

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
    ) -> Exchange:
        """Send one request; ``request_id=False`` sends none, a string sends that value."""
        sent: dict[str, str] = {}
        auth = authorization if authorization is not None else self.authorization_for(principal)
        if auth is not None:
            sent["Authorization"] = auth
        if request_id is True:
            sent["X-Request-ID"] = self.next_request_id()
        elif isinstance(request_id, str):
            sent["X-Request-ID"] = request_id
        sent.update(headers or {})
        request = self._http.build_request(
            method, self.url(path), headers=sent, json=json, content=content
        )
        response = self._http.send(request)
        exchange = Exchange(
            method=method,
            url=str(request.url),
            request_headers=CaseInsensitiveHeaders.of(request.headers.multi_items()),
            request_body=request.content or None,
            status=response.status_code,
            headers=CaseInsensitiveHeaders.of(response.headers.multi_items()),
            body=response.content,
            principal=principal,
            elapsed=response.elapsed.total_seconds(),
            secrets=self.credentials.secrets(),
        )
        self.log.append(exchange)
        for observer in self._observers:
            observer(exchange)
        return exchange

    def get(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("DELETE", path, **kwargs)
