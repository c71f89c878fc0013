"""``creatoraudit-conformance cleanup``: remove what earlier runs left behind.

A run deletes its own data at the end, but a run that was killed (SIGKILL, a lost CI runner)
cannot. Everything the suite creates is named ``conformance-<run id>-…`` (creators by name,
accounts by handle), so it can be found through the list endpoints and removed. Nothing whose
name does not carry that tag is ever deleted: the target may be a staging server other teams
share.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

from conformance._client import ApiClient
from conformance._config import ConfigurationError, Principal
from conformance._limits import TransportFailure

#: The tag of every resource a run creates: ``conformance-`` + the 8-hex-digit run id + ``-``.
TAG_PREFIX = "conformance-"
PAGE_LIMIT = 100
MAX_PAGES = 1000

#: kind -> (list path, the field carrying the tag, a server-side prefix filter if any)
LISTS = {
    "creator": ("/creators", "name", "name_prefix"),
    "account": ("/accounts", "handle", None),
}


def tag_pattern(run_id: str | None = None) -> re.Pattern[str]:
    """Names of resources a run created; ``run_id`` narrows it to one run."""
    run = re.escape(run_id) if run_id else "[0-9a-f]{8}"
    return re.compile(rf"^{re.escape(TAG_PREFIX)}{run}-")


@dataclass(frozen=True)
class Tagged:
    """A resource found by its tag."""

    principal: Principal
    kind: str
    resource_id: str
    name: str

    @property
    def path(self) -> str:
        return f"{LISTS[self.kind][0]}/{self.resource_id}"


def _pages(client: ApiClient, principal: Principal, kind: str) -> Iterator[list[object]]:
    """Every page of a list, following ``pagination.next_cursor``; stops on a repeated cursor."""
    path, _, prefix_filter = LISTS[kind]
    query: dict[str, str] = {"limit": str(PAGE_LIMIT)}
    if prefix_filter:
        query[prefix_filter] = TAG_PREFIX
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        exchange = client.get(f"{path}?{urlencode(query)}", principal=principal)
        body = exchange.json()
        if exchange.status == 422 and prefix_filter in query:  # no such filter: filter here
            del query[prefix_filter]
            continue
        if exchange.status != 200 or not isinstance(body, dict):
            raise ConfigurationError(
                f"cannot list {path} as {principal.name}: GET answered {exchange.status}"
            )
        data = body.get("data")
        yield data if isinstance(data, list) else []
        pagination = body.get("pagination")
        cursor = pagination.get("next_cursor") if isinstance(pagination, dict) else None
        if not isinstance(cursor, str) or not cursor or cursor in seen:
            return
        seen.add(cursor)
        query["cursor"] = cursor


def find_tagged(client: ApiClient, principal: Principal, run_id: str | None = None) -> list[Tagged]:
    """The suite's resources visible to ``principal``; untagged ones are never returned."""
    pattern = tag_pattern(run_id)
    found: list[Tagged] = []
    for kind, (_, field, _) in LISTS.items():
        for page in _pages(client, principal, kind):
            for record in page:
                if not isinstance(record, dict):
                    continue
                name, resource_id = record.get(field), record.get("id")
                if isinstance(name, str) and isinstance(resource_id, str) and pattern.match(name):
                    found.append(Tagged(principal, kind, resource_id, name))
    return found


def sweep(
    client: ApiClient, run_id: str | None = None, *, dry_run: bool = False
) -> tuple[list[Tagged], list[str]]:
    """Delete every tagged resource of every organization the client has a key for.

    Returns what was found (and deleted, unless ``dry_run``) and what could not be deleted."""
    found: list[Tagged] = []
    failures: list[str] = []
    for principal in (Principal.FULL, Principal.OTHER_ORG):
        if not client.has_key(principal):
            continue
        try:
            tagged = find_tagged(client, principal, run_id)
        except TransportFailure as exc:
            raise ConfigurationError(f"cannot list resources: {exc.reason}") from None
        found.extend(tagged)
        for resource in [] if dry_run else tagged:
            try:
                status = client.delete(resource.path, principal=principal).status
            except TransportFailure as exc:
                failures.append(f"{resource.path} ({resource.name}): {exc.reason}")
                continue
            if status not in {200, 202, 204, 404}:
                failures.append(f"{resource.path} ({resource.name}): DELETE answered {status}")
    return found, failures
