"""A generated spec with N operations of the same shape, and the app that serves them.

Operation ``i`` is the published link operation under ``/scale/{i}``. The generated app is a
small Starlette app that strips that prefix and hands the request to the unchanged reference
app, so every generated operation behaves exactly like the documented one (same checks, same
rules, same data) and only the number of operations changes between runs.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

LINK_PATH = "/creators/{creator_id}/accounts/{account_id}"
_SCALE_PREFIX = re.compile(r"^/v2/scale/(\d+)(/creators/[^/]+/accounts/[^/]+)$")


def generated_spec(published: Path, operations: int) -> dict[str, Any]:
    """The published document with its link operation copied ``operations`` times."""
    document = yaml.safe_load(published.read_text(encoding="utf-8"))
    template = document["paths"][LINK_PATH]
    paths: dict[str, Any] = {}
    for i in range(operations):
        item = copy.deepcopy(template)
        for operation in item.values():
            if isinstance(operation, dict) and "operationId" in operation:
                operation["operationId"] = f"{operation['operationId']}Scale{i}"
        paths[f"/scale/{i}{LINK_PATH}"] = item
    document["paths"] = paths
    return document


def write_generated_spec(published: Path, operations: int, folder: Path) -> Path:
    path = folder / f"openapi-{operations}-ops.yaml"
    path.write_text(yaml.safe_dump(generated_spec(published, operations)), encoding="utf-8")
    return path


class ScaleApp:
    """ASGI app: ``/v2/scale/{i}/creators/.../accounts/...`` goes to the reference app as the
    same request unprefixed; every other request (provisioning, health) goes to it unchanged.

    Plain ASGI, no router: a router's path patterns do not match a path holding an encoded
    line break, and would answer it with a plain-text 404 of their own, which the suite then
    rightly fails (and re-runs and shrinks, skewing the timings this app exists for)."""

    def __init__(self, reference: Any, operations: int) -> None:
        self.reference = reference
        self.operations = operations
        self.state = reference.state  # EmbeddedServer closes the store through .state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode()
            match = _SCALE_PREFIX.match(raw.decode("latin-1"))
            if match is not None and int(match.group(1)) < self.operations:
                inner = "/v2" + match.group(2)
                scope = {**scope, "path": inner, "raw_path": inner.encode("latin-1")}
        await self.reference(scope, receive, send)


def scale_app(reference: Any, operations: int) -> ScaleApp:
    """Serve the generated operations, and everything else unchanged."""
    return ScaleApp(reference, operations)
