"""Test data life cycle: fresh creators and accounts per scenario, all removed at the end.

Scenarios need a first link to really be a first link, so every scenario takes new resources.
Each one carries the run id in its name, is remembered the moment it exists, and is deleted at
session end, whether tests passed, failed or were interrupted. A target without the create
endpoints can be given a file of existing ids instead; then nothing is created or deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

from conformance._client import ApiClient
from conformance._config import ConfigurationError, Principal, SuiteConfig
from conformance._rules import RuleViolation

ORGS = {"own": Principal.FULL, "other": Principal.OTHER_ORG}
KINDS = {"creator": "/creators", "account": "/accounts"}


class ProvisioningUnavailable(Exception):
    """Test data of this kind cannot be had; the message says why and what would enable it."""


@dataclass
class IdPool:
    """Existing ids from a file: ``{"own": {"creators": [...], "accounts": [...]}, "other": ...}``.
    Accounts are handed out once each, since a scenario links them; creators are handed out in
    turn and reused, since linking never changes a creator."""

    ids: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    _turns: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> IdPool:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"ids file {path}: cannot be read as JSON ({exc})") from None
        pool = cls()
        for org in ORGS:
            section = raw.get(org, {}) if isinstance(raw, dict) else {}
            for kind in KINDS:
                values = section.get(f"{kind}s", [])
                if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                    raise ConfigurationError(
                        f"ids file {path}: {org}.{kind}s must be a list of ids"
                    )
                pool.ids[(org, kind)] = list(values)
        return pool

    def take(self, org: str, kind: str) -> str:
        remaining = self.ids.get((org, kind), [])
        if not remaining:
            raise ProvisioningUnavailable(
                f"the ids file has no unused {kind} of the {org} organization left; "
                f"add more ids or let the suite create data (drop --ids-file)"
            )
        if kind == "account":
            return remaining.pop(0)
        turn = self._turns.get((org, kind), 0)
        self._turns[(org, kind)] = turn + 1
        return remaining[turn % len(remaining)]


def _fill(template: Any, run_id: str, n: int) -> Any:
    """Substitute ``{run_id}`` and ``{n}`` in every string of a body template."""
    if isinstance(template, str):
        return template.replace("{run_id}", run_id).replace("{n}", str(n))
    if isinstance(template, dict):
        return {k: _fill(v, run_id, n) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, run_id, n) for v in template]
    return template


class Provisioner:
    """Creates tagged resources through the API and deletes exactly those at the end."""

    def __init__(self, client: ApiClient, config: SuiteConfig, pool: IdPool | None = None) -> None:
        self.client = client
        self.config = config
        self.pool = pool
        self.created: list[tuple[Principal, str]] = []
        self._numbers = count(1)

    def creator(self, org: str = "own") -> str:
        return self._new(org, "creator")

    def account(self, org: str = "own") -> str:
        return self._new(org, "account")

    def _new(self, org: str, kind: str) -> str:
        if self.pool is not None:
            return self.pool.take(org, kind)
        principal = ORGS[org]
        if not self.client.has_key(principal):
            raise ProvisioningUnavailable(
                f"creating a {kind} of the {org} organization needs {principal.env_var}, "
                "which is not set"
            )
        template = self.config.creator_body if kind == "creator" else self.config.account_body
        body = _fill(template, self.config.run_id, next(self._numbers))
        exchange = self.client.post(KINDS[kind], principal=principal, json=body)
        data = exchange.json()
        resource_id = data.get("data", {}).get("id") if isinstance(data, dict) else None
        if exchange.status != 201 or not isinstance(resource_id, str):
            raise ProvisioningUnavailable(
                f"POST {KINDS[kind]} did not create a {kind} (got {exchange.status}); the "
                "target may lack the create endpoints: pass --ids-file with existing ids"
            )
        self.created.append((principal, f"{KINDS[kind]}/{resource_id}"))
        return resource_id

    def cleanup(self) -> list[str]:
        """Delete everything this run created, newest first; return what could not be deleted."""
        leftovers: list[str] = []
        while self.created:
            principal, path = self.created.pop()
            try:
                status = self.client.delete(path, principal=principal).status
            except RuleViolation as exc:  # the rules judge the exchange; deletion is what counts
                status = exc.exchange.status
            except Exception as exc:  # keep deleting the rest; report what stayed
                leftovers.append(f"{path} ({type(exc).__name__})")
                continue
            if status not in {200, 202, 204, 404}:
                leftovers.append(f"{path} (DELETE answered {status})")
        return leftovers

    def __iter__(self) -> Iterator[tuple[Principal, str]]:
        return iter(self.created)
