"""Target configuration: where the API under test lives and which keys the suite may use.

Precedence is the pytest-base-url convention: command-line option > environment variable >
ini file > default. Configuration problems raise :class:`ConfigurationError`, whose message is
one line meant for a human; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigurationError(Exception):
    """The suite cannot run as configured; the message says what to change."""


class Principal(enum.Enum):
    """Who a request claims to be. The value names the credential the request carries."""

    FULL = "api_key"
    READONLY = "readonly_api_key"
    INACTIVE = "inactive_api_key"
    OTHER_ORG = "other_org_api_key"
    INVALID = "invalid"
    MALFORMED = "malformed"
    NONE = "none"

    @property
    def is_accepted(self) -> bool:
        """True when the server must accept the key as valid and active (it authenticates)."""
        return self in {Principal.FULL, Principal.READONLY, Principal.OTHER_ORG}

    @property
    def env_var(self) -> str | None:
        return KEY_ENV_VARS.get(self.value)


KEY_ENV_VARS: dict[str, str] = {
    "api_key": "CREATORAUDIT_API_KEY",
    "readonly_api_key": "CREATORAUDIT_READONLY_API_KEY",
    "inactive_api_key": "CREATORAUDIT_INACTIVE_API_KEY",
    "other_org_api_key": "CREATORAUDIT_OTHER_ORG_API_KEY",
}


@dataclass(frozen=True, repr=False)
class Credentials:
    """The four keys of the document's principals; only ``api_key`` is mandatory remotely."""

    api_key: str | None = None
    readonly_api_key: str | None = None
    inactive_api_key: str | None = None
    other_org_api_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Credentials:
        values = {name: environ.get(var) or None for name, var in KEY_ENV_VARS.items()}
        return cls(**values)

    def key_for(self, principal: Principal) -> str | None:
        if principal.value in KEY_ENV_VARS:
            value: str | None = getattr(self, principal.value)
            return value
        return None

    def secrets(self) -> list[str]:
        """Every configured key value, for masking."""
        return [v for v in (getattr(self, n) for n in KEY_ENV_VARS) if v]

    def __repr__(self) -> str:
        """Which keys are set, never their values: pytest prints a failing test's arguments
        cut short, and a key cut in the middle escapes masking."""
        shown = ", ".join(
            f"{name}={'<set>' if getattr(self, name) else None}" for name in KEY_ENV_VARS
        )
        return f"Credentials({shown})"


DEFAULT_CREATOR_BODY: dict[str, Any] = {"name": "conformance-{run_id}-creator-{n}"}
DEFAULT_ACCOUNT_BODY: dict[str, Any] = {
    "platform": "instagram",
    "handle": "conformance-{run_id}-account-{n}",
}


def new_run_id() -> str:
    """A short id that tags everything one run creates, so it can be found and removed."""
    return secrets.token_hex(4)


@dataclass(frozen=True)
class SuiteConfig:
    """Everything a run needs to know about its target, resolved once per session."""

    base_url: str | None
    credentials: Credentials
    run_id: str = field(default_factory=new_run_id)
    request_timeout: float = 10.0
    creator_body: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_CREATOR_BODY))
    account_body: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ACCOUNT_BODY))
    ids_file: Path | None = None

    @property
    def embedded(self) -> bool:
        return not self.base_url

    def validate_remote(self) -> None:
        """A remote target needs at least the organization's write key."""
        if self.base_url and not self.credentials.api_key:
            raise ConfigurationError(
                f"CREATORAUDIT_API_KEY is not set: a key of the organization under test is "
                f"required to check {self.base_url} (or pass --api-key)"
            )
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"base URL {self.base_url!r} is not an http:// or https:// URL"
            )


def parse_body_template(text: str | None, option: str) -> dict[str, Any] | None:
    """Parse a JSON object given on the command line, or fail with a one-line reason."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{option}: not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{option}: must be a JSON object")
    return value
