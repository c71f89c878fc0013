"""The exchange: one request and the response it got, as the rules see it.

Producers (scenarios, the fuzzer, the state machine) turn whatever they sent into an
:class:`Exchange`; rules judge exchanges and nothing else, so one rule serves every producer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from conformance._config import Principal

BODY_PREVIEW_LIMIT = 500
MASK = "***"


class CaseInsensitiveHeaders(dict[str, str]):
    """A plain mapping of lowercase header names to (comma-joined) values."""

    @classmethod
    def of(cls, items: Iterable[tuple[str, str]] | Mapping[str, str]) -> CaseInsensitiveHeaders:
        pairs = items.items() if isinstance(items, Mapping) else items
        headers = cls()
        for name, value in pairs:
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    def get_value(self, name: str) -> str | None:
        return self.get(name.lower())

    def __repr__(self) -> str:
        """The credential header masked, as httpx shows its headers."""
        shown = {k: (MASK if k == "authorization" else v) for k, v in self.items()}
        return f"CaseInsensitiveHeaders({shown!r})"


_UNPARSED: Any = object()


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def mask(text: str, secrets: list[str]) -> str:
    """``text`` with every one of ``secrets`` (key values) replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


@dataclass
class Exchange:
    """What was sent and what came back. ``principal`` says which credential was used."""

    method: str
    url: str
    request_headers: CaseInsensitiveHeaders
    request_body: bytes | None
    status: int
    headers: CaseInsensitiveHeaders
    body: bytes
    principal: Principal
    elapsed: float = 0.0
    secrets: list[str] = field(default_factory=list, repr=False)
    #: the body was cut at the client's size cap (``--max-body-bytes``)
    truncated: bool = False
    #: seconds waited after an unexpected 429 before this (second) attempt; None: first try
    retried_after: float | None = None
    #: the body parsed once: every rule reads it, about ten parses per exchange otherwise
    _parsed: Any = field(default=_UNPARSED, init=False, repr=False, compare=False)

    # cached: every rule asks (an exchange is not changed once made)
    @cached_property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def sent_request_id(self) -> str | None:
        return self.request_headers.get_value("x-request-id")

    @cached_property
    def media_type(self) -> str:
        value = self.headers.get_value("content-type") or ""
        return value.split(";", 1)[0].strip().lower()

    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is empty or not JSON.

        Parsed on first use and kept: the same object is returned every time, so a caller
        must not change it."""
        if self._parsed is _UNPARSED:
            self._parsed = _parse_json(self.body)
        return self._parsed

    def __repr__(self) -> str:
        """The request and its status (:meth:`describe`): the full dataclass repr held the
        credential header, which a traceback cut short beyond the reach of masking."""
        return f"Exchange({self.describe()})"

    def mask(self, text: str) -> str:
        """Replace every configured key value in ``text``; nothing secret leaves the suite."""
        return mask(text, self.secrets)

    def describe(self) -> str:
        """One line naming the request (never its credentials) and the status it got."""
        return self.mask(f"{self.method} {self.url} [{self.principal.name}] -> {self.status}")

    def evidence(self) -> str:
        """The response as a failure message shows it: status, headers, truncated body."""
        lines = [self.describe()]
        for name, value in sorted(self.headers.items()):
            lines.append(f"  < {name}: {value}")
        text = self.body[:BODY_PREVIEW_LIMIT].decode("utf-8", "replace")
        if len(self.body) > BODY_PREVIEW_LIMIT:
            text += f"... ({len(self.body)} bytes)"
        if self.truncated:
            text += f" [body truncated: reading stopped after {len(self.body)} bytes]"
        if text:
            lines.append(f"  < {text}")
        return self.mask("\n".join(lines))

    def curl(self, key_variable: str = "CREATORAUDIT_API_KEY") -> str:
        """A command that re-sends the request, reading the key from the environment."""
        parts = [f"curl -i -X {self.method}", f"'{self.url}'"]
        for name, value in self.request_headers.items():
            if name == "authorization":
                var = self.principal.env_var or key_variable
                if self.principal in {Principal.INVALID, Principal.MALFORMED}:
                    parts.append(f"-H '{name}: {self.mask(value)}'")
                else:
                    parts.append(f'-H "Authorization: Bearer ${var}"')
            elif name not in {"host", "content-length", "accept-encoding", "connection"}:
                parts.append(f"-H '{name}: {value}'")
        if self.request_body:
            parts.append(f"--data-raw '{self.request_body.decode('utf-8', 'replace')}'")
        return self.mask(" ".join(parts))
